"""The local double's Kueue-like admission, pass by pass (no API server: the passes are pure given the list)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client, config

from kuberay_provider.local.kueue import PRIORITY_LABEL, QUEUE_LABEL, KueueAdmission
from tests.local.test_controller import GROUP, SIMULATE, VERSION, create, events, rayjob, wait_for


class RecordingKube:
    def __init__(self) -> None:
        self.patches: list[tuple[str, str, str, dict]] = []
        self.events: list[tuple[str, str]] = []

    async def patch(self, plural: str, namespace: str, name: str, patch: dict, sub: str | None = None) -> dict:
        self.patches.append((plural, namespace, name, patch))
        return {}

    async def event(self, obj: dict, event_type: str, reason: str, message: str, component: str) -> None:
        self.events.append((obj["metadata"]["name"], reason))


def rj(name: str, created: str, *, suspend: bool = True, state: str | None = None, queue: str | None = "q",
       priority: str | None = None, deleting: bool = False) -> dict[str, Any]:
    labels = {QUEUE_LABEL: queue} if queue else {}
    if priority:
        labels[PRIORITY_LABEL] = priority
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "creationTimestamp": created, "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "spec": {"suspend": suspend},
            "status": {"jobDeploymentStatus": state} if state else {}}


def admitted(rayjobs: list[dict], capacity: int = 1, priorities: dict | None = None) -> list[str]:
    kube = RecordingKube()
    asyncio.run(KueueAdmission(kube, capacity, priorities).admit(rayjobs))  # type: ignore[arg-type]
    assert all(p[3] == {"spec": {"suspend": False}} for p in kube.patches)
    assert [e[0] for e in kube.events] == [p[2] for p in kube.patches]
    return [p[2] for p in kube.patches]


def test_oldest_first_up_to_capacity() -> None:
    jobs = [rj("b", "2026-01-01T00:00:02Z", state="Suspended"), rj("a", "2026-01-01T00:00:01Z", state="Suspended")]
    assert admitted(jobs) == ["a"]
    assert admitted(jobs, capacity=2) == ["a", "b"]


def test_an_admitted_unfinished_job_holds_the_quota_until_it_finishes_or_is_deleted() -> None:
    waiting = rj("second", "2026-01-01T00:00:02Z", state="Suspended")
    for state in ("", "Initializing", "Running", "Retrying"):
        assert admitted([rj("first", "2026-01-01T00:00:01Z", suspend=False, state=state or None), waiting]) == []
    for state in ("Complete", "Failed", "ValidationFailed"):
        assert admitted([rj("first", "2026-01-01T00:00:01Z", suspend=False, state=state), waiting]) == ["second"]
    assert admitted([rj("first", "2026-01-01T00:00:01Z", suspend=False, state="Running", deleting=True),
                     waiting]) == ["second"]


def test_unqueued_rayjobs_are_not_kueues_business() -> None:
    jobs = [rj("plain", "2026-01-01T00:00:00Z", suspend=False, state="Running", queue=None),
            rj("user-suspended", "2026-01-01T00:00:01Z", queue=None),
            rj("queued", "2026-01-01T00:00:02Z")]
    assert admitted(jobs) == ["queued"]


def test_higher_priority_first_then_oldest() -> None:
    jobs = [rj("old-low", "2026-01-01T00:00:01Z", priority="low"),
            rj("new-high", "2026-01-01T00:00:09Z", priority="high"),
            rj("no-class", "2026-01-01T00:00:00Z")]
    assert admitted(jobs, capacity=2, priorities={"high": 1000, "low": 10}) == ["new-high", "old-low"]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        KueueAdmission(RecordingKube(), 0)  # type: ignore[arg-type]


# ------------------------------------------------------------------- on the local stack (no Ray: heads unschedulable)


@pytest.fixture
def api(local_stack) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(local_stack.kubeconfig_path))


@pytest.fixture
def crd(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def _seconds(text: str) -> float:
    import calendar
    import time

    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def _queued(name: str, deadline: int) -> dict[str, Any]:
    body = rayjob(name, annotations={SIMULATE: "unschedulable"}, shutdownAfterJobFinishes=True, suspend=True,
                  preRunningDeadlineSeconds=deadline)
    body["metadata"]["labels"][QUEUE_LABEL] = "user-queue"
    return body


def test_second_queued_rayjob_waits_suspended_and_its_deadline_starts_at_admission(crd, core, namespace,
                                                                                   local_stack) -> None:
    """Capacity for one (the session stack's max_clusters=1): the second RayJob stays Suspended, with no cluster,
    while the first holds the quota; it is admitted when the first ends, and its preRunningDeadlineSeconds (shorter
    than its time in the queue) counts from the startTime KubeRay sets on admission."""
    assert local_stack.max_clusters == 1, "the scenario needs quota for exactly one RayJob"
    rec1 = create(crd, core, namespace, _queued("first", 6))
    wait_for(lambda: not crd.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", "first")["spec"]
             .get("suspend"), 15)
    rec2 = create(crd, core, namespace, _queued("second", 2))
    rec2.wait_state(("Suspended",), 15)
    final1 = rec1.wait_state(("Failed",), 30)
    assert final1["reason"] == "PreRunningDeadlineExceeded"
    final2 = rec2.wait_state(("Failed",), 30)
    assert final2["reason"] == "PreRunningDeadlineExceeded"
    # queued: created suspended, no cluster until admitted; then a fresh attempt from New
    assert rec2.writes[:3] == [("Initializing", None, None), ("Suspending", None, None), ("Suspended", None, None)]
    assert ("Initializing", None, None) in rec2.writes[3:]
    assert not any(s.get("rayClusterName") for s in rec2.statuses if s.get("jobDeploymentStatus") == "Suspended")
    obj = crd.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", "second")
    queued_for = _seconds(final2["startTime"]) - _seconds(obj["metadata"]["creationTimestamp"])
    assert queued_for > 2, "the second job was admitted before the first one finished"
    assert _seconds(final2["startTime"]) >= _seconds(final1["endTime"])
    assert _seconds(final2["endTime"]) - _seconds(final2["startTime"]) >= 2  # its own deadline, from admission
    assert "Started" in events(core, namespace, "first") and "Started" in events(core, namespace, "second")
    rec1.stop()
    rec2.stop()
    for name in ("first", "second"):
        crd.delete_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", name)

