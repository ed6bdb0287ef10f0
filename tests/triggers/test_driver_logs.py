"""Driver logs without a stream and a poller per trigger: submitter pods come from one shared pod watch, follows
are bounded (newest first), the others read the tail when the job ends, a follow is not cut by the request
timeout, and the failure event keeps the log tail in every case."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from kuberay_provider.hooks import informer
from kuberay_provider.hooks.informer import registry
from kuberay_provider.triggers.rayjob import RayJobTrigger
from tests.triggers.conftest import FAILED, RUNNING, SUCCEEDED
from tests.triggers.test_informer import first_event, until


def writer(path, lines, every: float) -> threading.Thread:
    def run() -> None:
        for line in lines:
            with path.open("a") as fh:
                fh.write(line + "\n")
            time.sleep(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def log_requests(api, namespace):
    return [r for r in api.requests(f"/namespaces/{namespace}/pods/") if r.path.endswith("/log")]


def test_driver_log_comes_from_the_shared_pod_watch_and_lands_in_the_event(api, namespace, tmp_path):
    for name in ("a", "b"):
        api.create_rayjob(name, namespace, RUNNING)
        log = tmp_path / f"{name}.log"
        log.write_text("")
        api.create_pod(f"{name}-abcde", namespace, name, log)

    async def scenario():
        tasks = {n: asyncio.create_task(first_event(RayJobTrigger(n, namespace))) for n in ("a", "b")}
        await until(lambda: len(log_requests(api, namespace)) == 2)
        threads = [writer(tmp_path / f"{n}.log", [f"{n} line {i}" for i in range(5)], 0.05) for n in ("a", "b")]
        for t in threads:
            await asyncio.to_thread(t.join)
        await asyncio.sleep(0.5)
        for n in ("a", "b"):
            api.finish_pod(f"{n}-abcde", namespace)
            api.set_status(n, namespace, SUCCEEDED if n == "a" else FAILED)
        return {n: await t for n, t in tasks.items()}

    events = asyncio.run(scenario())
    assert events["a"]["log_tail"] == [f"a line {i}" for i in range(5)]
    assert events["b"]["log_tail"] == [f"b line {i}" for i in range(5)]
    assert events["b"]["status"] == "failed"
    pod_calls = api.requests(f"/namespaces/{namespace}/pods", watch=None)
    selectors = {r.query.get("labelSelector") for r in pod_calls if not r.path.endswith("/log")}
    assert selectors <= {"batch.kubernetes.io/job-name", "ray.io/cluster=c,ray.io/node-type=head",
                         "batch.kubernetes.io/job-name=b"}  # no per-trigger pod polling while waiting
    assert len([r for r in pod_calls if r.is_watch]) == 1  # one pod watch for the namespace
    assert len(log_requests(api, namespace)) == 2  # one follow each, no re-reads


def test_a_follow_outlives_the_request_timeout_without_re_reading(api, namespace, tmp_path, monkeypatch):
    from pathlib import Path

    conn = json.loads(__import__("os").environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
    conn["extra"]["request_timeout"] = 1  # a total timeout this short would cut the follow twice
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(conn))
    from kubernetes_asyncio.client import rest

    timeouts = []
    original = rest.RESTClientObject.request

    async def recording(self, method, url, *args, **kwargs):
        if url.endswith("/log") or "/log?" in url:
            timeouts.append(kwargs.get("_request_timeout"))
        return await original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(rest.RESTClientObject, "request", recording)
    api.create_rayjob("slow", namespace, RUNNING)
    log: Path = tmp_path / "slow.log"
    log.write_text("")
    api.create_pod("slow-abcde", namespace, "slow", log)

    async def scenario():
        task = asyncio.create_task(first_event(RayJobTrigger("slow", namespace)))
        await until(lambda: len(log_requests(api, namespace)) == 1)
        await asyncio.to_thread(writer(log, [f"tick {i}" for i in range(6)], 0.5).join)
        await asyncio.sleep(0.4)
        api.finish_pod("slow-abcde", namespace)
        api.set_status("slow", namespace, SUCCEEDED)
        return await task

    event = asyncio.run(scenario())
    assert event["log_tail"] == [f"tick {i}" for i in range(6)]
    assert len(log_requests(api, namespace)) == 1
    [timeout] = timeouts  # no total timeout for a stream that lives as long as the container
    assert timeout.total is None and timeout.sock_connect


def test_follows_are_bounded_newest_first_and_the_rest_read_the_tail(api, namespace, tmp_path, monkeypatch):
    monkeypatch.setattr(informer, "max_log_follows", lambda: 1)
    names = ["old", "new"]
    for name in names:
        api.create_rayjob(name, namespace, RUNNING)
        (tmp_path / f"{name}.log").write_text("".join(f"{name} {i}\n" for i in range(3)))

    async def scenario():
        old = asyncio.create_task(first_event(RayJobTrigger("old", namespace)))
        api.create_pod("old-abcde", namespace, "old", tmp_path / "old.log")
        await until(lambda: len(log_requests(api, namespace)) == 1)
        await asyncio.sleep(0.2)
        new = asyncio.create_task(first_event(RayJobTrigger("new", namespace)))
        api.create_pod("new-abcde", namespace, "new", tmp_path / "new.log")
        await until(lambda: len(log_requests(api, namespace)) == 2)
        pool = registry().log_pool
        assert len(pool.active) == 1 and pool.peak == 1
        for name in names:
            api.finish_pod(f"{name}-abcde", namespace)
            api.set_status(name, namespace, SUCCEEDED)
        return await old, await new

    old, new = asyncio.run(scenario())
    assert old["log_tail"] == ["old 0", "old 1", "old 2"]  # followed first, then its tail once the job ended
    assert new["log_tail"] == ["new 0", "new 1", "new 2"]


@pytest.mark.parametrize("stream_logs", [True, False])
def test_the_failure_event_keeps_the_log_tail(api, namespace, tmp_path, stream_logs):
    api.create_rayjob("bad", namespace, RUNNING)
    log = tmp_path / "bad.log"
    log.write_text("Traceback (most recent call last):\nValueError: boom\n")
    api.create_pod("bad-abcde", namespace, "bad", log)
    api.finish_pod("bad-abcde", namespace)

    async def scenario():
        task = asyncio.create_task(first_event(RayJobTrigger("bad", namespace, stream_logs=stream_logs)))
        await until(lambda: api.open_watches(namespace) >= 1)
        api.set_status("bad", namespace, FAILED)
        return await task

    event = asyncio.run(scenario())
    assert event["status"] == "failed"
    assert event["log_tail"][-1] == "ValueError: boom"


class _Ti:
    def xcom_push(self, **_):
        pass

    def xcom_pull(self, **_):
        return None


@pytest.mark.parametrize("stream_logs", [True, False])
def test_a_failure_is_diagnosed_where_the_task_resumes_not_in_the_triggerer(api, namespace, tmp_path, stream_logs):
    import copy

    from kuberay_provider.compat import AirflowException
    from kuberay_provider.local.apiserver import now_iso
    from kuberay_provider.operators.rayjob import RayJobOperator
    from kuberay_provider.sensors.rayjob import RayJobSensor
    from tests.triggers.conftest import BY_PATH, PODS

    api.create_rayjob("bad", namespace, RUNNING)
    log = tmp_path / "bad.log"
    log.write_text("ValueError: boom\n")
    api.create_pod("bad-abcde", namespace, "bad", log)
    pod = copy.deepcopy(api.server.store.bucket(PODS.storage_key)[(namespace, "bad-abcde")])
    pod["status"] = {"phase": "Failed", "containerStatuses": [
        {"name": "ray-job-submitter", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
    api._commit(PODS, "MODIFIED", pod)
    api._commit(BY_PATH[("", "v1", "events")], "ADDED", {
        "apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "Failed", "message": "went wrong",
        "metadata": {"name": "bad.failed", "namespace": namespace, "creationTimestamp": now_iso()},
        "involvedObject": {"apiVersion": "ray.io/v1", "kind": "RayJob", "name": "bad", "namespace": namespace},
        "lastTimestamp": now_iso()})

    async def scenario():
        task = asyncio.create_task(first_event(RayJobTrigger("bad", namespace, stream_logs=stream_logs)))
        await until(lambda: api.open_watches(namespace) >= (2 if stream_logs else 1))
        api.set_status("bad", namespace, FAILED)
        return await task

    event = asyncio.run(scenario())
    assert event["status"] == "failed" and event["log_tail"] == ["ValueError: boom"]
    assert event["diagnostics"] == []  # the shared triggerer read none: no Job, no events, no head pods
    assert not api.requests(f"/namespaces/{namespace}/jobs") and not api.requests(f"/namespaces/{namespace}/events")

    with pytest.raises(AirflowException) as sensed:  # a deferred sensor's failure is diagnosed on resuming too
        RayJobSensor(task_id="s", name="bad", namespace=namespace).execute_complete({"ti": _Ti()}, event)
    op = RayJobOperator(task_id="t", entrypoint="python a.py", namespace=namespace)
    with pytest.raises(AirflowException) as failed:
        op.execute_complete({"ti": _Ti()}, event, name="bad", namespace=namespace)
    for report in (str(sensed.value), str(failed.value)):
        assert "pod bad-abcde container ray-job-submitter: terminated (Error, exit code 1)" in report
        assert "event Failed (RayJob bad): went wrong" in report
        assert "ValueError: boom" in report
    calls = [(r.method, r.path) for r in api.requests(f"/namespaces/{namespace}/")]
    read_events = max(i for i, (method, path) in enumerate(calls) if path.endswith("/events"))
    deleted = calls.index(("DELETE", f"/apis/ray.io/v1/namespaces/{namespace}/rayjobs/bad"))
    assert read_events < deleted  # read before the cleanup deletes what they describe


def test_a_finished_submitter_pods_tail_is_read_before_the_job_ends_and_only_once(api, namespace, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.setattr(informer, "max_log_follows", lambda: 0)  # no follows at all: only tail reads
    api.create_rayjob("done", namespace, RUNNING)
    log = tmp_path / "done.log"
    log.write_text("".join(f"line {i}\n" for i in range(5)))
    api.create_pod("done-abcde", namespace, "done", log)

    records: list[str] = []

    class Recorder:
        def info(self, fmt: str, *args: object) -> None:
            records.append(fmt % args)

    class Recorded(RayJobTrigger):
        log = Recorder()  # the task log

    async def scenario():
        task = asyncio.create_task(first_event(Recorded("done", namespace, log_tail_lines=3)))
        await until(lambda: api.open_watches(namespace) >= 2)
        assert log_requests(api, namespace) == []  # running, and no follow slot: nothing read yet
        api.finish_pod("done-abcde", namespace)
        await until(lambda: len(log_requests(api, namespace)) == 1)  # read as the pod ended, the job still runs
        assert not task.done()
        api.set_status("done", namespace, SUCCEEDED)
        return await task

    event = asyncio.run(scenario())
    assert event["status"] == "success"
    assert event["log_tail"] == ["line 2", "line 3", "line 4"]
    [read] = log_requests(api, namespace)
    assert read.query.get("tailLines") == "3" and read.query.get("follow") in (None, "false")
    # the tail lands in the task log as one record, every line still marked
    assert [r for r in records if "[driver]" in r] == ["[driver] line 2\n[driver] line 3\n[driver] line 4"]



class _StubLogHook:
    """The two log calls a DriverLog makes, recorded: a follow that yields ``lines`` then ends cleanly (the
    container exited, or the stream was cut: the log endpoint says the same either way), and a tail read."""

    def __init__(self, lines):
        self.lines, self.follows, self.tail_reads = lines, 0, 0

    async def follow_pod_log(self, pod, namespace, container):
        self.follows += 1
        for line in self.lines:
            yield line

    async def read_pod_log(self, pod, namespace, container, tail_lines):
        self.tail_reads += 1
        return "\n".join(self.lines)


def _submitter_pod(phase: str, resource_version: str) -> dict:
    state = {"terminated": {"exitCode": 0}} if phase == "Succeeded" else {"running": {}}
    return {"metadata": {"name": "job-abcde", "resourceVersion": resource_version,
                         "creationTimestamp": "2026-12-02T10:00:00Z"},
            "status": {"phase": phase, "containerStatuses": [{"name": "ray-job-submitter", "state": state}]}}


async def _follow_to_a_clean_end(lines):
    """A DriverLog on a running submitter pod whose follow has just ended cleanly (its report handled), while the
    pod watch still shows the pod running."""
    from types import SimpleNamespace

    from kuberay_provider.hooks.informer import Feed, LogFollowPool
    from kuberay_provider.hooks.pods import LogTail
    from kuberay_provider.triggers.waits import DriverLog

    hook, feed, emitted = _StubLogHook(lines), Feed(), []
    logs = DriverLog(hook, SimpleNamespace(log_pool=LogFollowPool(4)), "job", "ns", LogTail(10), emitted.append, feed)
    logs.seed({"job-abcde": _submitter_pod("Running", "1")})
    _, type_, pod = await feed.get(5)
    logs.on_follow_ended(type_, pod)
    return hook, logs, emitted


@pytest.fixture
def grace(monkeypatch):
    from kuberay_provider.triggers import waits

    monkeypatch.setattr(waits, "FOLLOW_END_GRACE_SECONDS", 0.3)
    return 0.3


def test_a_clean_end_the_pod_watch_confirms_late_is_not_read_again(grace):
    async def scenario():
        hook, logs, emitted = await _follow_to_a_clean_end(["a", "b"])
        await asyncio.sleep(grace / 3)
        logs.on_pod("MODIFIED", _submitter_pod("Succeeded", "2"))  # the watch catches up
        await asyncio.sleep(grace * 2)
        return hook, logs, emitted

    hook, logs, emitted = asyncio.run(scenario())
    assert (hook.follows, hook.tail_reads) == (1, 0)  # neither a second follow nor a tail read
    assert logs.read_last_pod and emitted == ["a", "b"]


def test_a_clean_end_while_the_pod_keeps_running_is_a_cut_and_the_follow_reopens(grace):
    async def scenario():
        hook, logs, emitted = await _follow_to_a_clean_end(["a", "b"])
        await asyncio.sleep(grace * 2)
        follows = hook.follows
        logs.cancel()
        return follows, logs, emitted

    follows, logs, emitted = asyncio.run(scenario())
    assert follows == 2  # opened again once the grace was over, not before
    assert emitted == ["a", "b"] and not logs.read_last_pod  # the lines read again are not emitted twice


def test_a_clean_end_then_the_job_ends_before_the_pod_watch_confirms_needs_no_tail_read(grace):
    async def scenario():
        hook, logs, emitted = await _follow_to_a_clean_end(["x"])
        await logs.finish()  # the RayJob's terminal status came before the pod's
        return hook, logs, emitted

    hook, logs, emitted = asyncio.run(scenario())
    assert (hook.follows, hook.tail_reads) == (1, 0)
    assert logs.read_last_pod and emitted == ["x"] and not logs.unconfirmed
