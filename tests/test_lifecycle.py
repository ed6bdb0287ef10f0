"""plan_existing (re-attach / replace / fail), delete_after and the teardown leftovers (pure)."""

from __future__ import annotations

import pytest

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.lifecycle import CLEANUP_POLICIES, ON_EXISTING, ExistingPlan, delete_after, plan_existing
from kuberay_provider.teardown import leftovers
from tests.rayjob_sequences import rayjob_object

DESIRED = "etl-train-abc-3"


def rj(name, dep=None, job=None, *, try_number=None, deleting=False):
    obj = rayjob_object(dep, job, name=name, deleting=deleting)
    if dep is None:
        obj.pop("status", None)
    if try_number is not None:
        obj["metadata"]["labels"] = {c.TRY_NUMBER_LABEL: str(try_number)}
    return obj


@pytest.mark.parametrize("on_existing", ON_EXISTING)
def test_nothing_existing_creates(on_existing):
    assert plan_existing([], DESIRED, on_existing) == ExistingPlan()


@pytest.mark.parametrize("on_existing", ON_EXISTING)
@pytest.mark.parametrize("dep,job", [(None, None), ("Running", "RUNNING"), ("Complete", "SUCCEEDED"), ("Failed", "FAILED")])
def test_this_very_try_is_always_attached(on_existing, dep, job):
    existing = [rj("etl-train-abc-2", "Running", "RUNNING", try_number=2), rj(DESIRED, dep, job, try_number=3)]
    assert plan_existing(existing, DESIRED, on_existing) == ExistingPlan(attach=DESIRED)


def test_reattach_to_the_newest_running_earlier_try_and_delete_older_ones():
    existing = [
        rj("t-1", "Running", "RUNNING", try_number=1),
        rj("t-2", "Initializing", try_number=2),
        rj("t-10", "Suspended", try_number=10),  # suspended is not done
        rj("t-0", "Complete", "SUCCEEDED", try_number=0),
    ]
    plan = plan_existing(existing, DESIRED, "reattach")
    assert plan.attach == "t-10"  # numeric order, not string order
    assert sorted(plan.delete) == ["t-1", "t-2"]


def test_replace_deletes_every_running_earlier_try():
    existing = [rj("t-1", "Running", try_number=1), rj("t-2", "Retrying", "FAILED", try_number=2),
                rj("t-0", "Failed", "FAILED", try_number=0)]
    plan = plan_existing(existing, DESIRED, "replace")
    assert plan.attach is None and sorted(plan.delete) == ["t-1", "t-2"]


def test_fail_refuses_with_the_names():
    with pytest.raises(RuntimeError, match=r"t-1.*on_existing='fail'"):
        plan_existing([rj("t-1", "Running", "RUNNING", try_number=1)], DESIRED, "fail")


@pytest.mark.parametrize("on_existing", ON_EXISTING)
def test_finished_or_deleting_earlier_tries_are_left_alone(on_existing):
    existing = [
        rj("t-1", "Complete", "SUCCEEDED", try_number=1),
        rj("t-2", "Failed", "RUNNING", try_number=2),
        rj("t-3", "ValidationFailed", try_number=3),
        rj("t-4", "Running", "RUNNING", try_number=4, deleting=True),
    ]
    assert plan_existing(existing, DESIRED, on_existing) == ExistingPlan()


def test_desired_name_being_deleted_is_not_attached():
    existing = [rj(DESIRED, "Running", "RUNNING", try_number=3, deleting=True)]
    assert plan_existing(existing, DESIRED, "reattach").attach is None


def test_missing_or_garbage_try_labels_do_not_crash():
    existing = [rj("a", "Running"), rj("b", "Running", try_number=2)]
    existing[0]["metadata"]["labels"] = {c.TRY_NUMBER_LABEL: "none"}
    assert plan_existing(existing, DESIRED, "reattach") == ExistingPlan(attach="b", delete=["a"])


def test_bad_on_existing():
    with pytest.raises(InvalidParameterError, match=r"Invalid on_existing='attach'"):
        plan_existing([], DESIRED, "attach")


@pytest.mark.parametrize(
    ("outcome", "policy", "delete"),
    [
        ("success", "on_failure", False),
        ("success", "keep_failed", False),
        ("success", "always", True),
        ("failed", "on_failure", True),
        ("failed", "always", True),
        ("failed", "keep_failed", False),
        ("timeout", "keep_failed", True),  # would keep running: always deleted
        ("timeout", "on_failure", True),
        ("error", "keep_failed", True),
        ("error", "on_failure", True),
        ("deleted", "on_failure", True),
        ("deleted", "always", True),
    ],
)
def test_delete_after(outcome, policy, delete):
    assert delete_after(outcome, policy) is delete


def test_cleanup_policies_are_the_documented_ones():
    assert set(CLEANUP_POLICIES) == {"on_failure", "always", "keep_failed"}
    assert set(ON_EXISTING) == {"reattach", "replace", "fail"}


def test_leftovers():
    clusters = [
        {"metadata": {"name": "rc-1", "namespace": "ray"}, "status": {"state": "ready"}},
        {"metadata": {"name": "rc-2", "namespace": "ray", "deletionTimestamp": "t"}},
    ]
    pods = [
        {"metadata": {"name": "rc-1-head-x", "namespace": "ray"}, "status": {"phase": "Running"}},
        {"metadata": {"name": "rc-1-head-x", "namespace": "ray"}, "status": {"phase": "Running"}},  # listed twice
        {"metadata": {"name": "rc-1-head-x", "namespace": "other"}},  # same name, other namespace: a different pod
    ]
    assert leftovers(clusters, pods) == [
        "RayCluster ray/rc-1 state=ready",
        "RayCluster ray/rc-2 state=unknown (deleting)",
        "Pod ray/rc-1-head-x phase=Running",
        "Pod other/rc-1-head-x phase=unknown",
    ]
    assert leftovers([], []) == []


# -- the one cleanup decision and the one delete ------------------------------------------------------------
from kuberay_provider.lifecycle import (  # noqa: E402
    cleanup_decision,
    delete,
    delete_rayjob,
    delete_rayjob_async,
    start_rayjob,
)
from tests.operators.fakes import FakeHook  # noqa: E402


@pytest.mark.parametrize(("event", "policy", "deletes"), [
    ({"status": "success"}, "on_failure", False),
    ({"status": "success"}, "always", True),
    ({"status": "failed"}, "keep_failed", False),
    ({"status": "timeout"}, "keep_failed", True),
    ({"status": "deleted"}, "always", False),
    ({"status": "error", "message": "TypeError: x"}, "on_failure", True),
    ({"status": "error", "job_may_be_running": True, "api_status": 403}, "always", False),
    ({"status": "error", "message": "RayJobWaitError: Kubernetes API error 401 while waiting"}, "on_failure", False),
])
def test_cleanup_decision(event, policy, deletes):
    decision = cleanup_decision(event, policy, name="j", namespace="ml")
    assert decision.delete is deletes
    if event.get("job_may_be_running") or "RayJobWaitError" in str(event.get("message")):
        assert "ml/j may still be running" in decision.note and "NOT deleted" in decision.note


def test_delete_reports_gone_and_swallows_or_raises_errors(caplog):
    hook = FakeHook(objects=[{"kind": c.RAYJOB_KIND, "metadata": {"name": "j", "namespace": "ml"}}])
    assert delete_rayjob(hook, "j", "ml", "test") is True
    assert delete_rayjob(hook, "j", "ml", "test") is False  # already gone

    class Broken(FakeHook):
        def delete_object(self, *a, **k):
            raise OSError("connection refused")

    assert delete(Broken(), c.RAYCLUSTER_KIND, "x", "ml", reason="test") is False
    assert "the janitor will remove it" in caplog.text
    with pytest.raises(OSError):
        delete(Broken(), c.RAYCLUSTER_KIND, "x", "ml", reason="test", raise_errors=True)


def test_delete_rayjob_async_is_the_same_decision_for_triggers():
    import asyncio

    class AsyncFake:
        def __init__(self):
            self.deleted = []

        async def delete_object(self, kind, name, namespace, propagation="Foreground"):
            self.deleted.append((kind, namespace, name))
            return True

    hook = AsyncFake()
    assert asyncio.run(delete_rayjob_async(hook, "j", "ml", "killed by a user")) is True
    assert hook.deleted == [(c.RAYJOB_KIND, "ml", "j")]


def test_start_rayjob_reattaches_to_a_running_job_of_an_earlier_try():
    running = rj("etl-train-abc-2", "Running", "RUNNING", try_number=2)
    running["metadata"]["namespace"] = "ml"

    class Hook(FakeHook):
        def list_rayjobs(self, namespace, label_selector=""):
            return [running]

        def create_rayjob(self, body):
            raise AssertionError("must not create a second RayJob")

    started = start_rayjob(Hook(), {"metadata": {"name": DESIRED, "namespace": "ml"}}, task_instance_key="k",
                           on_existing="reattach")
    assert (started.name, started.namespace, started.reattached, started.created) == ("etl-train-abc-2", "ml", True, False)
