"""A user DAG: one shared RayCluster, RayJobs mapped over it with ``expand`` and ``expand_kwargs``, a sensor
that gives up softly (``soft_fail``) while the cluster still runs, the cluster deleted in a teardown, and the
janitor sweeping the finished RayJobs — every task in the connection's namespace, none naming one."""

from __future__ import annotations

import pendulum

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

from kuberay_provider.operators.janitor import RayJanitorOperator
from kuberay_provider.operators.raycluster import RayClusterCreateOperator, RayClusterDeleteOperator
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor

CLUSTER = "shared-{{ ds_nodash }}"

with DAG(dag_id="user_mapped_shared_cluster", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False, tags=["tests"]):

    @task
    def shard_kwargs() -> list[dict]:
        return [{"entrypoint": f"python -c \"print('kwargs shard {i}')\"", "job_id": f"kw-shard-{i}"} for i in range(2)]

    create = RayClusterCreateOperator(task_id="create_cluster", name=CLUSTER, kubernetes_conn_id="kuberay_user",
                                      head={"cpu": 1, "memory": "1Gi"}, ready_timeout=240)
    still_there = RayClusterDeletedSensor(task_id="cluster_still_running", cluster_names=[CLUSTER],
                                          kubernetes_conn_id="kuberay_user", soft_fail=True, poke_interval=1, timeout=2)
    scored = RayJobOperator.partial(
        task_id="score", cluster_selector=CLUSTER, kubernetes_conn_id="kuberay_user", shutdown_after_job_finishes=False,
        ttl_seconds_after_finished=0,
    ).expand(entrypoint=["python -c \"print('expand shard 0')\"", "python -c \"print('expand shard 1')\""])
    scored_kwargs = RayJobOperator.partial(
        task_id="score_kwargs", cluster_selector=CLUSTER, kubernetes_conn_id="kuberay_user",
        shutdown_after_job_finishes=False, ttl_seconds_after_finished=0,
    ).expand_kwargs(shard_kwargs())
    delete = RayClusterDeleteOperator(task_id="delete_cluster", name=CLUSTER, kubernetes_conn_id="kuberay_user")
    sweep = RayJanitorOperator(task_id="janitor", kubernetes_conn_id="kuberay_user", trigger_rule="all_done")
    create >> still_there
    create >> [scored, scored_kwargs] >> delete.as_teardown(setups=create)
    delete >> sweep
