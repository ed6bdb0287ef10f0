"""OpenLineage end to end on the local stack: DAGs run with ``airflow dags test`` (the CLI, as users run them) with
Airflow's OpenLineage provider writing its events through the file transport; the events are read back and rebuilt
with the OpenLineage client's classes (``tests/lineage/support.py``).

- ``dags/ray_retraining.py`` (seed → local Spark ETL → Ray training, BigQuery emulator): the COMPLETE events of the
  ETL and training tasks carry the BigQuery tables as ``bigquery`` / ``project.dataset.table`` with their columns,
  and those columns are the ones the jobs really created in BigQuery;
- a plain RayJobOperator with ``inlets``/``outlets`` reports them;
- the same DAG with the OpenLineage provider and client hidden runs unchanged and writes no event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kuberay_provider.local.stack import LocalStack
from kuberay_provider.pipelines.tables import TABLE_COLUMNS
from tests.integration.airflow_support import AIRFLOW_2
from tests.lineage.support import (
    NAMESPACE,
    columns,
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
END = datetime(2026, 11, 16, tzinfo=UTC)
PROJECT = "local-project"
#: BigQuery's legacy type names (what the API may return) → the standard ones the lineage reports
STANDARD = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


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


def _real_columns(client: Any, table: str) -> list[tuple[str, str]]:
    return [(f.name, STANDARD.get(f.field_type.upper(), f.field_type.upper())) for f in client.get_table(table).schema]


def test_retraining_dag_reports_its_bigquery_tables_with_their_schemas(stack, airflow_home, tmp_path) -> None:
    from kuberay_provider.bigquery.clients import bigquery_client
    from kuberay_provider.pipelines.seed import generate, seed_bigquery

    seed_bigquery(generate(3000, end=END), stack.bigquery_emulator.config, "churn_raw")
    events_file = tmp_path / "openlineage.jsonl"
    result = dags_test(stack, airflow_home, "ray_retraining", END.isoformat(), REPO / "dags", {
        **openlineage_env(events_file), "SPARK_LOCAL_DIRS": str(tmp_path / "spark"),
        "AIRFLOW_VAR_KUBERAY_STAGING_URI": str(tmp_path / "staging")})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    events = read_events(events_file)

    def table(role: str, dataset: str = "churn") -> str:
        return f"{PROJECT}.{dataset}.{role}"

    etl = complete_event(events, "ray_retraining.churn.etl_local")
    train = complete_event(events, "ray_retraining.churn.train")
    assert etl["job"]["namespace"] == train["job"]["namespace"] == NAMESPACE
    expected = {  # task: (inputs, outputs), by role
        "etl": (etl, {"events": table("events", "churn_raw"), "customers": table("customers", "churn_raw")},
                {"features": table("features")}),
        "train": (train, {"features": table("features")},
                  {"metrics": table("metrics"), "predictions": table("predictions")}),
    }
    client = bigquery_client(stack.bigquery_emulator.config)
    for task, (event, inputs, outputs) in expected.items():
        for side, wanted in (("inputs", inputs), ("outputs", outputs)):
            reported = datasets(event, side)
            assert set(reported) == {("bigquery", name) for name in wanted.values()}, (task, side, list(reported))
            for role, name in wanted.items():
                reported_columns = columns(reported[("bigquery", name)])
                assert reported_columns == list(TABLE_COLUMNS[role]), (task, role)
                # the schema facet is what the jobs really wrote (or read) in BigQuery
                assert sorted(reported_columns) == sorted(_real_columns(client, name)), (task, role)
    # the other tasks report no BigQuery dataset (they stage code, branch, confirm the teardown)
    others = [e for e in events if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith("ray_retraining.")
              and e["job"]["name"] not in ("ray_retraining.churn.etl_local", "ray_retraining.churn.train")]
    assert others and all(not any(d["namespace"] == "bigquery" for d in e.get("outputs") or []) for e in others)
    print(f"lineage: {len(events)} OpenLineage events; etl {sorted(n for _, n in datasets(etl, 'inputs'))} → "
          f"{sorted(n for _, n in datasets(etl, 'outputs'))}; train → {sorted(n for _, n in datasets(train, 'outputs'))}")
    assert stack.ray_pids() == []


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
