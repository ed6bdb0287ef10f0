"""Outcome events (shared by the sync wait and the trigger), failure reports and the XCom summary."""

from __future__ import annotations

import json

import pytest

from kuberay_provider.hooks.watching import Finished, Gone, TimedOut
from kuberay_provider.outcome import (
    DELETED,
    ERROR,
    FAILED,
    SUCCESS,
    TIMEOUT,
    error_event,
    failure_report,
    final_status,
    outcome_event,
    succeeded,
    xcom_summary,
)
from kuberay_provider.status import RayJobStatus
from tests.rayjob_sequences import NAME, NAMESPACE, rayjob_object


def status(*args, **kw) -> RayJobStatus:
    return RayJobStatus.from_object(rayjob_object(*args, **kw))


KEYS = {"status", "message", "rayjob", "diagnostics", "log_tail"}


@pytest.mark.parametrize(
    ("outcome", "kind", "words"),
    [
        (Finished(status("Complete", "SUCCEEDED", jobId="j1")), SUCCESS, ["Complete", "SUCCEEDED"]),
        (Finished(status("Complete", "STOPPED")), FAILED, ["STOPPED", "not a success"]),
        (Finished(status("Failed", "RUNNING", "DeadlineExceeded", message="passed")), FAILED,
         ["activeDeadlineSeconds", "KubeRay says: passed"]),
        (Finished(status("ValidationFailed", None, "ValidationFailed", message="name too long")), FAILED,
         ["rejected", "name too long"]),
        (Gone(status("Running", "RUNNING", deleting=True)), DELETED, ["deleted"]),
        (Gone(None), DELETED, ["deleted"]),
        (TimedOut(status("Running", "RUNNING")), TIMEOUT, ["deadline"]),
        (TimedOut(None), TIMEOUT, ["deadline"]),
    ],
)
def test_outcome_event(outcome, kind, words):
    event = outcome_event(outcome, NAME, NAMESPACE, diagnostics=iter(["pod x: OOMKilled"]), log_tail=("a", "b"))
    assert set(event) == KEYS
    assert event["status"] == kind
    for word in words:
        assert word in event["message"]
    assert f"{NAMESPACE}/{NAME}" in event["message"]
    assert event["diagnostics"] == ["pod x: OOMKilled"] and event["log_tail"] == ["a", "b"]
    last = outcome.status if isinstance(outcome, Finished) else outcome.last
    if last is None:
        assert event["rayjob"] is None
    else:
        assert RayJobStatus.from_dict(event["rayjob"]) == last
    # Trigger events must be JSON-serialisable.
    assert json.loads(json.dumps(event)) == event


def test_error_event():
    event = error_event("ApiException: 403", log_tail=["x"])
    assert event == {"status": ERROR, "message": "ApiException: 403", "rayjob": None, "diagnostics": [], "log_tail": ["x"]}


def test_failure_report_with_everything():
    event = outcome_event(
        Finished(status("Failed", "FAILED", "AppFailed", message="exit code 1")), NAME, NAMESPACE,
        diagnostics=["pod a: OOMKilled"], log_tail=["Traceback", "ValueError: boom"],
    )
    report = failure_report(event)
    lines = report.splitlines()
    assert "entrypoint" in lines[0] and "exit code 1" in lines[0]
    assert "Diagnostics:" in report and "  pod a: OOMKilled" in lines
    assert "Last 2 lines of the driver log:" in report
    assert lines[-2:] == ["  Traceback", "  ValueError: boom"]


def test_failure_report_without_logs():
    report = failure_report({"status": FAILED, "message": None})
    assert report.splitlines() == ["RayJob failed", "No driver log was available (the job may not have started)."]
    assert "Diagnostics" not in report


def test_xcom_summary():
    s = status("Complete", "SUCCEEDED", jobId="j1", rayClusterName="rc", dashboardURL="d:8265", startTime="t0",
               endTime="t1")
    summary = xcom_summary(s, name="ignored", namespace="ignored", reattached=True)
    assert summary == {
        "name": NAME, "namespace": NAMESPACE, "job_id": "j1", "cluster_name": "rc", "dashboard_url": "d:8265",
        "job_status": "SUCCEEDED", "deployment_status": "Complete", "start_time": "t0", "end_time": "t1",
        "reattached": True,
    }
    empty = xcom_summary(None, name="n", namespace="ns")
    assert (empty["name"], empty["namespace"], empty["job_id"], empty["reattached"]) == ("n", "ns", None, False)
    json.dumps(summary)


@pytest.mark.parametrize(
    ("outcome", "ok"),
    [
        (Finished(status("Complete", "SUCCEEDED")), True),
        (Finished(status("Complete", "STOPPED")), False),
        (Finished(status("Failed", "FAILED", "AppFailed")), False),
        (Gone(status("Running", "RUNNING")), False),
        (TimedOut(None), False),
    ],
)
def test_succeeded_and_final_status_agree_with_the_event(outcome, ok):
    assert succeeded(outcome) is ok
    assert (outcome_event(outcome, NAME, NAMESPACE)["status"] == SUCCESS) is ok
    expected = outcome.status if isinstance(outcome, Finished) else outcome.last
    assert final_status(outcome) == expected
