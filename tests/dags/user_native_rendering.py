"""A user DAG with ``render_template_as_native_obj=True``: Jinja yields native ints for replicas, CPUs and the TTL."""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from kuberay_provider.operators.rayjob import RayJobOperator

with DAG(dag_id="user_native_rendering", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False, render_template_as_native_obj=True, params={"workers": 1, "cpu": 1, "ttl": 0},
         tags=["tests"]):
    RayJobOperator(
        task_id="train",
        entrypoint="python -c \"print('native ok')\"",
        kubernetes_conn_id="kuberay_user",
        head={"cpu": "{{ params.cpu }}", "memory": "1Gi"},
        worker_groups=[{"name": "cpu", "replicas": "{{ params.workers }}", "cpu": "{{ params.cpu }}", "memory": "1Gi"}],
        ttl_seconds_after_finished="{{ params.ttl }}",
        pre_running_deadline_seconds=240,
    )
