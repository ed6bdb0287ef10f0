"""The pure part of the lineage: dataset naming, inlets/outlets, the pipeline's tables, and the OpenLineage objects
the operators hand to the provider (rebuilt into a RunEvent and serialised by the OpenLineage client)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pendulum
import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.lineage import (
    DatasetRef,
    bigquery_dataset,
    bigquery_table_name,
    declared_datasets,
    lineage_entity,
    merge,
    operator_lineage,
    uri_dataset,
)
from kuberay_provider.pipelines.tables import TABLE_COLUMNS
from tests.lineage.support import hiding_openlineage

REPO = Path(__file__).resolve().parents[2]
HAS_PROVIDER = True
try:
    import airflow.providers.openlineage  # noqa: F401
except ImportError:
    HAS_PROVIDER = False
needs_provider = pytest.mark.skipif(not HAS_PROVIDER, reason="needs apache-airflow-providers-openlineage")


@pytest.mark.parametrize(("uri", "namespace", "name"), [
    ("bigquery://proj-1/churn/features", "bigquery", "proj-1.churn.features"),
    ("gs://bucket/models/churn/model.json", "gs://bucket", "models/churn/model.json"),
    ("gcs://bucket/a", "gs://bucket", "a"),
    ("s3://b/key/x.parquet", "s3://b", "key/x.parquet"),
    ("file:///tmp/x.csv", "file", "/tmp/x.csv"),
    ("postgres://db:5432/app.public.t", "postgres://db:5432", "/app.public.t"),
])  # fmt: skip
def test_asset_uris_follow_openlineage_naming(uri: str, namespace: str, name: str) -> None:
    assert uri_dataset(uri) == DatasetRef(namespace, name)


@pytest.mark.parametrize("uri", ["bigquery://proj/only-dataset", "bigquery:///d/t", "no-scheme/path"])
def test_a_uri_that_names_no_dataset_is_refused_naming_it(uri: str) -> None:
    with pytest.raises(InvalidParameterError, match="uri"):
        uri_dataset(uri)


def test_table_names_are_qualified_with_the_project() -> None:
    assert bigquery_table_name("churn.features", "proj") == "proj.churn.features"
    assert bigquery_table_name("other.churn.features", "proj") == "other.churn.features"
    for bad in ("features", "churn.features", "{{ var.value.x }}.features", "a..b"):
        with pytest.raises(InvalidParameterError, match="table"):
            bigquery_table_name(bad)
    ref = bigquery_dataset("churn.features", "proj", TABLE_COLUMNS["features"])
    assert ref.key == ("bigquery", "proj.churn.features") and ref.fields[:2] == (("customer_id", "INT64"),
                                                                                  ("snapshot_ts", "TIMESTAMP"))


def test_inlets_and_outlets_become_datasets_and_duplicates_keep_the_schema() -> None:
    from kuberay_provider.compat import Asset

    class Task:
        inlets = [Asset("bigquery://p/d/t"), "gs://b/x"]
        outlets = [Asset("bigquery://p/d/out"), object()]

    inputs, outputs = declared_datasets(Task())
    assert inputs == [DatasetRef("bigquery", "p.d.t"), DatasetRef("gs://b", "x")]
    assert outputs == [DatasetRef("bigquery", "p.d.out")]
    with_schema = DatasetRef("bigquery", "p.d.out", (("a", "INT64"),))
    assert merge([outputs[0], with_schema, None]) == [with_schema]
    assert lineage_entity(object()) is None


@needs_provider
def test_an_openlineage_dataset_declared_as_inlet_is_kept_with_its_schema() -> None:
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import schema_dataset

    dataset = Dataset(namespace="bigquery", name="p.d.t", facets={"schema": schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="x", type="STRING")])})
    assert lineage_entity(dataset) == DatasetRef("bigquery", "p.d.t", (("x", "STRING"),))


def build_pipeline() -> object:
    from airflow.providers.common.compat.sdk import DAG

    from kuberay_provider.pipelines.builder import retraining_pipeline

    with DAG("lineage_unit", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), schedule=None) as dag:
        retraining_pipeline(
            "g", raw_events_table="raw.events", raw_customers_table="raw.customers", features_table="out.features",
            metrics_table="out.metrics", predictions_table="other-proj.out.predictions", model_uri="/tmp/m",
            bigquery_project="proj-1", staging_uri="/tmp/s", spark_mode="{{ params.mode }}",
        )  # fmt: skip
    return dag


def test_the_pipeline_tasks_declare_their_tables_as_templated_fields() -> None:
    dag = build_pipeline()
    for task_id in ("g.etl_local", "g.etl_spark_operator"):
        task = dag.get_task(task_id)
        assert {"bigquery_inputs", "bigquery_outputs", "bigquery_project"} <= set(task.template_fields)
        assert task.bigquery_inputs == [{"table": "raw.events", "schema": "events"},
                                        {"table": "raw.customers", "schema": "customers"}]
        assert task.bigquery_outputs == [{"table": "out.features", "schema": "features"}]
    train = dag.get_task("g.train")
    assert train.bigquery_inputs == [{"table": "out.features", "schema": "features"}]
    assert [e["schema"] for e in train.bigquery_outputs] == ["metrics", "predictions"]


def test_a_malformed_lineage_table_list_is_refused_naming_the_parameter() -> None:
    from kuberay_provider.pipelines.tasks import LocalSparkEtlOperator

    for bad in ("out.features", [{"table": "out.features", "schema": "nope"}], [{"name": "x"}]):
        with pytest.raises(InvalidParameterError, match="bigquery_outputs"):
            LocalSparkEtlOperator(task_id="t", bash_command="true", bigquery_outputs=bad)


@needs_provider
def test_the_pipeline_tasks_hand_the_provider_bigquery_datasets_that_the_client_serialises() -> None:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.serde import Serde
    from openlineage.client.uuid import generate_new_uuid

    dag = build_pipeline()
    train = dag.get_task("g.train")
    lineage = train.get_openlineage_facets_on_complete(None)
    event = RunEvent(eventType=RunState.COMPLETE, eventTime="2026-12-02T00:00:00Z", run=Run(runId=str(generate_new_uuid())),
                     job=Job(namespace="ns", name="lineage_unit.g.train"), producer="test",
                     inputs=lineage.inputs, outputs=lineage.outputs)  # fmt: skip
    payload = json.loads(Serde.to_json(event))
    assert [(d["namespace"], d["name"]) for d in payload["inputs"]] == [("bigquery", "proj-1.out.features")]
    assert [(d["namespace"], d["name"]) for d in payload["outputs"]] == [
        ("bigquery", "proj-1.out.metrics"), ("bigquery", "other-proj.out.predictions")]
    fields = payload["outputs"][1]["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == list(TABLE_COLUMNS["predictions"])
    assert payload["outputs"][1]["facets"]["schema"]["_schemaURL"].endswith("SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet")
    etl = dag.get_task("g.etl_local").get_openlineage_facets_on_complete(None)
    assert [d.name for d in etl.inputs] == ["proj-1.raw.events", "proj-1.raw.customers"]
    assert [d.name for d in etl.outputs] == ["proj-1.out.features"]


@needs_provider
def test_a_rayjob_operator_without_inlets_or_outlets_reports_nothing() -> None:
    from kuberay_provider.operators.rayjob import RayJobOperator

    assert RayJobOperator(task_id="t", entrypoint="python x.py").get_openlineage_facets_on_complete(None) is None
    assert operator_lineage([], []) is None


def test_without_the_provider_the_operators_report_none(tmp_path: Path) -> None:
    """A fresh interpreter where ``openlineage`` and the provider cannot be imported (as when not installed)."""
    probe = textwrap.dedent("""
        import sys

        from kuberay_provider.compat import Asset
        from kuberay_provider.lineage import openlineage_available
        from kuberay_provider.operators.rayjob import RayJobOperator
        from kuberay_provider.pipelines.tasks import TrainingRayJobOperator

        task = RayJobOperator(task_id="t", entrypoint="x", inlets=[Asset("bigquery://p/d/t")])
        train = TrainingRayJobOperator(task_id="u", entrypoint="x", bigquery_project="p",
                                       bigquery_inputs=[{"table": "d.features", "schema": "features"}])
        print(openlineage_available(), task.get_openlineage_facets_on_complete(None),
              train.get_openlineage_facets_on_complete(None), "openlineage" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([
                                str(hiding_openlineage(tmp_path / "hide")), str(REPO), os.environ.get("PYTHONPATH", "")])})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "None", "None", "False"]
