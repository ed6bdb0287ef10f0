"""Shared fixtures: one local KubeRay stack (API server + controller + real Ray) for the whole session."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest-xdist workers (scripts/test.sh runs two): each gets an AIRFLOW_HOME (metadata DB) of its own, set before
# anything imports Airflow, beside its own local stack, Ray clusters and ports.
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("AIRFLOW_HOME"):
    _home = Path(os.environ["AIRFLOW_HOME"]) / os.environ["PYTEST_XDIST_WORKER"]
    _home.mkdir(parents=True, exist_ok=True)
    os.environ["AIRFLOW_HOME"] = str(_home)

import kuberay_provider
from kuberay_provider.local.stack import LocalStack

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(kuberay_provider.__file__).resolve().parent
# scripts/test.sh runs the suite against the installed wheel: importing the checkout's copy would test something no
# user installs (and hide files missing from the wheel).
if os.environ.get("KUBERAY_TEST_INSTALLED") == "1" and PACKAGE_DIR == REPO / "kuberay_provider":
    raise pytest.UsageError(
        f"kuberay_provider was imported from the working tree ({PACKAGE_DIR}), not from the installed wheel: "
        "run the suite with PYTHONSAFEPATH=1 and without the checkout on sys.path (scripts/test.sh does)"
    )


# The longest files first (seconds each, from the CI lanes' junit reports), then every other file with a slow test,
# then the fast ones: pytest-xdist's --dist loadfile hands files out in collection order (scripts/test.sh passes
# --no-loadscope-reorder: xdist would otherwise put the files with the most tests first), so a long end-to-end file
# collected last would run alone while the other workers idle (longest-processing-time-first keeps them busy).
LONGEST_FIRST = (
    "tests/pipelines/test_retraining_dag.py",
    "tests/faults/test_fault_suite.py",
    "tests/lineage/test_lineage_local_stack.py",
    "tests/dags/test_user_dags.py",
    "tests/integration/test_rayjob_lifecycle.py",
    "tests/faults/test_trigger_cancellation.py",
    "tests/integration/test_ray_job_decorator.py",
    "tests/local/test_controller.py",
    "tests/integration/test_kueue.py",
    "tests/local/test_images.py",
    "tests/bench/test_bench_bigquery_smoke.py",
    "tests/specs/test_kuberay_samples.py",
    "tests/integration/test_example_dag.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def relative(item: pytest.Item) -> str:
        path = Path(str(item.path)).resolve()
        return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)

    slow_files = {relative(item) for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> tuple[int, int]:
        path = relative(item)
        if path in LONGEST_FIRST:
            return (0, LONGEST_FIRST.index(path))
        return (1, 0) if path in slow_files else (2, 0)

    items.sort(key=rank)  # stable: each file's own order (and its module-scoped fixtures) stays as it is


def pytest_report_header(config: pytest.Config) -> list[str]:
    from airflow import __version__ as airflow_version

    lane = os.environ.get("KUBERAY_LANE", "dev")
    return [f"lane {lane}: Airflow {airflow_version}, kuberay_provider {kuberay_provider.__version__} from {PACKAGE_DIR}"]

# py4j logs at INFO from __del__ when the interpreter exits, after pytest closed the captured streams.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A running :class:`LocalStack` (requeue 1 s) shared by every test of the session.

    Without the BigQuery emulator: tests that need one start their own (``tests/pipelines``, ``tests/bigquery``).
    """
    base: Path = tmp_path_factory.mktemp("kuberay-local")
    stack = LocalStack(base, requeue_seconds=1.0, bigquery=False)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        assert stack.leftover_ray_pids() == [], "Ray processes left behind by the local stack"


@pytest.fixture
def namespace(local_stack: LocalStack) -> str:
    """A namespace name unique to the test (namespaces exist implicitly on the local API server)."""
    return f"t-{uuid.uuid4().hex[:10]}"
