"""Driver-log following and pod diagnostics (pure)."""

from __future__ import annotations

import pytest

from kuberay_provider.hooks.pods import (
    LogTail,
    SubmitterLogPlan,
    describe_pod_problems,
    describe_submitter_job,
    describe_warning_events,
    head_pod_selector,
    newest_started_pod,
    pod_finished,
    pod_started,
    submitter_pod_selector,
)


def pod(name, created="2026-11-22T00:00:00Z", phase="Pending", *, running=False, terminated=None, waiting=None,
        last_terminated=None, conditions=(), init=()):
    state = {}
    if running:
        state["running"] = {"startedAt": created}
    if terminated:
        state["terminated"] = terminated
    if waiting:
        state["waiting"] = waiting
    cs = {"name": "ray-job-submitter", "state": state}
    if last_terminated:
        cs["lastState"] = {"terminated": last_terminated}
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {"phase": phase, "containerStatuses": [cs], "conditions": list(conditions),
                   "initContainerStatuses": list(init)},
    }


def test_selectors():
    assert submitter_pod_selector("train-1") == "batch.kubernetes.io/job-name=train-1"
    assert head_pod_selector("train-1-bcdfg") == "ray.io/cluster=train-1-bcdfg,ray.io/node-type=head"


@pytest.mark.parametrize(
    ("p", "started", "finished"),
    [
        (pod("a"), False, False),
        (pod("a", waiting={"reason": "ContainerCreating"}), False, False),
        (pod("a", phase="Running", running=True), True, False),
        (pod("a", running=True), True, False),
        (pod("a", phase="Succeeded", terminated={"exitCode": 0}), True, True),
        (pod("a", phase="Failed", terminated={"exitCode": 1}), True, True),
        ({"metadata": {"name": "a"}, "status": {"phase": "Failed"}}, True, True),  # evicted: no container statuses
        ({}, False, False),
    ],
)
def test_pod_started_and_finished(p, started, finished):
    assert pod_started(p) is started
    assert pod_finished(p) is finished


def test_newest_started_pod_is_the_current_attempt():
    pods = [
        pod("sub-1", "2026-11-22T00:00:00Z", "Failed", terminated={"exitCode": 1}),
        pod("sub-3", "2026-11-22T00:02:00Z", "Pending"),  # newest, but not started yet
        pod("sub-2", "2026-11-22T00:01:00Z", "Running", running=True),
    ]
    assert newest_started_pod(pods)["metadata"]["name"] == "sub-2"
    assert newest_started_pod([pods[1]]) is None
    assert newest_started_pod([]) is None


def test_describe_pod_problems():
    pods = [
        pod("head", "2026-11-22T00:00:02Z",
            waiting={"reason": "ImagePullBackOff", "message": 'Back-off pulling image "ray:nope"'}),
        pod("worker", "2026-11-22T00:00:01Z",
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]),
        pod("oom", "2026-11-22T00:00:03Z", running=True,
            last_terminated={"reason": "OOMKilled", "exitCode": 137}),
        pod("crash", "2026-11-22T00:00:04Z", "Failed", terminated={"reason": "Error", "exitCode": 2}),
        pod("fine", "2026-11-22T00:00:05Z", "Succeeded", terminated={"reason": "Completed", "exitCode": 0}),
        pod("creating", "2026-11-22T00:00:06Z", waiting={"reason": "ContainerCreating"}),
        pod("init", "2026-11-22T00:00:07Z", init=[{"name": "wait-gcs", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
    ]
    lines = describe_pod_problems(pods)
    assert lines == [
        "pod worker: not scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        'pod head container ray-job-submitter: ImagePullBackOff: Back-off pulling image "ray:nope"',
        "pod oom container ray-job-submitter: terminated (OOMKilled, exit code 137)",
        "pod crash container ray-job-submitter: terminated (Error, exit code 2)",
        "pod init container wait-gcs: CrashLoopBackOff",
    ]


def test_describe_pod_problems_tolerates_sparse_pods():
    assert describe_pod_problems([{}, {"metadata": {}, "status": None}, {"status": {"containerStatuses": None}}]) == []


def test_describe_warning_events_oldest_first():
    events = [
        {"type": "Warning", "reason": "FailedScheduling", "message": "no gpus", "lastTimestamp": "2026-11-22T00:00:02Z"},
        {"type": "Normal", "reason": "CreatedRayCluster", "message": "ok", "lastTimestamp": "2026-11-22T00:00:00Z"},
        {"type": "Warning", "reason": "InvalidRayJobSpec", "message": "bad", "eventTime": "2026-11-22T00:00:01.000000Z"},
        {"type": "Warning", "reason": "NoTime"},
    ]
    assert describe_warning_events(events) == [
        "event NoTime: ",
        "event InvalidRayJobSpec: bad",
        "event FailedScheduling: no gpus",
    ]


def _event(name, kind="Pod", reason="Failed"):
    return {"type": "Warning", "reason": reason, "message": "m", "involvedObject": {"kind": kind, "name": name}}


def test_only_events_about_the_rayjob_its_cluster_and_their_pods_are_described():
    events = [
        _event("rj", "RayJob", "InvalidRayJobSpec"),
        _event("rj-ab2cd"),                    # a submitter pod <rayjob>-<5>
        _event("rj-x7k2p-head-9zzqq"),          # a pod of cluster rj-x7k2p
        _event("rj-x7k2p", "RayCluster"),
        _event("rj-other-job"),                 # another RayJob's object: not ours
        _event("rj-x7k2q-head-aaaaa"),          # another cluster of the same prefix
        _event("unrelated"),
    ]
    lines = describe_warning_events(events, "rj", "rj-x7k2p")
    assert lines == [
        "event InvalidRayJobSpec (RayJob rj): m",
        "event Failed (Pod rj-ab2cd): m",
        "event Failed (Pod rj-x7k2p-head-9zzqq): m",
        "event Failed (RayCluster rj-x7k2p): m",
    ]
    # Without a cluster name yet, objects named <rayjob>-<5> (submitter pods, and KubeRay's cluster name) still match.
    assert describe_warning_events(events, "rj", None) == [*lines[:2], lines[3]]


# -- LogTail ------------------------------------------------------------------------------------------------

def test_log_tail_skips_lines_seen_before_a_reconnect():
    tail = LogTail(size=100)
    tail.start("sub-1")
    assert [tail.accept("sub-1", f"line {i}") for i in range(3)] == [True, True, True]
    tail.start("sub-1")  # the stream broke; re-opened from the start of the pod's log
    assert [tail.accept("sub-1", f"line {i}") for i in range(5)] == [False, False, False, True, True]
    assert list(tail.lines) == [f"line {i}" for i in range(5)]
    assert tail.total == 5


def test_log_tail_counts_each_pod_separately():
    tail = LogTail()
    tail.start("sub-1")
    tail.accept("sub-1", "attempt 1")
    tail.start("sub-2")  # a new submitter attempt prints the same lines again: they are new lines
    assert tail.accept("sub-2", "attempt 1")
    tail.start("sub-1")
    assert not tail.accept("sub-1", "attempt 1")
    assert tail.text() == "attempt 1\nattempt 1"


def test_log_tail_keeps_only_the_last_lines():
    tail = LogTail(size=3)
    tail.start("p")
    for i in range(10):
        tail.accept("p", str(i))
    assert list(tail.lines) == ["7", "8", "9"] and tail.total == 10
    assert tail.text() == "7\n8\n9"


def test_log_tail_identical_lines_are_not_deduplicated_by_content():
    tail = LogTail()
    tail.start("p")
    assert tail.accept("p", "epoch done") and tail.accept("p", "epoch done")
    assert tail.total == 2


def test_log_tail_without_start_continues_counting():
    tail = LogTail()
    assert tail.accept("p", "a") and tail.accept("p", "b")
    assert tail.total == 2


# -- SubmitterLogPlan ---------------------------------------------------------------------------------------------

def test_plan_follows_attempts_and_stops_after_finished_pods():
    plan = SubmitterLogPlan(poll_interval=2.0)
    assert plan.pick([]) is None
    assert plan.pick([pod("sub-1")]) is None  # not started
    running = pod("sub-1", phase="Running", running=True)
    assert plan.pick([running]) == "sub-1"
    plan.stream_ended(stop_requested=False)  # stream ended while the pod still runs: follow again
    assert plan.pick([running]) == "sub-1"
    failed = pod("sub-1", phase="Failed", terminated={"exitCode": 1})
    assert plan.pick([failed]) == "sub-1"
    plan.stream_ended(stop_requested=False)
    assert plan.pick([failed]) is None  # its log was read to the end
    second = pod("sub-2", "2026-11-22T00:01:00Z", "Running", running=True)
    assert plan.pick([failed, second]) == "sub-2"  # the Job's next attempt


def test_plan_stop_requested_marks_the_pod_done():
    plan = SubmitterLogPlan()
    running = pod("sub-1", phase="Running", running=True)
    assert plan.pick([running]) == "sub-1"
    plan.stream_ended(stop_requested=True)
    assert plan.pick([running]) is None


def test_plan_stream_end_without_a_pick_is_harmless():
    plan = SubmitterLogPlan()
    plan.stream_ended(stop_requested=True)
    assert plan.pick([pod("sub-1", phase="Running", running=True)]) == "sub-1"


def test_plan_backs_off_while_streams_fail_and_resets():
    plan = SubmitterLogPlan(poll_interval=2.0)
    assert plan.wait_seconds() == 2.0
    waits = []
    for _ in range(8):
        plan.stream_failed()
        waits.append(plan.wait_seconds())
    assert waits == [4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    plan.stream_ended(stop_requested=False)
    assert plan.wait_seconds() == 2.0


# -- submitter Job and one-off tail reads --------------------------------------------------------------------
def test_submitter_job_failure_is_described():
    job = {
        "metadata": {"name": "rj"},
        "status": {"failed": 3, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"},
        ]},
    }
    assert describe_submitter_job(job) == [
        "submitter Job rj: failed (BackoffLimitExceeded): Job has reached the specified backoff limit",
        "submitter Job rj: 3 failed pod attempt(s)",
    ]


@pytest.mark.parametrize("job", [None, {}, {"metadata": {"name": "rj"}, "status": {
    "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}])
def test_healthy_or_missing_submitter_job_says_nothing(job):
    assert describe_submitter_job(job) == []


def test_extend_keeps_only_the_last_lines_and_skips_lines_already_streamed():
    tail = LogTail(size=2)
    tail.start("p")
    assert tail.accept("p", "one")
    tail.extend("p", ["one", "two", "three"])
    assert list(tail.lines) == ["two", "three"] and tail.total == 3
