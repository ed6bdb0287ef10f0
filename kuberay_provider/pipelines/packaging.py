"""Ship a local ``working_dir`` to a RayJob: deterministic zip → staged at a URI → referenced in runtimeEnvYAML.

KubeRay's K8sJobMode submits from a pod in the cluster, so it cannot upload a directory from the Airflow worker the
way ``ray job submit --working-dir .`` does. Ray accepts a *remote zip URI* as ``working_dir`` instead
(``gs://``, ``s3://``, ``https://``, ``file://``, … see ``ray._private.runtime_env.protocol``); every node downloads
and unpacks it. Ray strips a single top-level directory from such zips, so :func:`build_zip` puts everything under
one (``<name>/``).

The zip is byte-for-byte deterministic for the same files (sorted entries, fixed timestamps and permissions,
``__pycache__``/``.git``/``*.pyc`` excluded), and it is named after its content hash, so staging the same code twice
writes the same object and Ray's per-URI cache stays valid.

The same mechanism ships the provider's **cluster side** to the training RayJob (see :data:`CLUSTER_SIDE`):
:func:`build_cluster_package` zips exactly those modules (``py_modules/kuberay_provider/...``), :func:`stage` puts
it next to the working_dir packages, and the job's runtime_env lists it in ``py_modules`` with :data:`CLUSTER_PIP`
in ``pip``. That is the image contract of the shipped jobs:

- **image**: a stock ``rayproject/ray:<ray version>-py<python>`` image (Ray with its default/data/train extras), e.g.
  ``rayproject/ray:2.60.0-py311``; nothing of Airflow or of this provider needs to be installed in it;
- **runtime_env**: ``py_modules: [<staged cluster package URI>]`` and ``pip: CLUSTER_PIP`` (the BigQuery clients,
  db-dtypes, XGBoost, scikit-learn); ``env_vars`` carry the BigQuery settings (``KUBERAY_BQ_*``).

A custom image that installs those distributions and the cluster side itself may skip both
(``retraining_pipeline(ship_cluster_package=False, cluster_pip=())``).

No heavy imports: google-cloud-storage is imported only to stage to ``gs://``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from kuberay_provider.errors import InvalidParameterError

DEFAULT_EXCLUDES: tuple[str, ...] = ("__pycache__", ".git", "*.pyc", "*.pyo", ".DS_Store", ".pytest_cache", ".venv")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""The installed ``kuberay_provider`` package directory."""
CLUSTER_SIDE: tuple[str, ...] = (
    "__init__.py", "connection_form.py", "errors.py", "bigquery", "pipelines/__init__.py", "pipelines/jobs",
)  # fmt: skip
"""The provider's cluster side, relative to the package: everything a RayJob or a SparkApplication imports of
``kuberay_provider`` (the shipped jobs, BigQuery I/O for Ray and Spark, and the modules and package ``__init__``
files they need). None of it imports Airflow or the provider's Airflow side (hooks, operators, sensors, triggers,
``pipelines.builder``, ``compat``, ...): ``tests/test_cluster_boundary.py`` checks both directions."""
CLUSTER_PIP: tuple[str, ...] = (
    "google-cloud-bigquery>=3.20", "google-cloud-bigquery-storage>=2.25", "db-dtypes>=1.2", "xgboost-cpu>=2.0",
    "scikit-learn>=1.3",
)  # fmt: skip
"""What the shipped training job needs beyond a stock ``rayproject/ray`` image (Ray, pyarrow, pandas, numpy, grpcio,
google-auth and google-api-core come with Ray's default/data/train extras)."""
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store
REMOTE_SCHEMES = ("gs", "s3", "http", "https", "file", "azure", "abfss")


def _excluded(parts: Iterable[str], patterns: Iterable[str]) -> bool:
    patterns = tuple(patterns)
    return any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in patterns)


def list_files(directory: str | os.PathLike[str], excludes: Iterable[str] = DEFAULT_EXCLUDES) -> list[str]:
    """Relative POSIX paths of the files under ``directory`` that would be packaged, sorted."""
    root = Path(directory)
    if not root.is_dir():
        raise InvalidParameterError("working_dir", str(directory), "must be an existing local directory")
    excludes = tuple(excludes)
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not _excluded(rel.parts, excludes):
            files.append(rel.as_posix())
    return sorted(files)


def _zip(entries: Iterable[tuple[str, Path]]) -> bytes:
    """A deterministic zip of ``(archive name, file)`` pairs, in the order given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix, so the permission bits above are honoured
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_zip(directory: str | os.PathLike[str], *, top_level: str = "working_dir",
              excludes: Iterable[str] = DEFAULT_EXCLUDES) -> bytes:
    """The zip of ``directory`` as bytes: deterministic, all entries under ``top_level/``."""
    if not top_level or "/" in top_level or top_level in (".", ".."):
        raise InvalidParameterError("top_level", top_level, "must be a single directory name")
    root = Path(directory)
    files = list_files(root, excludes)
    if not files:
        raise InvalidParameterError("working_dir", str(directory), "contains no files to package")
    return _zip((f"{top_level}/{rel}", root / rel) for rel in files)


def cluster_side_files() -> list[str]:
    """The ``.py`` files of :data:`CLUSTER_SIDE`, as ``kuberay_provider/...`` POSIX paths, sorted."""
    files: set[str] = set()
    for entry in CLUSTER_SIDE:
        path = PACKAGE_ROOT / entry
        if path.is_dir():
            files.update(f"{entry}/{rel}" for rel in list_files(path) if rel.endswith(".py"))
        else:
            files.add(entry)
    return sorted(f"kuberay_provider/{rel}" for rel in files)


def build_cluster_package() -> bytes:
    """The cluster side as a ``py_modules`` zip: ``py_modules/kuberay_provider/...`` (Ray strips the top level and
    puts the rest on the job's ``PYTHONPATH``). Deterministic for the same sources."""
    return _zip((f"py_modules/{rel}", PACKAGE_ROOT.parent / rel) for rel in cluster_side_files())


def stage_cluster_package(staging_uri: str) -> str:
    """Build the cluster package and stage it under ``staging_uri``; returns its URI (``file://`` or ``gs://``)."""
    payload = build_cluster_package()
    return stage(payload, staging_uri, package_name(payload, "kuberay_provider_cluster"))


def with_py_modules(runtime_env: Mapping[str, Any] | None, *uris: str) -> dict[str, Any]:
    """A copy of ``runtime_env`` with ``uris`` appended to ``py_modules`` (pure)."""
    env = dict(runtime_env or {})
    env["py_modules"] = [*list(env.get("py_modules") or []), *uris]
    return env


def _requirement_name(line: str) -> str:
    """The normalised distribution name a requirement line starts with (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else line.strip()


def with_pip(runtime_env: Mapping[str, Any] | None, requirements: Iterable[str]) -> dict[str, Any]:
    """A copy of ``runtime_env`` whose ``pip`` also names ``requirements`` (pure).

    Distributions the runtime_env already names keep its entry. A runtime_env that installs with ``uv`` or
    ``conda``, or names ``pip`` as a requirements file, is returned unchanged: it has taken over installation.
    """
    env = dict(runtime_env or {})
    wanted = list(requirements)
    pip = env.get("pip")
    if not wanted or "uv" in env or "conda" in env or isinstance(pip, str):
        return env
    packages = list((pip.get("packages") or []) if isinstance(pip, Mapping) else (pip or []))
    have = {_requirement_name(str(p)) for p in packages}
    merged = packages + [r for r in wanted if _requirement_name(r) not in have]
    env["pip"] = {**pip, "packages": merged} if isinstance(pip, Mapping) else merged
    return env


def package_name(payload: bytes, prefix: str = "working_dir") -> str:
    """``<prefix>-<sha256[:16]>.zip``: the same content always gets the same name."""
    return f"{prefix}-{hashlib.sha256(payload).hexdigest()[:16]}.zip"


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def stage(payload: bytes, staging_uri: str, name: str) -> str:
    """Write ``payload`` as ``name`` under ``staging_uri`` (local path, ``file://`` or ``gs://``); returns its URI.

    Local destinations are returned as ``file://`` URIs, which Ray accepts for ``working_dir`` when the path is
    visible on every node (single-node clusters, a shared mount). ``gs://`` needs google-cloud-storage.
    """
    scheme = urlparse(staging_uri).scheme
    if scheme in ("", "file"):
        directory = Path(url2pathname(urlparse(staging_uri).path) if scheme == "file" else staging_uri).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / name
        if not target.exists() or target.read_bytes() != payload:
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(payload)
            os.replace(tmp, target)
        return target.as_uri()
    if scheme == "gs":
        try:
            from google.cloud import storage  # type: ignore[attr-defined]
        except ImportError:
            raise InvalidParameterError(
                "staging_uri", staging_uri, "staging to gs:// needs google-cloud-storage (pip install google-cloud-storage)"
            ) from None
        parsed = urlparse(staging_uri)
        blob_name = _join(parsed.path.strip("/"), name).lstrip("/")
        blob = storage.Client().bucket(parsed.netloc).blob(blob_name)
        if not blob.exists():
            blob.upload_from_string(payload, content_type="application/zip")
        return f"gs://{parsed.netloc}/{blob_name}"
    raise InvalidParameterError("staging_uri", staging_uri, "must be a local path, file:// or gs:// URI")


def with_working_dir(runtime_env: Mapping[str, Any] | None, working_dir_uri: str) -> dict[str, Any]:
    """A copy of ``runtime_env`` whose ``working_dir`` is the staged zip URI (pure)."""
    scheme = urlparse(working_dir_uri).scheme
    if scheme not in REMOTE_SCHEMES or not working_dir_uri.endswith(".zip"):
        raise InvalidParameterError(
            "working_dir_uri", working_dir_uri, f"must be a .zip URI with one of the schemes {list(REMOTE_SCHEMES)}"
        )
    env = dict(runtime_env or {})
    env["working_dir"] = working_dir_uri
    return env


def package_working_dir(directory: str | os.PathLike[str], staging_uri: str, *,
                        runtime_env: Mapping[str, Any] | None = None,
                        excludes: Iterable[str] = DEFAULT_EXCLUDES) -> dict[str, Any]:
    """Zip ``directory``, stage it under ``staging_uri`` and return ``runtime_env`` pointing at it."""
    payload = build_zip(directory, excludes=excludes)
    uri = stage(payload, staging_uri, package_name(payload))
    return with_working_dir(runtime_env, uri)


def runtime_env_yaml(runtime_env: Mapping[str, Any]) -> str:
    """The ``runtimeEnvYAML`` string KubeRay expects, serialised as the operator does (sorted keys)."""
    from kuberay_provider.specs import runtime_env_yaml as to_yaml

    return to_yaml(runtime_env) or ""


def remove_staged(uri: str) -> None:
    """Delete a locally staged package (tests and cleanup); remote objects are left to bucket lifecycle rules."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = Path(url2pathname(parsed.path))
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
