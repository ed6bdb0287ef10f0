"""A user DAG whose worker count comes from a param as a Jinja string (renders to ``"1"``)."""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from kuberay_provider.operators.rayjob import RayJobOperator

with DAG(dag_id="user_jinja_replicas", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False, params={"workers": 1}, tags=["tests"]):
    RayJobOperator(
        task_id="train",
        entrypoint="python -c \"print('workers={{ params.workers }}')\"",
        kubernetes_conn_id="kuberay_user",
        head={"cpu": 1, "memory": "1Gi"},
        worker_groups=[{"name": "cpu", "replicas": "{{ params.workers }}", "min_replicas": "{{ params.workers }}",
                        "max_replicas": "{{ params.workers }}", "cpu": 1, "memory": "1Gi"}],
        ttl_seconds_after_finished=0,
        pre_running_deadline_seconds=240,
    )
