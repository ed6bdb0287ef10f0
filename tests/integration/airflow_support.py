"""Running real DAGs in-process with ``dag.test()`` against the local stack (Airflow 3 or 2, on SQLite).

Where Airflow 2 and 3 differ (DAG serialisation before ``dag.test``, the XCom model, macros, log redaction) the
branch is taken here, once, so every test runs on each CI lane.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from airflow import __version__ as AIRFLOW_VERSION

AIRFLOW_2 = int(AIRFLOW_VERSION.split(".", 1)[0]) < 3


def run_dag(dag: Any, **kwargs: Any) -> Any:
    """Run one DagRun of ``dag`` in this process (``dag.test``); on Airflow 3 it is serialised into the metadata DB
    first, which ``dag.test`` needs there."""
    if not AIRFLOW_2:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

        DagBundlesManager().sync_bundles_to_db()
        bag = DagBag(collect_dags=False)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**kwargs)


def xcom_model() -> Any:
    """The ORM model of XCom rows: ``XComModel`` on Airflow 3, ``XCom`` on Airflow 2."""
    if AIRFLOW_2:
        from airflow.models.xcom import XCom

        return XCom
    from airflow.models.xcom import XComModel

    return XComModel


def macros() -> Any:
    """Airflow's ``macros`` namespace as templates see it."""
    if AIRFLOW_2:
        from airflow import macros as airflow_macros

        return airflow_macros
    from airflow.sdk.execution_time import macros as sdk_macros

    return sdk_macros


def redact(value: Any) -> Any:
    """Airflow's own redaction of registered secrets (what its task-log masking applies)."""
    if AIRFLOW_2:
        from airflow.utils.log.secrets_masker import redact as airflow_redact
    else:
        from airflow.sdk.log import redact as airflow_redact
    return airflow_redact(value)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def task_instance(dag_run: Any, task_id: str) -> Any:
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """An XCom value of the run, deserialised."""
    from airflow.utils.session import create_session

    model = xcom_model()
    with create_session() as session:
        row = session.query(model).filter_by(
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key
        ).one_or_none()
        return None if row is None else xcom_value(row)


def xcom_value(row: Any) -> Any:
    """The value of an XCom row (JSON text, bytes or an already decoded column, by Airflow version and DB)."""
    import json

    value = row.value
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:  # a column that already holds the deserialised string
        return value


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
