"""The retraining pipeline's BigQuery tables as Airflow assets (datasets on Airflow 2): URIs, the outlets the
builder declares, the downstream DAG scheduled on fresh predictions, and (``composer``: on every lane) that a task
carrying the pipeline's outlets makes Airflow record the events and queue that DAG."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.pipelines.assets import bigquery_asset_uri, churn_asset_tables, churn_assets, pipeline_assets
from tests.integration.conftest import airflow_db  # noqa: F401  (fixture)
from tests.pipelines.test_builder import build

REPO = Path(__file__).resolve().parents[2]


def _uris(assets) -> list[str]:
    return [a.uri for a in assets]


@pytest.mark.parametrize(("table", "project", "uri"), [
    ("proj-1.churn.predictions", None, "bigquery://proj-1/churn/predictions"),
    ("churn.predictions", "proj-1", "bigquery://proj-1/churn/predictions"),
    ("other-proj.d.t", "proj-1", "bigquery://other-proj/d/t"),   # a qualified name keeps its own project
    (" local-project.churn.features ", None, "bigquery://local-project/churn/features"),
])  # fmt: skip
def test_bigquery_asset_uris_are_the_google_provider_form(table: str, project: str | None, uri: str) -> None:
    assert bigquery_asset_uri(table, project) == uri


@pytest.mark.parametrize(("table", "project", "rule"), [
    ("{{ var.value.ds }}.features", None, "asset URIs are fixed when the DAG is parsed"),
    ("churn.features", None, "names no project"),
    ("features", "p-1", "[project.]dataset.table"),
    ("a.b.c.d", None, "[project.]dataset.table"),
    ("Bad_Project.d.t", None, "is not a BigQuery project id"),
    ("p-1.da-ta.t", None, "[project.]dataset.table"),
])  # fmt: skip
def test_bad_asset_tables_name_the_parameter(table: str, project: str | None, rule: str) -> None:
    with pytest.raises(InvalidParameterError) as exc:
        pipeline_assets({"features": table}, project)
    assert exc.value.parameter == "asset_tables['features']" and rule in str(exc.value) and repr(table) in str(exc.value)


def test_builder_declares_outlets_on_the_tasks_that_write_the_tables() -> None:
    dag = build(spark_mode="{{ params.mode }}")  # literal tables out.* in project proj-1; both ETL tasks built
    for etl in ("g.etl_local", "g.etl_spark_operator"):
        assert _uris(dag.get_task(etl).outlets) == ["bigquery://proj-1/out/features"]
    assert _uris(dag.get_task("g.train").outlets) == ["bigquery://proj-1/out/metrics", "bigquery://proj-1/out/predictions"]
    assert all(not dag.get_task(t).outlets for t in ("g.stage_cluster_package", "g.confirm_teardown", "g.choose_etl"))


def test_templated_tables_need_asset_tables_and_an_empty_mapping_declares_none() -> None:
    templated = {"features_table": "{{ var.value.ds }}.features", "metrics_table": "{{ var.value.ds }}.metrics"}
    dag = build(spark_mode="local", **templated)
    assert dag.get_task("g.etl_local").outlets == []
    assert _uris(dag.get_task("g.train").outlets) == ["bigquery://proj-1/out/predictions"]  # the literal one
    dag = build(spark_mode="local", **templated, asset_tables={"features": "p-2.ds.features", "metrics": "p-2.ds.m"})
    assert _uris(dag.get_task("g.etl_local").outlets) == ["bigquery://p-2/ds/features"]
    assert _uris(dag.get_task("g.train").outlets) == ["bigquery://p-2/ds/m"]
    extra = pipeline_assets({"features": "p-3.reports.weekly"})["features"]
    dag = build(spark_mode="local", rayjob_kwargs={"outlets": [extra]})
    assert _uris(dag.get_task("g.train").outlets)[-1] == "bigquery://p-3/reports/weekly"  # added to the pipeline's
    dag = build(spark_mode="local", asset_tables={})
    assert dag.get_task("g.etl_local").outlets == [] and dag.get_task("g.train").outlets == []


def test_churn_assets_follow_the_variables_environment_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_KUBERAY_BQ_PROJECT", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_KUBERAY_BQ_DATASET", raising=False)
    assert churn_asset_tables()["predictions"] == "local-project.churn.predictions"
    monkeypatch.setenv("AIRFLOW_VAR_KUBERAY_BQ_PROJECT", "acme-ml")
    monkeypatch.setenv("AIRFLOW_VAR_KUBERAY_BQ_DATASET", "churn_prod")
    assert {k: a.uri for k, a in churn_assets().items()} == {
        "features": "bigquery://acme-ml/churn_prod/features", "metrics": "bigquery://acme-ml/churn_prod/metrics",
        "predictions": "bigquery://acme-ml/churn_prod/predictions"}


def _dag_files():
    """The two shipped DAG files, executed as the DAG processor would (no metadata DB needed)."""
    import runpy

    return tuple(runpy.run_path(str(REPO / "dags" / f"{name}.py"))["dag"]
                 for name in ("ray_retraining", "churn_predictions_report"))


def test_shipped_dags_produce_and_consume_the_same_assets(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pipelines.asset_support import schedule_uris

    monkeypatch.delenv("AIRFLOW_VAR_KUBERAY_BQ_PROJECT", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_KUBERAY_BQ_DATASET", raising=False)
    producer, consumer = _dag_files()
    base = "bigquery://local-project/churn"
    assert _uris(producer.get_task("churn.etl_local").outlets) == [f"{base}/features"]
    assert _uris(producer.get_task("churn.etl_spark_operator").outlets) == [f"{base}/features"]
    assert _uris(producer.get_task("churn.train").outlets) == [f"{base}/metrics", f"{base}/predictions"]
    assert schedule_uris(consumer) == {f"{base}/predictions"}
    assert producer.params["promotion_margin"] == 0.0


@pytest.mark.slow
@pytest.mark.composer
def test_the_pipelines_outlets_record_events_and_queue_the_downstream_dag(airflow_db) -> None:  # noqa: F811
    """Airflow itself (``dag.test`` on this lane's Airflow) records an event per outlet of a task carrying the train
    task's outlets and queues ``churn_predictions_report``; the whole pipeline is checked the same way by
    ``test_retraining_dag.py`` on the latest lane."""
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.python import PythonOperator

    from tests.integration.airflow_support import run_dag, task_states
    from tests.pipelines.asset_support import asset_events, queued_consumers, register_dags

    pipeline, consumer = _dag_files()
    outlets = pipeline.get_task("churn.train").outlets
    with DAG(dag_id="assets_producer", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as producer:
        PythonOperator(task_id="write_tables", python_callable=lambda: "written", outlets=list(outlets))
    register_dags(consumer, producer)
    dag_run = run_dag(producer)
    assert task_states(dag_run) == {"write_tables": "success"}
    for uri in _uris(outlets):
        assert asset_events(uri)[-1] == {"dag_id": "assets_producer", "task_id": "write_tables", "run_id": dag_run.run_id}
    predictions, metrics = (f"bigquery://local-project/churn/{t}" for t in ("predictions", "metrics"))
    assert queued_consumers(predictions) == {"churn_predictions_report"}
    assert queued_consumers(metrics) == set()  # nobody is scheduled on metrics


def test_a_table_airflow_takes_for_no_asset_is_a_clear_error_and_no_default_asset() -> None:
    from kuberay_provider.compat import airflow_major_version
    from kuberay_provider.pipelines.builder import default_asset_tables

    airflow2 = airflow_major_version() == 2  # Airflow 2's datasets take ASCII URIs only; Airflow 3's assets take any
    tables = {"features": "p-1.d.tábla", "metrics": "p-1.d.metrics"}
    if airflow2:
        with pytest.raises(InvalidParameterError) as exc:
            pipeline_assets({"features": tables["features"]})
        assert exc.value.parameter == "asset_tables['features']" and "ASCII" in str(exc.value)
        assert default_asset_tables(tables, "p-1") == {"metrics": "p-1.d.metrics"}  # left out, not refused
    else:
        assert _uris(pipeline_assets({"features": tables["features"]}).values()) == ["bigquery://p-1/d/tábla"]
        assert default_asset_tables(tables, "p-1") == tables
