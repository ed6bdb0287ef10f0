"""``@task.ray_job`` end to end on the local stack (real Airflow, real local Ray, ``rayproject/ray`` image rules):
mapped over an upstream XCom, its return values read by a downstream task, a raising function failing with the
driver's traceback, in sync and deferrable mode. Runs on every CI lane."""

from __future__ import annotations

import pendulum
import pytest

from kuberay_provider import constants as c
from tests.integration.airflow_support import in_background, join_checked, run_dag, task_states, wait_until, xcom
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


def test_retry_after_a_worker_crash_reattaches_and_returns_the_value(kube, local_stack, namespace, capfd):  # noqa: F811
    """Try 1's worker "crashes" while the RayJob runs: its wait and its cleanup die (the machinery of
    ``test_rayjob_lifecycle``'s re-attach test: 403s on the RayJob requests and dropped watches), the RayJob keeps
    running; try 2 re-attaches to it instead of submitting again and still returns the function's value as XCom."""
    import datetime as dt

    from airflow.providers.common.compat.sdk import DAG, task

    faults = local_stack.server.faults

    def crash_try_one_once_running() -> None:
        wait_until(lambda: any((j.get("status") or {}).get("jobStatus") == "RUNNING"
                               for j in kube.list_rayjobs(namespace)), timeout=120)
        faults.fail_next(1, 403, method="GET", path_contains="/rayjobs")
        faults.fail_next(3, 403, method="DELETE", path_contains="/rayjobs")
        faults.drop_watches()

    with DAG(dag_id="decorator_reattach", schedule=None, start_date=START, catchup=False) as dag:
        @task.ray_job(namespace=namespace, deferrable=False, retries=1, retry_delay=dt.timedelta(seconds=0), **RAY)
        def slow_sum(values: list[int]) -> dict:
            import time

            time.sleep(20)
            return {"sum": sum(values), "n": len(values)}

        slow_sum([1, 2, 3, 4])
    helper = in_background(crash_try_one_once_running)
    dag_run = run_dag(dag)
    join_checked(helper)
    faults.clear()
    assert task_states(dag_run) == {"slow_sum": "success"}
    assert xcom(dag_run, "slow_sum") == {"sum": 10, "n": 4}  # the value of the one Ray run, read after re-attaching
    summary = xcom(dag_run, "slow_sum", key="rayjob")
    assert summary["reattached"] is True and summary["job_status"] == "SUCCEEDED"
    [job] = kube.list_rayjobs(namespace)  # one RayJob for both tries, created by try 1
    assert job["metadata"]["labels"][c.TRY_NUMBER_LABEL] == "1"
    creates = [r for r in local_stack.server.external_requests()
               if r.method == "POST" and r.path.endswith(f"/namespaces/{namespace}/rayjobs")]
    assert len(creates) == 1
    assert "Re-attaching to RayJob" in capfd.readouterr().out
    wait_until(lambda: kube.list_objects(c.RAYCLUSTER_KIND, namespace) == [], timeout=120)
