"""Airflow's own records of assets (datasets on Airflow 2): events, and the DAG-run queue of scheduled consumers.

The Airflow 2/3 differences of these models are taken here, once (``AssetEvent``/``AssetDagRunQueue`` on Airflow 3,
``DatasetEvent``/``DatasetDagRunQueue`` on Airflow 2).
"""

from __future__ import annotations

from typing import Any

from tests.integration.airflow_support import AIRFLOW_2


def _models() -> tuple[Any, Any, Any, str]:
    """(asset model, event model, queue model, the asset-id column name)."""
    if AIRFLOW_2:
        from airflow.models.dataset import DatasetDagRunQueue, DatasetEvent, DatasetModel

        return DatasetModel, DatasetEvent, DatasetDagRunQueue, "dataset_id"
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel

    return AssetModel, AssetEvent, AssetDagRunQueue, "asset_id"


def register_dags(*dags: Any, unpause: bool = True) -> None:
    """Write ``dags`` to the metadata DB as the DAG processor would (their asset references included) and unpause
    them (new DAGs are paused by default, and a paused consumer is never queued)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    if AIRFLOW_2:
        for dag in dags:
            dag.sync_to_db()
    else:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

        DagBundlesManager().sync_bundles_to_db()
        bag = DagBag(collect_dags=False)
        for dag in dags:
            bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
    if unpause:
        with create_session() as session:
            for dag in dags:
                session.query(DagModel).filter(DagModel.dag_id == dag.dag_id).update({"is_paused": False})


def asset_events(uri: str) -> list[dict[str, Any]]:
    """The asset events of ``uri``: source dag/task/run of each, oldest first."""
    from airflow.utils.session import create_session

    asset_model, event_model, _, id_column = _models()
    with create_session() as session:
        asset = session.query(asset_model).filter(asset_model.uri == uri).one_or_none()
        if asset is None:
            return []
        rows = (session.query(event_model).filter(getattr(event_model, id_column) == asset.id)
                .order_by(event_model.timestamp).all())  # fmt: skip
        return [{"dag_id": r.source_dag_id, "task_id": r.source_task_id, "run_id": r.source_run_id} for r in rows]


def queued_consumers(uri: str) -> set[str]:
    """The DAG ids Airflow has queued a run for because ``uri`` changed (its asset DAG-run queue)."""
    from airflow.utils.session import create_session

    asset_model, _, queue_model, id_column = _models()
    with create_session() as session:
        asset = session.query(asset_model).filter(asset_model.uri == uri).one_or_none()
        if asset is None:
            return set()
        return {row.target_dag_id for row in session.query(queue_model).filter(getattr(queue_model, id_column) == asset.id)}


def schedule_uris(dag: Any) -> set[str]:
    """The asset URIs a DAG is scheduled on (walking its AssetAll/AssetAny condition)."""
    condition = getattr(dag.timetable, "asset_condition", None) or getattr(dag.timetable, "dataset_condition", None)

    def walk(node: Any) -> set[str]:
        if hasattr(node, "objects"):
            return set().union(*(walk(child) for child in node.objects))
        return {node.uri}

    return walk(condition)
