"""Reading what OpenLineage's FileTransport wrote, with the OpenLineage client's own classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Airflow's OpenLineage provider configured as a user would: file transport (one JSON event per line), a namespace
NAMESPACE = "kuberay-lineage-test"


def openlineage_env(events_file: Path) -> dict[str, str]:
    """The environment that makes the OpenLineage provider write every event to ``events_file``."""
    return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_file),
                                                           "append": True}),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE}


def read_events(events_file: Path) -> list[dict[str, Any]]:
    """The run events in ``events_file``, each checked to be an OpenLineage RunEvent the client can rebuild."""
    if not events_file.exists():
        return []
    return [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]


def complete_event(events: list[dict[str, Any]], job_name: str) -> dict[str, Any]:
    """The one COMPLETE event of ``job_name`` (``dag_id.task_id``)."""
    found = [e for e in events if e.get("eventType") == "COMPLETE" and e.get("job", {}).get("name") == job_name]
    assert len(found) == 1, (job_name, sorted({(e.get("eventType"), e.get("job", {}).get("name")) for e in events}))
    return found[0]


def datasets(event: dict[str, Any], side: str) -> dict[str, Any]:
    """``{(namespace, name): openlineage.client Dataset}`` of an event's ``inputs`` or ``outputs``, rebuilt with the
    client's classes (its schema facet included), so a malformed dataset fails here."""
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import schema_dataset

    rebuilt = {}
    for raw in event.get(side) or []:
        facets = {}
        if "schema" in (raw.get("facets") or {}):
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
                schema_dataset.SchemaDatasetFacetFields(name=f["name"], type=f.get("type"))
                for f in raw["facets"]["schema"]["fields"]])
        rebuilt[(raw["namespace"], raw["name"])] = Dataset(namespace=raw["namespace"], name=raw["name"], facets=facets)
    return rebuilt


def columns(dataset: Any) -> list[tuple[str, str]]:
    """(name, type) of a client Dataset's schema facet."""
    schema = dataset.facets.get("schema")
    return [(f.name, f.type) for f in schema.fields] if schema else []


#: A ``sitecustomize`` that makes OpenLineage look not installed: its modules do not import and its distributions
#: (so the provider's entry point, which Airflow's provider discovery loads) are not listed.
HIDE_OPENLINEAGE = '''
import sys

HIDDEN = {"apache-airflow-providers-openlineage", "openlineage-python", "openlineage-integration-common",
          "openlineage-sql"}


class HideOpenLineage:
    def find_spec(self, name, path=None, target=None):
        if name == "openlineage" or name.startswith(("openlineage.", "airflow.providers.openlineage")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _without_openlineage(module):
    listed = module.distributions

    def distributions(**kwargs):
        return (d for d in listed(**kwargs)
                if (d.metadata["Name"] or "").lower().replace("_", "-") not in HIDDEN)

    module.distributions = distributions


sys.meta_path.insert(0, HideOpenLineage())
import importlib.metadata

_without_openlineage(importlib.metadata)
try:
    import importlib_metadata
except ImportError:
    pass
else:
    _without_openlineage(importlib_metadata)
'''


def hiding_openlineage(directory: Path) -> Path:
    """``directory`` with the ``sitecustomize.py`` of :data:`HIDE_OPENLINEAGE` (put it first on PYTHONPATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(HIDE_OPENLINEAGE)
    return directory


#: BigQuery's legacy type names (what the API may return) → the standard ones the lineage reports
STANDARD_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def assert_retraining_lineage(events_file: Path, client: Any, project: str = "local-project") -> str:
    """What ``dags/ray_retraining.py``'s run reported through OpenLineage (the events in ``events_file``): the
    COMPLETE events of the ETL and training tasks carry the BigQuery tables as ``bigquery`` / ``project.dataset.table``
    with their columns, those columns are the ones the jobs really created in BigQuery (``client``), and no other
    task reports a BigQuery dataset. Returns a one-line summary."""
    from kuberay_provider.pipelines.tables import TABLE_COLUMNS

    events = read_events(events_file)

    def table(role: str, dataset: str = "churn") -> str:
        return f"{project}.{dataset}.{role}"

    def real_columns(name: str) -> list[tuple[str, str]]:
        return [(f.name, STANDARD_TYPES.get(f.field_type.upper(), f.field_type.upper()))
                for f in client.get_table(name).schema]

    etl = complete_event(events, "ray_retraining.churn.etl_local")
    train = complete_event(events, "ray_retraining.churn.train")
    assert etl["job"]["namespace"] == train["job"]["namespace"] == NAMESPACE
    expected = {  # task: (inputs, outputs), by role
        "etl": (etl, {"events": table("events", "churn_raw"), "customers": table("customers", "churn_raw")},
                {"features": table("features")}),
        "train": (train, {"features": table("features")},
                  {"metrics": table("metrics"), "predictions": table("predictions")}),
    }
    for task, (event, inputs, outputs) in expected.items():
        for side, wanted in (("inputs", inputs), ("outputs", outputs)):
            reported = datasets(event, side)
            assert set(reported) == {("bigquery", name) for name in wanted.values()}, (task, side, list(reported))
            for role, name in wanted.items():
                reported_columns = columns(reported[("bigquery", name)])
                assert reported_columns == list(TABLE_COLUMNS[role]), (task, role)
                # the schema facet is what the jobs really wrote (or read) in BigQuery
                assert sorted(reported_columns) == sorted(real_columns(name)), (task, role)
    # the other tasks report no BigQuery dataset (they stage code, branch, confirm the teardown)
    others = [e for e in events if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith("ray_retraining.")
              and e["job"]["name"] not in ("ray_retraining.churn.etl_local", "ray_retraining.churn.train")]
    assert others and all(not any(d["namespace"] == "bigquery" for d in e.get("outputs") or []) for e in others)
    return (f"lineage: {len(events)} OpenLineage events; etl {sorted(n for _, n in datasets(etl, 'inputs'))} → "
            f"{sorted(n for _, n in datasets(etl, 'outputs'))}; train → {sorted(n for _, n in datasets(train, 'outputs'))}")
