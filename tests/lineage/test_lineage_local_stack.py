"""OpenLineage end to end on the local stack: DAGs run with ``airflow dags test`` (the CLI, as users run them) with
Airflow's OpenLineage provider writing its events through the file transport; the events are read back and rebuilt
with the OpenLineage client's classes (``tests/lineage/support.py``).

- ``dags/ray_retraining.py``'s lineage is checked inside its own end-to-end run
  (``tests/pipelines/test_retraining_dag.py``, with :func:`tests.lineage.support.assert_retraining_lineage`): one
  retraining run serves both;
- a plain RayJobOperator with ``inlets``/``outlets`` reports them;
- the same DAG with the OpenLineage provider and client hidden runs unchanged and writes no event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuberay_provider.local.stack import LocalStack
from tests.integration.airflow_support import AIRFLOW_2
from tests.lineage.support import (
    NAMESPACE,
    complete_event,
    datasets,
    hiding_openlineage,
    openlineage_env,
    read_events,
)

pytestmark = pytest.mark.slow
pytest.importorskip("airflow.providers.openlineage", reason="needs apache-airflow-providers-openlineage (test extra)")

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("lineage-stack"), requeue_seconds=1.0, bigquery=True)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home-lineage")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return home


def dags_test(stack: LocalStack, home: Path, dag_id: str, date: str, dags_folder: Path,
              env: dict[str, str], dag_file: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "RAY_ADDRESS")}
    full_env.update(stack.env)
    full_env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                     "AIRFLOW__CORE__UNIT_TEST_MODE": "False", "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                     "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                     **env})  # fmt: skip
    where = [] if dag_file is None else (["-f", str(dag_file)] if not AIRFLOW_2 else ["-S", str(dag_file)])
    return subprocess.run([sys.executable, "-m", "airflow", "dags", "test", dag_id, date, *where], env=full_env,
                          capture_output=True, text=True, timeout=timeout, cwd="/", check=False)


LINEAGE_DAG = HERE / "dags" / "lineage_rayjob.py"
DATE = "2026-11-20T00:00:00+00:00"


def test_rayjob_operator_reports_its_inlets_and_outlets(stack, airflow_home, tmp_path) -> None:
    events_file = tmp_path / "openlineage.jsonl"
    result = dags_test(stack, airflow_home, "lineage_rayjob", DATE, LINEAGE_DAG.parent, openlineage_env(events_file),
                       dag_file=LINEAGE_DAG, timeout=420)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    event = complete_event(read_events(events_file), "lineage_rayjob.score")
    assert list(datasets(event, "inputs")) == [("bigquery", "local-project.churn.features")]
    assert list(datasets(event, "outputs")) == [("gs://churn-models", "scores/latest.parquet")]
    assert "scored" in out


def test_without_the_openlineage_provider_the_operator_runs_unchanged(stack, airflow_home, tmp_path) -> None:
    hidden = hiding_openlineage(tmp_path / "hide")
    events_file = tmp_path / "openlineage.jsonl"
    probe = subprocess.run([sys.executable, "-c", "import kuberay_provider.lineage as l; print(l.openlineage_available())"],
                           env={**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), str(REPO)])},
                           capture_output=True, text=True, timeout=60, check=False)
    assert probe.stdout.strip() == "False", probe.stderr[-2000:]
    result = dags_test(stack, airflow_home, "lineage_rayjob", DATE, LINEAGE_DAG.parent, {
        **openlineage_env(events_file),
        "PYTHONPATH": os.pathsep.join([str(hidden), str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }, dag_file=LINEAGE_DAG, timeout=420)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "scored" in out and not events_file.exists()
    assert json.dumps(NAMESPACE) not in out
