"""GKE mode, async side: a 401 (the API server refusing a token once) in the middle of a deferrable wait is
answered by exactly one token refresh and one retry, for the RayJob watch (the trigger's shared informer and the
hook's own watch) and for the driver-log follow; the wait goes on, no log line is printed twice, and nothing is
deleted. Real kubernetes_asyncio over real TLS against the emulated API server; no Ray (statuses are driven by
hand through the server's store)."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.cloud.container_v1", reason="the google extra (google-cloud-container) is not installed")

from kuberay_provider.hooks import gke as gke_module
from kuberay_provider.local.resources import BY_PATH
from tests.gke.conftest import RAYJOBS

PODS = BY_PATH[("", "v1", "pods")]
SUBMITTER = "ray-job-submitter"
RUNNING = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "jobId": "j", "rayClusterName": "c"}
SUCCEEDED = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "jobId": "j", "rayClusterName": "c"}


class Faults:
    """Test-side control of the HTTPS API server: refuse the next matching request's token once (401), and cut
    open log-follow streams (as a load balancer or an API server restart would)."""

    def __init__(self, gke: Any) -> None:
        self.gke, self.server = gke, gke.server
        self._refuse: list[Callable[[Any], bool]] = []
        self._log_transports: list[Any] = []
        authenticated, pod_log = self.server._authenticated, self.server._pod_log

        def authenticate(request: Any) -> tuple[bool, str]:
            for rule in list(self._refuse):
                if rule(request):
                    self._refuse.remove(rule)
                    return False, ""
            return authenticated(request)

        async def follow(request: Any, namespace: str, name: str) -> Any:
            self._log_transports.append(request.transport)
            return await pod_log(request, namespace, name)

        self.server._authenticated = authenticate  # looked up per request by the middleware
        self.server._pod_log = follow

    def refuse_next(self, rule: Callable[[Any], bool]) -> None:
        self._refuse.append(rule)

    def cut_log_streams(self) -> None:
        transports, self._log_transports = self._log_transports, []
        for transport in transports:
            if transport is not None:
                self.gke.loop.call_soon_threadsafe(transport.close)

    def requests(self, predicate: Callable[[Any], bool]) -> list[Any]:
        return [r for r in list(self.server.requests) if predicate(r)]


def is_rayjob_watch(request: Any) -> bool:
    return "/rayjobs" in request.path and request.query.get("watch") in ("true", "1", "True")


def is_log(request: Any) -> bool:
    return request.path.endswith("/log")


def rayjob(name: str, status: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1},
            "spec": {"entrypoint": "python x.py"}, "status": status}


def submitter_pod(name: str, job: str, finished: bool = False) -> dict[str, Any]:
    state = {"terminated": {"exitCode": 0, "reason": "Completed"}} if finished else \
        {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"batch.kubernetes.io/job-name": job, "job-name": job}},
            "spec": {"containers": [{"name": SUBMITTER, "image": "x"}]},
            "status": {"phase": "Succeeded" if finished else "Running",
                       "containerStatuses": [{"name": SUBMITTER, "state": state}]}}


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as fh:
        fh.writelines(line + "\n" for line in lines)


async def until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)


@pytest.fixture
def stable_tokens(gke, monkeypatch):
    """Tokens that outlive the test: every refresh counted is one answering a 401. Returns the token sources
    the async clients were built with."""
    gke.google.token_lifetime = 600.0
    sources: list[Any] = []
    connect = gke_module.connect

    def recording(target):
        access = connect(target)
        sources.append(access.tokens)
        return access

    monkeypatch.setattr(gke_module, "connect", recording)
    return sources


def _setup_job(gke, tmp_path: Path, job: str) -> Path:
    log = tmp_path / f"{job}.log"
    log.write_text("")
    gke.commit("ADDED", rayjob(job, RUNNING))
    gke.server.register_log("ns", f"{job}-abcde", SUBMITTER, log)
    gke.run(lambda: gke.server.store.commit(PODS.storage_key, "ADDED", submitter_pod(f"{job}-abcde", job)))
    return log


def _finish(gke, job: str) -> None:
    gke.run(lambda: gke.server.store.commit(PODS.storage_key, "MODIFIED",
                                            submitter_pod(f"{job}-abcde", job, finished=True)))

    def succeed() -> None:
        obj = copy.deepcopy(gke.server.store.bucket(RAYJOBS.storage_key)[("ns", job)])
        obj["status"] = SUCCEEDED
        gke.server.store.commit(RAYJOBS.storage_key, "MODIFIED", obj)

    gke.run(succeed)


async def _401_on_watch_then_on_log(gke, faults: Faults, log: Path) -> None:
    """Mid-wait: the RayJob watch reconnects and is refused once; then the log follow is cut, its reconnect is
    refused once; lines written meanwhile and after must each arrive once."""
    await until(lambda: faults.requests(lambda r: is_rayjob_watch(r) and r.status == 200), what="a RayJob watch")
    await until(lambda: faults.requests(lambda r: is_log(r) and r.status == 200), what="a log follow")
    watches = len(faults.requests(is_rayjob_watch))
    faults.refuse_next(is_rayjob_watch)
    gke.run(gke.server._drop_watches)
    await until(lambda: faults.requests(lambda r: is_rayjob_watch(r) and r.status == 200)[watches:],
                what="the RayJob watch re-opened after its 401")
    append(log, ["line 3", "line 4"])
    await asyncio.sleep(0.5)
    follows = len(faults.requests(is_log))
    faults.refuse_next(is_log)
    faults.cut_log_streams()
    append(log, ["line 5"])
    await until(lambda: faults.requests(lambda r: is_log(r) and r.status == 200)[follows:],
                what="the log follow re-opened after its 401")
    append(log, ["line 6"])
    await asyncio.sleep(0.5)


def _assert_one_refresh_per_401_and_no_delete(gke, faults: Faults, sources: list[Any], job: str) -> None:
    refused = faults.requests(lambda r: r.status == 401)
    assert [("watch" if is_rayjob_watch(r) else "log" if is_log(r) else r.path) for r in refused] == ["watch", "log"]
    assert gke.server.unauthorized == 2
    assert len(sources) == 1  # one client for the connection on this loop
    tokens = sources[0]
    assert tokens.forced == 2  # one forced refresh per 401 ...
    assert tokens.refreshes == 1 + 2  # ... and no other refresh besides the first token
    assert not faults.requests(lambda r: r.method == "DELETE")
    assert ("ns", job) in gke.server.store.bucket(RAYJOBS.storage_key)  # the RayJob is still there


def test_hook_watch_and_log_follow_resume_after_a_401_with_one_refresh(gke, stable_tokens, tmp_path):
    from kuberay_provider.hooks.kuberay import AsyncKubeRayHook
    from kuberay_provider.hooks.pods import LogTail
    from kuberay_provider.hooks.watching import RayJobWaiter

    faults = Faults(gke)
    log = _setup_job(gke, tmp_path, "job-h")
    append(log, ["line 0", "line 1", "line 2"])

    async def scenario() -> tuple[list[Any], list[str]]:
        hook = AsyncKubeRayHook(conn_id="kuberay_gke")
        statuses: list[Any] = []
        emitted: list[str] = []
        stop = asyncio.Event()
        async with hook.shared_client():
            async def watch() -> None:
                async for status in hook.watch_object(RayJobWaiter("job-h", "ns", timeout=60, watch_timeout=60)):
                    statuses.append(status)

            watching = asyncio.create_task(watch())
            streaming = asyncio.create_task(hook.stream_driver_log("job-h", "ns", LogTail(50), emitted.append, stop,
                                                                   poll_interval=0.2))
            await _401_on_watch_then_on_log(gke, faults, log)
            assert not watching.done() and len(statuses) == 1 and not statuses[0].is_terminal
            _finish(gke, "job-h")
            await asyncio.wait_for(watching, 20)  # the next status event came through the resumed watch
            stop.set()
            await asyncio.wait_for(streaming, 20)
        return statuses, emitted

    statuses, emitted = asyncio.run(scenario())
    assert statuses[-1].is_success and len(statuses) == 2
    assert emitted == [f"line {i}" for i in range(7)]  # every line once, in order, across the reconnect
    _assert_one_refresh_per_401_and_no_delete(gke, faults, stable_tokens, "job-h")


def test_trigger_delivers_its_event_after_401s_on_the_watch_and_the_log_follow(gke, stable_tokens, tmp_path):
    from kuberay_provider.triggers.rayjob import RayJobTrigger

    faults = Faults(gke)
    log = _setup_job(gke, tmp_path, "job-t")
    append(log, ["line 0", "line 1", "line 2"])

    printed: list[str] = []

    async def scenario() -> dict[str, Any]:
        trigger = RayJobTrigger("job-t", "ns", "kuberay_gke", deadline=time.time() + 120, watch_timeout=60)
        trigger._emit_driver_line = printed.append  # what the triggerer log shows as "[driver] ..."
        gen = trigger.run()
        first = asyncio.ensure_future(anext(gen))
        try:
            await _401_on_watch_then_on_log(gke, faults, log)
            assert not first.done()  # still waiting: a 401 is never an outcome
            _finish(gke, "job-t")
            return (await asyncio.wait_for(first, 30)).payload
        finally:
            if not first.done():
                first.cancel()
            await gen.aclose()

    event = asyncio.run(scenario())
    assert event["status"] == "success", event
    assert event["name"] == "job-t"
    assert printed == event["log_tail"] == [f"line {i}" for i in range(7)]
    _assert_one_refresh_per_401_and_no_delete(gke, faults, stable_tokens, "job-t")

