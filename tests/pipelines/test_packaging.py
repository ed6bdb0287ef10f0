"""``pipelines/packaging.py``: a deterministic working_dir zip, staged to a local path, referenced in runtime_env;
bad input named. Fast: files in tmp_path only (Ray's own unzip helper is imported, nothing is started)."""

from __future__ import annotations

import importlib.util
import os
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import yaml

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.pipelines.packaging import (
    FIXED_DATE_TIME,
    build_zip,
    list_files,
    package_name,
    package_working_dir,
    remove_staged,
    runtime_env_yaml,
    stage,
    with_working_dir,
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small code directory with things that must be packaged and things that must not."""
    root = tmp_path / "code"
    for rel, text in {
        "train.py": "print('train')\n", "lib/__init__.py": "", "lib/util.py": "X = 1\n", "conf/params.yaml": "a: 1\n",
        "lib/__pycache__/util.cpython-311.pyc": "junk", ".git/HEAD": "ref", "stale.pyc": "junk", ".venv/bin/python": "x",
    }.items():  # fmt: skip
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def entries(payload: bytes) -> list[zipfile.ZipInfo]:
    return zipfile.ZipFile(BytesIO(payload)).infolist()


# ----------------------------------------------------------------------------------------------- the zip
def test_lists_only_packaged_files_sorted(project: Path) -> None:
    assert list_files(project) == ["conf/params.yaml", "lib/__init__.py", "lib/util.py", "train.py"]


def test_zip_has_one_top_level_dir_fixed_metadata_and_the_file_contents(project: Path) -> None:
    payload = build_zip(project, top_level="app")
    infos = entries(payload)
    assert [i.filename for i in infos] == ["app/conf/params.yaml", "app/lib/__init__.py", "app/lib/util.py", "app/train.py"]
    assert {i.date_time for i in infos} == {FIXED_DATE_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    archive = zipfile.ZipFile(BytesIO(payload))
    assert archive.read("app/train.py") == (project / "train.py").read_bytes()


def test_zip_is_byte_for_byte_deterministic(project: Path) -> None:
    first = build_zip(project)
    os.utime(project / "train.py", (1_000_000, 1_000_000))  # timestamps and modes do not matter ...
    (project / "lib" / "util.py").chmod(0o755)
    (project / "lib" / "__pycache__" / "new.pyc").write_text("more junk")  # ... nor excluded files
    assert build_zip(project) == first
    assert package_name(build_zip(project)) == package_name(first)
    (project / "lib" / "util.py").write_text("X = 2\n")  # content does
    changed = build_zip(project)
    assert changed != first and package_name(changed) != package_name(first)
    assert package_name(first).startswith("working_dir-") and package_name(first).endswith(".zip")
    assert len(package_name(first)) == len("working_dir-") + 16 + len(".zip")


def test_ray_unpacks_it_into_the_files_themselves(project: Path, tmp_path: Path) -> None:
    """Ray strips the single top-level directory of a remote working_dir zip: the job sees train.py at its root."""
    from ray._private.runtime_env.packaging import get_top_level_dir_from_compressed_package, unzip_package

    package = tmp_path / "pkg.zip"
    package.write_bytes(build_zip(project))
    assert get_top_level_dir_from_compressed_package(str(package)) == "working_dir"
    target = tmp_path / "unpacked"
    unzip_package(str(package), str(target), remove_top_level_directory=True, unlink_zip=False)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == list_files(project)


# ----------------------------------------------------------------------------------------------- staging
def test_stage_to_a_local_path_is_idempotent(project: Path, tmp_path: Path) -> None:
    payload = build_zip(project)
    name = package_name(payload)
    uri = stage(payload, str(tmp_path / "staging" / "nested"), name)
    target = tmp_path / "staging" / "nested" / name
    assert uri == target.as_uri() and target.read_bytes() == payload
    before = target.stat().st_mtime_ns
    assert stage(payload, str(tmp_path / "staging" / "nested"), name) == uri
    assert target.stat().st_mtime_ns == before  # same content: not rewritten
    assert not list(target.parent.glob("*.tmp"))
    remove_staged(uri)
    assert not target.exists()


def test_stage_to_a_file_uri(project: Path, tmp_path: Path) -> None:
    payload = build_zip(project)
    uri = stage(payload, (tmp_path / "s").as_uri(), "p.zip")
    assert uri == (tmp_path / "s" / "p.zip").as_uri()
    assert (tmp_path / "s" / "p.zip").read_bytes() == payload


def test_package_working_dir_returns_a_runtime_env_without_touching_the_input(project: Path, tmp_path: Path) -> None:
    original = {"pip": ["xgboost"], "env_vars": {"A": "1"}}
    env = package_working_dir(project, str(tmp_path / "stage"), runtime_env=original)
    assert original == {"pip": ["xgboost"], "env_vars": {"A": "1"}}
    assert env["pip"] == ["xgboost"] and env["env_vars"] == {"A": "1"}
    staged = Path(env["working_dir"].removeprefix("file://"))
    assert staged.parent == (tmp_path / "stage").resolve() and staged.read_bytes() == build_zip(project)
    assert yaml.safe_load(runtime_env_yaml(env)) == env


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", ["missing-dir", "a-file"])
def test_working_dir_must_be_an_existing_directory(tmp_path: Path, bad: str) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidParameterError, match=r"working_dir=.*must be an existing local directory") as exc:
        build_zip(tmp_path / bad)
    assert exc.value.parameter == "working_dir" and str(tmp_path / bad) in str(exc.value)


def test_working_dir_with_nothing_to_package(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_text("junk")
    with pytest.raises(InvalidParameterError, match="contains no files to package"):
        build_zip(tmp_path)


@pytest.mark.parametrize("top_level", ["", "a/b", ".", ".."])
def test_top_level_must_be_one_directory_name(project: Path, top_level: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"top_level=.*single directory name"):
        build_zip(project, top_level=top_level)


def test_unsupported_staging_scheme(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"staging_uri='s3://bucket/x': must be a local path, file:// or gs://"):
        stage(b"zip", "s3://bucket/x", "p.zip")


@pytest.mark.skipif(importlib.util.find_spec("google.cloud.storage") is not None, reason="google-cloud-storage installed")
def test_gs_staging_without_the_storage_client_says_what_to_install() -> None:
    with pytest.raises(InvalidParameterError, match="needs google-cloud-storage"):
        stage(b"zip", "gs://bucket/pkgs", "p.zip")


@pytest.mark.parametrize(("uri", "why"), [("/local/path.zip", "schemes"), ("gs://b/p.tar.gz", ".zip URI"),
                                          ("ftp://h/p.zip", "schemes")])
def test_with_working_dir_rejects_non_zip_or_unknown_uris(uri: str, why: str) -> None:
    with pytest.raises(InvalidParameterError, match="working_dir_uri=") as exc:
        with_working_dir({}, uri)
    assert why in str(exc.value) and repr(uri) in str(exc.value)


def test_with_working_dir_is_pure() -> None:
    env = {"pip": ["a"]}
    assert with_working_dir(env, "gs://b/p.zip") == {"pip": ["a"], "working_dir": "gs://b/p.zip"}
    assert env == {"pip": ["a"]}
    assert with_working_dir(None, "https://h/p.zip") == {"working_dir": "https://h/p.zip"}


# ----------------------------------------------------------------------------------------------- the cluster side
def test_cluster_package_unpacks_to_an_importable_kuberay_provider(tmp_path: Path) -> None:
    """Ray strips ``py_modules/`` and puts the rest on PYTHONPATH: ``kuberay_provider`` is importable from there."""
    from ray._private.runtime_env.packaging import unzip_package

    from kuberay_provider.pipelines.packaging import cluster_side_files, stage_cluster_package

    uri = stage_cluster_package(str(tmp_path / "stage"))
    assert uri.startswith("file://") and Path(uri.removeprefix("file://")).name.startswith("kuberay_provider_cluster-")
    assert stage_cluster_package(str(tmp_path / "stage")) == uri  # content-addressed
    target = tmp_path / "unpacked"
    unzip_package(uri.removeprefix("file://"), str(target), remove_top_level_directory=True, unlink_zip=False)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == cluster_side_files() and "kuberay_provider/pipelines/jobs/churn_train.py" in files


def test_with_py_modules_and_with_pip_are_pure() -> None:
    from kuberay_provider.pipelines.packaging import CLUSTER_PIP, with_pip, with_py_modules

    original = {"py_modules": ["gs://b/mine.zip"], "pip": ["Scikit_Learn==1.9.1"], "env_vars": {"A": "1"}}
    env = with_pip(with_py_modules(original, "gs://b/cluster.zip"), CLUSTER_PIP)
    assert env["py_modules"] == ["gs://b/mine.zip", "gs://b/cluster.zip"]
    assert env["pip"][0] == "Scikit_Learn==1.9.1" and not any(p.startswith("scikit-learn") for p in env["pip"])
    assert "xgboost-cpu>=2.0" in env["pip"] and "google-cloud-bigquery>=3.20" in env["pip"]
    assert original == {"py_modules": ["gs://b/mine.zip"], "pip": ["Scikit_Learn==1.9.1"], "env_vars": {"A": "1"}}
    packages = with_pip({"pip": {"packages": ["polars"], "pip_check": False}}, ["db-dtypes"])["pip"]
    assert packages == {"packages": ["polars", "db-dtypes"], "pip_check": False}
    assert with_pip(None, []) == {} and with_pip({"uv": ["x"]}, CLUSTER_PIP) == {"uv": ["x"]}
