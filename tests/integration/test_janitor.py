"""RayJanitorOperator end to end: real Airflow (dag.test, metadata DB with real task instance states), the
emulated Kubernetes API over HTTP and the local KubeRay controller. Cheap: RayJobs are created suspended and
RayClusters unschedulable, so no Ray process ever starts."""

from __future__ import annotations

import copy
import datetime as dt
import time
from typing import Any

import pendulum
import pytest

from kuberay_provider import constants as c
from kuberay_provider.local.clusters import SIMULATE_ANNOTATION
from kuberay_provider.naming import TaskInstanceIdentity
from tests.integration.airflow_support import run_dag, task_states, wait_until, xcom

pytestmark = pytest.mark.slow

START = pendulum.datetime(2026, 1, 1, tz="UTC")
OWNER_DAG = "janitor_owner"
#: task id in the owner DAG → the state its task instance is put in; each owns one RayJob named like it.
TI_STATES = {
    "ti-running": "running", "ti-deferred": "deferred", "ti-queued": "queued", "ti-up-for-retry": "up_for_retry",
    "ti-success": "success", "ti-failed": "failed",
}
KEPT_BY_TI = {"ti-running", "ti-deferred", "ti-queued", "ti-up-for-retry"}


def _owner_run(states: dict[str, str]) -> str:
    """Run a DAG with one task per entry, then set each task instance's state in the metadata DB; its run_id."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.utils.session import create_session

    with DAG(dag_id=OWNER_DAG, schedule=None, start_date=START, catchup=False) as dag:
        for task_id in states:
            EmptyOperator(task_id=task_id)
    dag_run = run_dag(dag)
    assert set(task_states(dag_run).values()) == {"success"}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=OWNER_DAG, run_id=dag_run.run_id):
            ti.state = states[ti.task_id]
    return dag_run.run_id


def _rayjob(name: str, namespace: str, owner: TaskInstanceIdentity | None, *, labelled: bool = True) -> dict[str, Any]:
    """The RayJob RayJobOperator would create for ``owner``, suspended (KubeRay never starts its cluster)."""
    from kuberay_provider.operators.rayjob import RayJobOperator

    op = RayJobOperator(task_id=f"build-{name}", name=name, namespace=namespace, entrypoint="python -c 'print(1)'",
                        head={"cpu": 1, "memory": "1Gi"})
    body = op.build_manifest(owner or TaskInstanceIdentity("x", "x", "x"))
    body["spec"]["suspend"] = True
    meta = body["metadata"]
    if owner is None:
        meta["annotations"] = {}
        meta["labels"] = {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE}
    if not labelled:
        meta["labels"].pop(c.MANAGED_BY_LABEL)
    return body


def _raycluster(name: str, namespace: str, *, labels: dict[str, str], annotations: dict[str, str] | None = None):
    """A RayCluster that never gets scheduled (no Ray process)."""
    from kuberay_provider.operators.raycluster import RayClusterCreateOperator

    body = RayClusterCreateOperator(task_id=f"build-{name}", name=name, namespace=namespace,
                                    head={"cpu": 1, "memory": "1Gi"}).build_manifest()
    body["metadata"]["labels"] = dict(labels)
    body["metadata"]["annotations"] = {**(annotations or {}), SIMULATE_ANNOTATION: "unschedulable"}
    return body


def _janitor_run(dag_id: str, namespace: str, **kwargs: Any) -> tuple[Any, list[dict[str, Any]]]:
    from airflow.providers.common.compat.sdk import DAG

    from kuberay_provider.operators.janitor import RayJanitorOperator

    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False) as dag:
        RayJanitorOperator(task_id="sweep", namespaces=namespace, **kwargs)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"sweep": "success"}
    return dag_run, xcom(dag_run, "sweep")


def _names(kube, namespace: str) -> dict[str, set[str]]:
    return {kind: {o["metadata"]["name"] for o in kube.list_objects(kind, namespace)}
            for kind in (c.RAYJOB_KIND, c.RAYCLUSTER_KIND)}


def _requests(local_stack, since: int, namespace: str, method: str | None = None) -> list[Any]:
    return [r for r in local_stack.server.requests[since:]
            if r.external and f"/namespaces/{namespace}/" in r.path and (method is None or r.method == method)]


def test_janitor_sweeps_exactly_the_right_objects_and_dry_run_deletes_nothing(kube, local_stack, namespace):
    run_id = _owner_run(TI_STATES)
    owner = {task_id: TaskInstanceIdentity(OWNER_DAG, task_id, run_id) for task_id in TI_STATES}
    managed = {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE}
    bodies = [(c.RAYJOB_KIND, _rayjob(task_id, namespace, ident)) for task_id, ident in owner.items()]
    bodies += [
        # labelled, but its task instance does not exist: only the age limit applies
        (c.RAYJOB_KIND, _rayjob("no-ti", namespace, TaskInstanceIdentity(OWNER_DAG, "never-ran", run_id))),
        # not labelled by the provider, though annotated with a finished task instance: never touched
        (c.RAYJOB_KIND, _rayjob("foreign", namespace, owner["ti-success"], labelled=False)),
        # the cluster of a RayJob that is gone: orphaned
        (c.RAYCLUSTER_KIND, _raycluster("orphan-rc", namespace, labels={
            **managed, c.ORIGINATED_FROM_NAME_LABEL: "vanished", c.ORIGINATED_FROM_CRD_LABEL: "RayJob"})),
        # the cluster of a live RayJob whose task instance runs (labels and annotations copied by KubeRay)
        (c.RAYCLUSTER_KIND, _raycluster("child-rc", namespace, labels={
            **owner["ti-running"].labels(), **managed, c.ORIGINATED_FROM_NAME_LABEL: "ti-running",
            c.ORIGINATED_FROM_CRD_LABEL: "RayJob"}, annotations=owner["ti-running"].annotations())),
        # a shared cluster (RayClusterCreateOperator): only the age limit applies
        (c.RAYCLUSTER_KIND, _raycluster("shared-rc", namespace, labels=managed)),
        # somebody else's cluster
        (c.RAYCLUSTER_KIND, _raycluster("foreign-rc", namespace, labels={"team": "ml"})),
    ]
    for kind, body in bodies:
        _, created = kube.create_object(kind, copy.deepcopy(body), namespace)
        assert created
    everything = _names(kube, namespace)
    assert everything == {
        c.RAYJOB_KIND: {*TI_STATES, "no-ti", "foreign"},
        c.RAYCLUSTER_KIND: {"orphan-rc", "child-rc", "shared-rc", "foreign-rc"},
    }
    # Suspended RayJobs never get a cluster: the controller must not have created any.
    wait_until(lambda: all((j.get("status") or {}).get("jobDeploymentStatus") == "Suspended"
                           for j in kube.list_rayjobs(namespace)), timeout=30)
    assert _names(kube, namespace) == everything and local_stack.controller.running_clusters() == {}

    due = {("RayJob", "ti-success"), ("RayJob", "ti-failed"), ("RayCluster", "orphan-rc")}

    # 1. dry run: the same report, nothing deleted
    before = len(local_stack.server.requests)
    _, report = _janitor_run("janitor_dry", namespace, dry_run=True)
    assert {(s["kind"], s["name"]) for s in report} == due
    assert all(s["dry_run"] is True and s["namespace"] == namespace for s in report)
    assert {s["name"]: s["reason"] for s in report}["ti-failed"].startswith("its task instance is failed")
    assert _requests(local_stack, before, namespace, "DELETE") == []
    assert _names(kube, namespace) == everything
    # clusters are listed before RayJobs (a RayJob created in between must not orphan its new cluster)
    selector = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE}"  # the janitor's lists (not this test's own)
    gets = [r for r in _requests(local_stack, before, namespace, "GET") if r.query.get("labelSelector") == selector]
    lists = [r.path.rsplit("/", 1)[-1] for r in gets]
    assert lists == ["rayclusters", "rayjobs"], [(r.path, r.query, r.time) for r in gets]

    # 2. the real sweep: exactly the finished task instances' RayJobs and the orphaned cluster
    before = len(local_stack.server.requests)
    _, report = _janitor_run("janitor_sweep", namespace)
    assert {(s["kind"], s["name"]) for s in report} == due and not any(s["dry_run"] for s in report)
    deleted = {r.path.rsplit("/", 1)[-1] for r in _requests(local_stack, before, namespace, "DELETE")}
    assert deleted == {name for _, name in due}
    expected = {c.RAYJOB_KIND: everything[c.RAYJOB_KIND] - {"ti-success", "ti-failed"},
                c.RAYCLUSTER_KIND: everything[c.RAYCLUSTER_KIND] - {"orphan-rc"}}
    wait_until(lambda: _names(kube, namespace) == expected, timeout=60)

    # 3. with a tiny max_age everything labelled is "old": the age rule sweeps the RayJob without a task instance
    #    and the shared cluster, but still never an object of a live task instance nor an unlabelled one.
    time.sleep(1.5)
    _, report = _janitor_run("janitor_age", namespace, max_age=dt.timedelta(seconds=1))
    assert {(s["kind"], s["name"]) for s in report} == {("RayJob", "no-ti"), ("RayCluster", "shared-rc")}
    assert all(s["reason"].startswith("older than 0:00:01") for s in report)
    wait_until(lambda: _names(kube, namespace) == {c.RAYJOB_KIND: KEPT_BY_TI | {"foreign"},
                                                   c.RAYCLUSTER_KIND: {"child-rc", "foreign-rc"}}, timeout=60)

    # clean up what the janitor rightly kept
    for kind, names in _names(kube, namespace).items():
        for name in names:
            kube.delete_object(kind, name, namespace)
    wait_until(lambda: _names(kube, namespace) == {c.RAYJOB_KIND: set(), c.RAYCLUSTER_KIND: set()}, timeout=60)
