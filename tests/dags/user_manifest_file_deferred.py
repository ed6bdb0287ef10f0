"""A user DAG: the RayJob from a templated manifest file, waited for in the triggerer (deferrable), in the
connection's namespace; the job fails, the resumed task deletes it there, and the teardown sensor confirms it."""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor

with DAG(dag_id="user_manifest_file_deferred", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False, params={"config": "train.yaml"}, tags=["tests"]):
    train = RayJobOperator(
        task_id="train",
        manifest="rayjob_manifest.yaml",
        kubernetes_conn_id="kuberay_user",
        deferrable=True,
        ttl_seconds_after_finished=0,
        pre_running_deadline_seconds=240,
    )
    confirm = RayClusterDeletedSensor(
        task_id="confirm_teardown",
        rayjob_name="{{ ti.xcom_pull(task_ids='train', key='rayjob_name') }}",
        kubernetes_conn_id="kuberay_user",
        poke_interval=1,
        timeout=180,
        trigger_rule="all_done",  # runs when train failed too (a teardown of a *failed* setup would not run)
    )
    train >> confirm
