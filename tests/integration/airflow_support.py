"""Running real DAGs in-process with ``dag.test()`` against the local stack (Airflow 3 on SQLite)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """Serialise ``dag`` into the metadata DB (``dag.test`` needs it) and run one DagRun in this process."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def task_instance(dag_run: Any, task_id: str) -> Any:
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """An XCom value of the run, deserialised."""
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key
        ).one_or_none()
        if row is None:
            return None
        value = row.value
        return json.loads(value) if isinstance(value, str) else value


def wait_until(predicate: Callable[[], Any], timeout: float = 120.0, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def in_background(fn: Callable[[], Any]) -> threading.Thread:
    """Run ``fn`` beside the DAG run (to act on the cluster while a task waits)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # surfaced by join_checked
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def join_checked(thread: threading.Thread, timeout: float = 60.0) -> None:
    thread.join(timeout)
    errors = getattr(thread, "errors", [])
    if errors:
        raise errors[0]
