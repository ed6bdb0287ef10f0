"""A user DAG: the entrypoint comes from an upstream task (XComArg), the connection names the namespace, the
teardown sensor gets the RayJob's name from the operator's XCom (XComArg too) and no task sets ``namespace``."""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor

with DAG(dag_id="user_xcom_namespace_conn", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False, tags=["tests"]):

    @task
    def build_command(epochs: int = 2) -> str:
        return f"python -c \"print('epochs={epochs} from xcom')\""

    train = RayJobOperator(
        task_id="train",
        entrypoint=build_command(),
        kubernetes_conn_id="kuberay_user",
        head={"cpu": 1, "memory": "1Gi"},
        ttl_seconds_after_finished=0,
        labels={"team": "ml"},
    )
    confirm = RayClusterDeletedSensor(
        task_id="confirm_teardown",
        rayjob_name=train.output["rayjob_name"],  # the XCom key the operator pushes once the RayJob exists
        kubernetes_conn_id="kuberay_user",
        mode="reschedule",
        exponential_backoff=True,
        poke_interval=1,
        timeout=180,
    )
    train >> confirm.as_teardown(setups=train)
