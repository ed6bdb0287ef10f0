"""``@task.ray_job`` end to end on the local stack (real Airflow, real local Ray, ``rayproject/ray`` image rules):
mapped over an upstream XCom, its return values read by a downstream task, a raising function failing with the
driver's traceback, in sync and deferrable mode. Runs on every CI lane."""

from __future__ import annotations

import pendulum
import pytest

from kuberay_provider import constants as c
from tests.integration.airflow_support import run_dag, task_states, wait_until, xcom
from tests.integration.conftest import airflow_db, kube  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.composer]
START = pendulum.datetime(2026, 1, 1, tz="UTC")
RAY = {"head": {"cpu": 1, "memory": "1Gi"}, "ttl_seconds_after_finished": 0, "pre_running_deadline_seconds": 240}


def _mapped_dag(namespace: str):
    from airflow.providers.common.compat.sdk import DAG, task

    with DAG(dag_id="decorator_mapped", schedule=None, start_date=START, catchup=False) as dag:
        @task
        def numbers() -> list[int]:
            return [2, 3]

        @task.ray_job(namespace=namespace, deferrable=False, **RAY)
        def square(x: int) -> dict:
            import ray

            ray.init()
            remote_square = ray.remote(lambda v: v * v)
            return {"x": x, "square": ray.get(remote_square.remote(x)), "ray": ray.__version__}

        @task
        def total(results: list[dict]) -> int:
            return sum(r["square"] for r in results)

        @task.ray_job(namespace=namespace, deferrable=False, **RAY)
        def explode(row: int) -> None:
            raise ValueError(f"bad input row {row}")

        total(square.expand(x=numbers()))
        explode(7)
    return dag


def test_mapped_results_reach_a_downstream_task_and_a_raise_fails_with_the_traceback(kube, namespace, capfd):  # noqa: F811
    dag_run = run_dag(_mapped_dag(namespace))
    states = task_states(dag_run)
    assert states == {"numbers": "success", "square": "success", "total": "success", "explode": "failed"}
    assert xcom(dag_run, "total") == 13  # 2*2 + 3*3, computed by Ray tasks on two transient clusters
    out = capfd.readouterr().out
    assert "Traceback (most recent call last)" in out and "ValueError: bad input row 7" in out
    driver_lines = [line for line in out.splitlines() if "[driver]" in line]
    assert driver_lines and not any("KUBERAY_TASK_RESULT" in line for line in driver_lines)  # XCom, not the log
    wait_until(lambda: kube.list_objects(c.RAYCLUSTER_KIND, namespace) == [], timeout=120)


def test_deferrable_return_value(kube, namespace):  # noqa: F811
    from airflow.providers.common.compat.sdk import DAG, task

    with DAG(dag_id="decorator_deferred", schedule=None, start_date=START, catchup=False) as dag:
        @task.ray_job(namespace=namespace, deferrable=True, **RAY)
        def describe(name: str, repeat: int) -> dict:
            import sys

            return {"greeting": " ".join([f"hello {name}"] * repeat), "python": sys.version_info[:2]}

        describe("ray", 2)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"describe": "success"}
    assert xcom(dag_run, "describe") == {"greeting": "hello ray hello ray", "python": [3, 11]}
    summary = xcom(dag_run, "describe", key="rayjob")
    assert summary["job_status"] == "SUCCEEDED" and summary["namespace"] == namespace
