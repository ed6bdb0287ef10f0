"""The janitor's decisions (pure): what it sweeps, and above all what it must never touch."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.janitor import (
    UNKNOWN_TI_STATE,
    TaskInstanceRef,
    plan_sweep,
    state_name,
    task_instance_of,
)
from kuberay_provider.naming import TaskInstanceIdentity

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MAX_AGE = dt.timedelta(hours=24)
YOUNG = (NOW - dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
OLD = (NOW - dt.timedelta(days=3)).isoformat().replace("+00:00", "Z")
MANAGED = {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE}


def identity(task_id: str, map_index: int = -1) -> TaskInstanceIdentity:
    return TaskInstanceIdentity("etl", task_id, "scheduled__2026-11-22T00:00:00+00:00", map_index=map_index)


def rayjob(name: str, *, task_id: str | None = None, created: str = YOUNG, labelled: bool = True,
           deleting: bool = False, map_index: int = -1, deployment: str | None = "Running") -> dict[str, Any]:
    """A RayJob as the API returns it, with the provider's labels and annotations when ``labelled``."""
    meta: dict[str, Any] = {"name": name, "namespace": "ray", "creationTimestamp": created, "labels": {},
                            "annotations": {}}
    if task_id is not None:
        ident = identity(task_id, map_index)
        meta["labels"].update(ident.labels())
        meta["annotations"].update(ident.annotations())
    if labelled:
        meta["labels"].update(MANAGED)
    else:
        meta["labels"].pop(c.MANAGED_BY_LABEL, None)
    if deleting:
        meta["deletionTimestamp"] = YOUNG
    return {"metadata": meta, "status": {"jobDeploymentStatus": deployment} if deployment else {}}


def raycluster(name: str, *, parent: str | None = None, task_id: str | None = None, created: str = YOUNG,
               labelled: bool = True, deleting: bool = False) -> dict[str, Any]:
    """A RayCluster: made for RayJob ``parent`` (labels copied by KubeRay) or standalone."""
    obj = rayjob(name, task_id=task_id, created=created, labelled=labelled, deleting=deleting, deployment=None)
    if parent:
        obj["metadata"]["labels"].update({c.ORIGINATED_FROM_NAME_LABEL: parent, c.ORIGINATED_FROM_CRD_LABEL: "RayJob"})
    return obj


def states(mapping: dict[str, str | None]):
    """``ti_state`` for plan_sweep: task_id → state (a missing task id: the TI does not exist)."""
    def lookup(ref: TaskInstanceRef) -> str | None:
        return mapping.get(ref.task_id)

    return lookup


def swept(rayjobs=(), clusters=(), ti=None, max_age=MAX_AGE) -> dict[str, str]:
    """name → reason of everything plan_sweep deletes."""
    return {s.name: s.reason for s in plan_sweep(rayjobs, clusters, now=NOW, max_age=max_age, ti_state=ti or states({}))}


# -- RayJobs -------------------------------------------------------------------------------------------------

# Spelled out (not ACTIVE_TI_STATES) so that dropping a state from the constant fails here.
LIVE = ["running", "deferred", "queued", "up_for_retry", "up_for_reschedule", "scheduled", "restarting"]


@pytest.mark.parametrize("state", LIVE)
@pytest.mark.parametrize("created", [YOUNG, OLD], ids=["young", "older-than-max-age"])
def test_rayjob_of_a_live_task_instance_is_never_swept(state, created):
    assert swept([rayjob("j", task_id="t", created=created)], ti=states({"t": state})) == {}


@pytest.mark.parametrize("state", ["success", "failed", "skipped", "upstream_failed", "removed"])
def test_rayjob_of_a_finished_task_instance_is_swept(state):
    assert swept([rayjob("j", task_id="t")], ti=states({"t": state})) == {"j": f"its task instance is {state} (running)"}


def test_old_rayjob_without_a_task_instance_is_swept_young_one_kept():
    jobs = [rayjob("old", task_id="gone", created=OLD), rayjob("young", task_id="gone"),
            rayjob("anon-old", created=OLD), rayjob("anon-young")]
    got = swept(jobs, ti=states({}))
    assert set(got) == {"old", "anon-old"}
    assert got["old"].startswith("older than 1 day, 0:00:00 (created 2026-11-19T12:00:00+00:00")


@pytest.mark.parametrize("created", [YOUNG, OLD])
def test_unreadable_task_instance_state_protects_the_rayjob(created):
    def broken(ref: TaskInstanceRef) -> str:
        raise ConnectionError("execution API down")

    job = rayjob("j", task_id="t", created=created)
    assert swept([job], ti=broken) == {}
    assert swept([job], ti=states({"t": UNKNOWN_TI_STATE})) == {}


@pytest.mark.parametrize("labels", [{}, {c.MANAGED_BY_LABEL: "helm"}, {c.MANAGED_BY_LABEL: "airflow-provider-kuberay-x"}])
def test_unlabelled_objects_are_never_touched(labels):
    job = rayjob("j", task_id="t", created=OLD, labelled=False)
    job["metadata"]["labels"].update(labels)
    cluster = raycluster("rc", parent="missing", created=OLD, labelled=False)
    cluster["metadata"]["labels"].update(labels)
    standalone = raycluster("solo", created=OLD, labelled=False)
    standalone["metadata"]["labels"].update(labels)
    assert swept([job], [cluster, standalone], ti=states({"t": "success"})) == {}


def test_objects_being_deleted_are_skipped():
    assert swept([rayjob("j", task_id="t", deleting=True)], [raycluster("rc", created=OLD, deleting=True)],
                 ti=states({"t": "failed"})) == {}


def test_mapped_task_instance_is_looked_up_with_its_map_index():
    seen: list[TaskInstanceRef] = []

    def lookup(ref: TaskInstanceRef) -> str:
        seen.append(ref)
        return "running" if ref.map_index == 3 else "success"

    assert swept([rayjob("m3", task_id="t", map_index=3), rayjob("m4", task_id="t", map_index=4)], ti=lookup) == {
        "m4": "its task instance is success (running)"}
    assert [r.map_index for r in seen] == [3, 4]
    assert seen[0] == TaskInstanceRef("etl", "t", "scheduled__2026-11-22T00:00:00+00:00", 3)


def test_task_instance_comes_from_the_full_annotations_not_the_sanitised_labels():
    long_run = "manual__2026-11-22T00:00:00.123456+00:00-" + "x" * 80
    ident = TaskInstanceIdentity("etl", "train", long_run)
    obj = {"metadata": {"labels": ident.labels(), "annotations": ident.annotations()}}
    assert task_instance_of(obj) == TaskInstanceRef("etl", "train", long_run, -1)
    assert task_instance_of({"metadata": {"labels": MANAGED}}) is None


@pytest.mark.parametrize("state", ["QUEUED", "UP_FOR_RETRY", "DEFERRED", "RUNNING"])
def test_airflow_state_enums_are_normalised(state):
    """What the Task SDK returns are TaskInstanceState members, not strings."""
    from airflow.utils.state import TaskInstanceState

    member = TaskInstanceState[state]
    assert state_name(member) == state.lower()
    assert swept([rayjob("j", task_id="t", created=OLD)], ti=lambda ref: member) == {}
    assert state_name("RUNNING") == "running" and state_name(None) is None


@pytest.mark.parametrize("created", ["yesterday", "", None, "2026-11-19T12:00:00"])
def test_unreadable_or_naive_creation_time_does_not_crash(created):
    job = rayjob("j")
    job["metadata"]["creationTimestamp"] = created
    got = swept([job])
    assert got == ({"j": got["j"]} if created == "2026-11-19T12:00:00" else {})  # a naive time is read as UTC


# -- RayClusters -----------------------------------------------------------------------------------------------

def test_cluster_of_a_vanished_rayjob_is_swept_cluster_of_a_live_one_kept():
    jobs = [rayjob("alive", task_id="t")]
    clusters = [raycluster("alive-x7k2p", parent="alive"), raycluster("gone-b4z9q", parent="gone")]
    assert swept(jobs, clusters, ti=states({"t": "running"})) == {"gone-b4z9q": "its RayJob gone no longer exists"}


def test_cluster_of_a_rayjob_being_deleted_is_left_to_garbage_collection():
    assert swept([rayjob("dying", deleting=True)], [raycluster("dying-q2w4e", parent="dying")]) == {}


def test_orphan_cluster_whose_task_instance_is_alive_is_kept():
    """KubeRay copies the RayJob's annotations onto its cluster: a live task instance protects it."""
    cluster = raycluster("new-k2m4n", parent="not-listed-yet", task_id="t")
    assert swept([], [cluster], ti=states({"t": "running"})) == {}
    assert set(swept([], [cluster], ti=states({"t": "success"}))) == {"new-k2m4n"}


def test_standalone_cluster_is_swept_only_when_old():
    clusters = [raycluster("old-shared", created=OLD), raycluster("young-shared")]
    got = swept([], clusters)
    assert set(got) == {"old-shared"} and got["old-shared"].startswith("older than 1 day")


def test_cluster_in_another_namespace_does_not_match_a_rayjob_of_the_same_name():
    cluster = raycluster("j-abcde", parent="j")
    cluster["metadata"]["namespace"] = "other"
    assert set(swept([rayjob("j")], [cluster])) == {"j-abcde"}


def test_a_mixed_sweep():
    jobs = [rayjob("done", task_id="a"), rayjob("busy", task_id="b", created=OLD), rayjob("stale", created=OLD),
            rayjob("foreign", task_id="a", labelled=False)]
    clusters = [raycluster("busy-abcde", parent="busy"), raycluster("lost-abcde", parent="lost"),
                raycluster("foreign-solo", created=OLD, labelled=False)]
    sweeps = plan_sweep(jobs, clusters, now=NOW, max_age=MAX_AGE, ti_state=states({"a": "failed", "b": "deferred"}))
    assert [(s.kind, s.namespace, s.name) for s in sweeps] == [
        ("RayJob", "ray", "done"), ("RayJob", "ray", "stale"), ("RayCluster", "ray", "lost-abcde")]


# -- the operator and the DAG ----------------------------------------------------------------------------------

def test_operator_defaults_and_templated_parameters():
    from kuberay_provider.operators.janitor import RayJanitorOperator, _dry_run_flag

    op = RayJanitorOperator(task_id="sweep", namespaces="{{ var.value.ns }}", dry_run="{{ params.dry_run }}")
    assert op.max_age == dt.timedelta(hours=24) and set(op.template_fields) == {"namespaces", "dry_run"}
    assert RayJanitorOperator._namespaces(" a, b ,c") == ["a", "b", "c"]
    assert RayJanitorOperator._namespaces(["a"]) == ["a"]
    assert [_dry_run_flag(v) for v in (True, False, "True", "False", "true", "false")] == [True, False] * 3
    with pytest.raises(InvalidParameterError, match="dry_run"):
        _dry_run_flag("maybe")


def test_janitor_dag_parses_with_a_dry_run_param():
    path = Path(__file__).resolve().parents[1] / "dags" / "kuberay_janitor.py"
    spec = importlib.util.spec_from_file_location("kuberay_janitor_dag", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    task = dag.get_task("sweep")
    assert dag.params["dry_run"] is False
    assert task.dry_run == "{{ params.dry_run }}" and task.max_age == dt.timedelta(hours=24)
    assert "kuberay_janitor_namespaces" in task.namespaces


@pytest.mark.parametrize(("conn_namespace", "namespaces", "listed"), [
    ("ml", None, ["ml"]),  # no namespaces: the connection's (the rule every task follows)
    (None, None, ["None"]),  # the connection names none: every namespace (needs a ClusterRole)
    ("ml", "a,b", ["a", "b"]),  # explicit namespaces win
])
def test_the_janitor_sweeps_the_connections_namespace_by_default(monkeypatch, conn_namespace, namespaces, listed):
    from kuberay_provider.hooks import kuberay
    from kuberay_provider.operators.janitor import RayJanitorOperator
    from tests.operators.fakes import FakeHook

    fake = FakeHook(namespace=conn_namespace)
    monkeypatch.setattr(kuberay, "KubeRayHook", lambda **_: fake)
    assert RayJanitorOperator(task_id="sweep", namespaces=namespaces).execute({"ti": object()}) == []
    assert sorted({r[2] for r in fake.requests if r[0] == "list"}) == listed
