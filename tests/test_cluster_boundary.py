"""The cluster side (what a RayJob or SparkApplication imports of this package) never imports Airflow.

Two independent checks of :data:`kuberay_provider.pipelines.packaging.CLUSTER_SIDE`:

- by inspection: an AST walk over every import statement of the cluster-side modules (function bodies and
  ``TYPE_CHECKING`` blocks included), followed transitively through ``kuberay_provider``, finds no ``airflow*`` and
  no provider module outside the cluster side; and everything the shipped jobs reach is shipped;
- by running: the staged ``py_modules`` package, unpacked alone on ``PYTHONPATH`` in an interpreter where importing
  ``airflow`` (or any provider module not shipped) raises, imports every cluster-side module and runs both jobs' CLIs.
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from kuberay_provider.pipelines import packaging

PACKAGE = packaging.PACKAGE_ROOT
JOBS = ("kuberay_provider.pipelines.jobs.churn_train", "kuberay_provider.pipelines.jobs.churn_etl")


def module_name(rel: str) -> str:
    """``kuberay_provider/bigquery/__init__.py`` → ``kuberay_provider.bigquery``."""
    return rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


CLUSTER_MODULES = sorted(module_name(rel) for rel in packaging.cluster_side_files())


def source_of(module: str) -> Path | None:
    """The file of a ``kuberay_provider`` module, or None if it is not one of this package's modules."""
    rel = module.split(".")[1:]
    base = PACKAGE.joinpath(*rel)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(module: str) -> set[str]:
    """Every module an import statement of ``module`` names (absolute; relative imports resolved)."""
    path = source_of(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def parents(module: str) -> list[str]:
    """``a.b.c`` → ``[a, a.b]``: importing a module runs its packages' ``__init__`` first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(roots: list[str]) -> dict[str, set[str]]:
    """``{provider module: its imports}`` for every provider module ``roots`` reach, parents included."""
    seen: dict[str, set[str]] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen or source_of(module) is None:
            continue
        seen[module] = imports_of(module)
        todo += [m for m in seen[module] | set(parents(module)) if m.split(".")[0] == "kuberay_provider"]
    return seen


def test_cluster_side_lists_existing_modules_only() -> None:
    assert CLUSTER_MODULES, "nothing is shipped"
    for rel in packaging.CLUSTER_SIDE:
        assert (PACKAGE / rel).exists(), rel
    assert {"kuberay_provider", "kuberay_provider.errors", "kuberay_provider.bigquery.ray_io",
            "kuberay_provider.bigquery.spark_source", *JOBS} <= set(CLUSTER_MODULES)


def test_cluster_side_imports_neither_airflow_nor_the_airflow_side() -> None:
    reached = closure(CLUSTER_MODULES)
    offences = []
    for module, imported in sorted(reached.items()):
        for name in sorted(imported):
            top = name.split(".")[0]
            if top == "airflow":
                offences.append(f"{module} imports {name}")
            elif top == "kuberay_provider" and source_of(name) is not None and name not in CLUSTER_MODULES:
                offences.append(f"{module} imports {name}, which is not on the cluster side")
    assert offences == []
    assert set(reached) <= set(CLUSTER_MODULES)


def test_what_the_jobs_reach_is_shipped() -> None:
    reached = set(closure(list(JOBS)))
    assert {"kuberay_provider.bigquery.ray_io", "kuberay_provider.bigquery.spark_source",
            "kuberay_provider.bigquery.storage", "kuberay_provider.errors"} <= reached
    assert reached <= set(CLUSTER_MODULES)


def test_the_walk_catches_an_airflow_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The inspection can fail: a module importing Airflow inside a function is reported."""
    fake = tmp_path / "kuberay_provider"
    (fake / "pipelines" / "jobs").mkdir(parents=True)
    for rel in ("__init__.py", "pipelines/__init__.py", "pipelines/jobs/__init__.py"):
        (fake / rel).write_text("")
    (fake / "pipelines" / "jobs" / "bad.py").write_text(
        "def run():\n    from airflow.sdk import Variable\n    from ...operators import rayjob\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    imported = imports_of("kuberay_provider.pipelines.jobs.bad")
    assert "airflow.sdk" in imported and "kuberay_provider.operators.rayjob" in imported


def test_the_staged_package_holds_exactly_the_cluster_side() -> None:
    payload = packaging.build_cluster_package()
    names = zipfile.ZipFile(io.BytesIO(payload)).namelist()
    assert names == [f"py_modules/{rel}" for rel in packaging.cluster_side_files()]
    assert payload == packaging.build_cluster_package()  # deterministic: same URI, Ray's cache stays valid
    assert not any(part in name for name in names for part in ("/operators/", "/hooks/", "/sensors/", "/triggers/",
                                                               "/local/", "builder.py", "compat.py", "seed.py"))


BLOCKER = textwrap.dedent("""
    import importlib.abc, os, sys
    SHIPPED = os.environ["SHIPPED"]

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            top = fullname.split(".")[0]
            if top == "airflow":
                raise ModuleNotFoundError(f"blocked: {fullname} (Airflow on the cluster side)", name=fullname)
            if top == "kuberay_provider":
                for finder in sys.meta_path:
                    if finder is self:
                        continue
                    spec = getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
                    if spec is not None:
                        if spec.origin and not spec.origin.startswith(SHIPPED):
                            raise ModuleNotFoundError(f"blocked: {fullname} from {spec.origin}", name=fullname)
                        return spec
            return None

    sys.meta_path.insert(0, Blocker())
""")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The staged cluster package, unpacked as Ray does (top-level directory stripped) with the blocker next to it."""
    root = tmp_path_factory.mktemp("cluster-package")
    uri = packaging.stage_cluster_package(str(root / "stage"))
    with zipfile.ZipFile(uri.removeprefix("file://")) as archive:
        archive.extractall(root / "unpacked")
    modules = root / "unpacked" / "py_modules"
    (root / "site").mkdir()
    (root / "site" / "sitecustomize.py").write_text(BLOCKER)
    return modules


def _run(shipped: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERAY_BQ_")}
    env["PYTHONPATH"] = f"{shipped}{os.pathsep}{shipped.parent.parent / 'site'}"
    env["SHIPPED"] = str(shipped) + os.sep
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300,
                          cwd=shipped.parent, check=False)


def test_cluster_modules_import_where_airflow_cannot(shipped: Path) -> None:
    code = textwrap.dedent(f"""
        import importlib, sys
        for name in {CLUSTER_MODULES!r}:
            module = importlib.import_module(name)
            assert module.__file__.startswith({str(shipped)!r}), module.__file__
        try:
            import airflow  # noqa: F401
        except ModuleNotFoundError as err:
            assert "blocked" in str(err)
        else:
            raise SystemExit("airflow was importable")
        try:
            import kuberay_provider.operators.rayjob  # noqa: F401
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("the Airflow side was importable")
        assert not [m for m in sys.modules if m.split(".")[0] == "airflow"]
        print("ok")
    """)
    result = _run(shipped, "-c", code)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


@pytest.mark.parametrize("job", JOBS)
def test_job_clis_run_from_the_shipped_package(shipped: Path, job: str) -> None:
    result = _run(shipped, "-m", job, "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage:" in result.stdout
