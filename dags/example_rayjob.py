"""Example: one RayJob on a transient Ray cluster, then confirm the cluster is gone.

Runs unchanged on GKE/Composer (a ``kubernetes_default`` connection to the cluster; KubeRay installed by
the platform team) and on the local stack (``kuberay-local up`` writes the connection).
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor

HELLO_RAY = (
    "python -c \"import ray; ray.init(); square = ray.remote(lambda x: x * x); "
    "print('sum of squares 0..9 =', sum(ray.get([square.remote(i) for i in range(10)])))\""
)

with DAG(
    dag_id="example_kuberay_rayjob",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["kuberay", "example"],
    params={"ttl_seconds_after_finished": 5},
) as dag:
    hello = RayJobOperator(
        task_id="hello_ray",
        entrypoint=HELLO_RAY,
        head={"cpu": 1, "memory": "2Gi"},
        worker_groups=[{"name": "workers", "replicas": 1, "cpu": 1, "memory": "2Gi"}],
        ttl_seconds_after_finished=5,
        pre_running_deadline_seconds=600,
    )
    confirm_teardown = RayClusterDeletedSensor(
        task_id="confirm_teardown",
        rayjob_name="{{ ti.xcom_pull(task_ids='hello_ray', key='rayjob_name') }}",
        poke_interval=2,
        timeout=300,
    )
    hello >> confirm_teardown.as_teardown(setups=hello)
