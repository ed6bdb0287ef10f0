"""Downstream of ``ray_retraining``: scheduled on its predictions table, an Airflow asset (a dataset on Airflow 2).

Each retraining run whose ``train`` task wrote fresh predictions (``bigquery://<project>/<dataset>/predictions``)
queues one run of this DAG. Its task only reports which asset events triggered it (the run, the URI, when); a real
consumer would, e.g., start a BigQuery job or a RayJob over the table (data never passes through the worker).
The asset URI comes from :func:`kuberay_provider.pipelines.assets.churn_assets`, the same call the producer uses.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from kuberay_provider.pipelines.assets import churn_assets

PREDICTIONS = churn_assets()["predictions"]

with DAG(
    dag_id="churn_predictions_report",
    schedule=[PREDICTIONS],
    start_date=pendulum.datetime(2026, 9, 28, tz="UTC"),
    catchup=False,
    tags=["kuberay", "bigquery", "assets"],
    doc_md=__doc__,
) as dag:

    @task
    def report_fresh_predictions(**context) -> list[dict]:
        """The triggering asset events (``triggering_asset_events``; ``triggering_dataset_events`` on Airflow 2)."""
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        seen = []
        for asset, asset_events in events.items():
            for event in asset_events:
                source = getattr(event, "source_run_id", None) or getattr(event, "source_dag_run", None)
                seen.append({"uri": str(getattr(asset, "uri", asset)), "source_run": str(source),
                             "timestamp": str(getattr(event, "timestamp", ""))})
        print(f"fresh predictions: {seen}")
        return seen

    report_fresh_predictions()
