"""RayJobStatus: the provider's single reading of a RayJob's status, checked against KubeRay v1.7's sequences."""

from __future__ import annotations

import json

import pytest

from kuberay_provider.status import (
    REASON_EXPLANATIONS,
    TERMINAL_DEPLOYMENT_STATUSES,
    Phase,
    RayJobStatus,
    raycluster_is_ready,
)
from tests.rayjob_sequences import NAME, NAMESPACE, NO_STATUS, SEQUENCES, rayjob_object, sequence_objects


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_every_write_of_every_sequence_has_the_documented_phase(sequence):
    writes, final, words = SEQUENCES[sequence]
    objects = sequence_objects(writes)
    for i, (obj, expected) in enumerate(objects):
        status = RayJobStatus.from_object(obj)
        assert status.phase == Phase(expected), f"write {i} {status.state_key}"
        # Only the last write of a sequence may be terminal: nothing is decided early.
        assert status.is_terminal == (i == len(objects) - 1 and Phase(final).is_terminal), f"write {i}"
        assert status.is_success == (expected == "succeeded")
    last = RayJobStatus.from_object(objects[-1][0])
    assert last.phase == Phase(final)
    explanation = last.failure_explanation()
    if final == "failed":
        assert explanation
        for word in words:
            assert word in explanation
        assert explanation in last.describe()
    else:
        assert explanation is None


@pytest.mark.parametrize(
    ("dep", "job", "reason", "phase"),
    [
        ("Complete", "SUCCEEDED", None, Phase.SUCCEEDED),
        # A success even with the grace-period reason (KubeRay may set it on Complete).
        ("Complete", "SUCCEEDED", "JobDeploymentStatusTransitionGracePeriodExceeded", Phase.SUCCEEDED),
        ("Complete", "STOPPED", None, Phase.FAILED),
        ("Complete", "FAILED", "JobDeploymentStatusTransitionGracePeriodExceeded", Phase.FAILED),
        ("Complete", None, None, Phase.FAILED),
        ("Failed", "SUCCEEDED", "SubmissionFailed", Phase.FAILED),
        ("Failed", "PENDING", "SubmissionFailed", Phase.FAILED),
        ("Failed", None, None, Phase.FAILED),
        ("Running", "FAILED", None, Phase.RUNNING),
        ("Running", "SUCCEEDED", None, Phase.RUNNING),
        ("Running", "STOPPED", None, Phase.RUNNING),
        ("Retrying", "FAILED", "AppFailed", Phase.RUNNING),
        ("Retrying", "FAILED", "PreRunningDeadlineExceeded", Phase.RUNNING),
        ("Suspending", "RUNNING", None, Phase.RUNNING),
        ("Suspended", None, None, Phase.SUSPENDED),
        ("Waiting", None, None, Phase.RUNNING),
        ("Initializing", None, None, Phase.RUNNING),
        ("ValidationFailed", None, "ValidationFailed", Phase.FAILED),
        ("ValidationFailed", "RUNNING", "ValidationFailed", Phase.FAILED),
        ("SomethingFromV2", "RUNNING", "NewReason", Phase.RUNNING),
        ("complete", "SUCCEEDED", None, Phase.RUNNING),  # values are case-sensitive: unknown, not terminal
        (None, None, None, Phase.PENDING),
        (None, "SUCCEEDED", None, Phase.PENDING),  # never decide on jobStatus alone
    ],
)
def test_phase_table(dep, job, reason, phase):
    status = RayJobStatus.from_object(rayjob_object(dep, job, reason))
    assert status.phase is phase
    assert status.is_terminal == phase.is_terminal
    assert status.is_success == (phase is Phase.SUCCEEDED)
    assert status.state_key == (dep, job, reason)
    text = status.describe()  # never crashes, names the deployment status
    assert (dep or "(none)") in text


def test_terminal_deployment_statuses_are_exactly_the_documented_ones():
    assert frozenset({"Complete", "Failed", "ValidationFailed"}) == TERMINAL_DEPLOYMENT_STATUSES
    assert {p for p in Phase if p.is_terminal} == {Phase.SUCCEEDED, Phase.FAILED}


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": None, "status": None},
        {"metadata": {"name": NAME}},
        {"metadata": {"name": NAME}, "status": {}},
        {"metadata": {"name": NAME}, "status": {"jobDeploymentStatus": ""}},
        {"metadata": {"name": NAME}, "status": {"jobDeploymentStatus": "", "jobStatus": "", "reason": ""}},
        rayjob_object(NO_STATUS),
    ],
)
def test_absent_or_empty_status_is_pending(obj):
    status = RayJobStatus.from_object(obj)
    assert status.phase is Phase.PENDING
    assert not status.is_terminal
    assert status.failure_explanation() is None
    assert "jobDeploymentStatus=(none)" in status.describe()


def test_from_object_reads_every_field():
    obj = rayjob_object(
        "Failed", "RUNNING", "DeadlineExceeded", rv=4711, deleting=True,
        message="The RayJob has passed the activeDeadlineSeconds.", jobId="j-1", rayClusterName="rc-1",
        dashboardURL="rc-1-head-svc.ray.svc.cluster.local:8265", startTime="t0", endTime="t1", failed=2, succeeded=1,
    )
    s = RayJobStatus.from_object(obj)
    assert (s.name, s.namespace) == (NAME, NAMESPACE)
    assert (s.job_id, s.cluster_name, s.dashboard_url) == ("j-1", "rc-1", "rc-1-head-svc.ray.svc.cluster.local:8265")
    assert (s.start_time, s.end_time, s.failed, s.succeeded) == ("t0", "t1", 2, 1)
    assert s.resource_version == "4711"
    assert s.deleting is True
    assert s.message == "The RayJob has passed the activeDeadlineSeconds."


def test_counters_given_as_strings_or_null_do_not_crash():
    s = RayJobStatus.from_object({"metadata": {"name": "x"}, "status": {"failed": "3", "succeeded": None}})
    assert (s.failed, s.succeeded) == (3, 0)


def test_deadline_exceeded_failure_names_active_deadline_and_keeps_kuberays_message():
    s = RayJobStatus.from_object(rayjob_object("Failed", "RUNNING", "DeadlineExceeded", message="passed the deadline"))
    assert s.is_terminal and not s.is_success
    text = s.describe()
    assert "activeDeadlineSeconds" in text
    assert "reason=DeadlineExceeded" in text
    assert "jobStatus=RUNNING" in text
    assert text.endswith("KubeRay says: passed the deadline")
    assert f"RayJob {NAMESPACE}/{NAME}" in text


@pytest.mark.parametrize("reason", sorted(REASON_EXPLANATIONS))
def test_every_known_reason_is_explained_on_failed(reason):
    s = RayJobStatus.from_object(rayjob_object("Failed", None, reason))
    assert s.failure_explanation() == REASON_EXPLANATIONS[reason]


def test_unknown_reason_on_failed_is_named():
    s = RayJobStatus.from_object(rayjob_object("Failed", "FAILED", "BrandNewReason"))
    assert "BrandNewReason" in s.failure_explanation()
    s = RayJobStatus.from_object(rayjob_object("Failed"))
    assert "not given" in s.failure_explanation()


def test_validation_failed_without_reason_is_explained():
    s = RayJobStatus.from_object(rayjob_object("ValidationFailed"))
    assert s.failure_explanation() == REASON_EXPLANATIONS["ValidationFailed"]


def test_complete_with_non_success_job_status_names_it():
    assert "STOPPED" in RayJobStatus.from_object(rayjob_object("Complete", "STOPPED")).failure_explanation()
    text = RayJobStatus.from_object(rayjob_object("Complete", "FAILED")).failure_explanation()
    assert "FAILED" in text and "not SUCCEEDED" in text


def test_success_and_running_have_no_failure_explanation():
    assert RayJobStatus.from_object(rayjob_object("Complete", "SUCCEEDED")).failure_explanation() is None
    running = RayJobStatus.from_object(rayjob_object("Running", "FAILED"))
    assert running.failure_explanation() is None
    assert ": " not in running.describe().split("jobStatus=FAILED", 1)[1]


def test_to_dict_is_json_serialisable_and_round_trips():
    s = RayJobStatus.from_object(rayjob_object("Complete", "SUCCEEDED", rv=9, jobId="j", rayClusterName="rc"))
    data = json.loads(json.dumps(s.to_dict()))
    assert RayJobStatus.from_dict(data) == s
    # Unknown keys (from a newer provider version in a trigger event) are ignored.
    assert RayJobStatus.from_dict({**data, "added_later": 1}) == s


def test_status_is_immutable():
    s = RayJobStatus(name="a", namespace="b")
    with pytest.raises(AttributeError):
        s.name = "c"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("obj", "ready"),
    [
        ({"status": {"state": "ready"}}, True),
        ({"status": {"state": "Ready"}}, True),
        ({"status": {"state": "suspended"}}, False),
        ({"status": {}}, False),
        ({"status": None}, False),
        ({}, False),
    ],
)
def test_raycluster_is_ready(obj, ready):
    assert raycluster_is_ready(obj) is ready
