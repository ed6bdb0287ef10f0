"""A RayJobOperator declaring inlets and outlets (run by tests/lineage with ``airflow dags test``)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from kuberay_provider.compat import Asset
from kuberay_provider.operators.rayjob import RayJobOperator

with DAG(dag_id="lineage_rayjob", schedule=None, start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
         catchup=False, tags=["kuberay", "lineage"]) as dag:
    RayJobOperator(
        task_id="score",
        entrypoint="python -c \"print('scored')\"",
        head={"cpu": 1, "memory": "1Gi"},
        ttl_seconds_after_finished=0,
        inlets=[Asset("bigquery://local-project/churn/features")],
        outlets=[Asset("gs://churn-models/scores/latest.parquet")],
    )
