"""An emulated Kubernetes API server (no controller, no Ray) in a thread of its own, reached over HTTP by the
code under test; RayJob objects and their statuses are written directly into its store (what KubeRay would do)."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuberay_provider.local.apiserver import KubeAPIServer, now_iso
from kuberay_provider.local.resources import BY_PATH
from kuberay_provider.local.stack import kubeconfig

RAYJOBS = BY_PATH[("ray.io", "v1", "rayjobs")]
PODS = BY_PATH[("", "v1", "pods")]


class Api:
    """The running server and helpers that act like KubeRay (object writes on the server's loop)."""

    def __init__(self, server: KubeAPIServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server, self.loop = server, loop

    def call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def _commit(self, res: Any, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.call(lambda: copy.deepcopy(self.server.store.commit(res.storage_key, kind, obj)))

    def create_rayjob(self, name: str, namespace: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
        obj = {"apiVersion": "ray.io/v1", "kind": "RayJob",
               "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "creationTimestamp": now_iso(),
                            "generation": 1},
               "spec": {"entrypoint": "python -c 'print(1)'"}}
        if status is not None:
            obj["status"] = status
        return self._commit(RAYJOBS, "ADDED", obj)

    def set_status(self, name: str, namespace: str, status: dict[str, Any]) -> None:
        obj = copy.deepcopy(self.server.store.bucket(RAYJOBS.storage_key)[(namespace, name)])
        obj["status"] = status
        self._commit(RAYJOBS, "MODIFIED", obj)

    def delete_rayjob(self, name: str, namespace: str) -> None:
        obj = copy.deepcopy(self.server.store.bucket(RAYJOBS.storage_key)[(namespace, name)])
        self._commit(RAYJOBS, "DELETED", obj)

    def create_pod(self, name: str, namespace: str, job: str, log: Path, *, running: bool = True) -> None:
        state = {"running": {"startedAt": now_iso()}} if running else {"waiting": {"reason": "ContainerCreating"}}
        obj = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "creationTimestamp": now_iso(),
                            "labels": {"batch.kubernetes.io/job-name": job, "job-name": job}},
               "spec": {"containers": [{"name": "ray-job-submitter", "image": "x"}]},
               "status": {"phase": "Running" if running else "Pending",
                          "containerStatuses": [{"name": "ray-job-submitter", "state": state}]}}
        self.server.register_log(namespace, name, "ray-job-submitter", log)
        self._commit(PODS, "ADDED", obj)

    def finish_pod(self, name: str, namespace: str) -> None:
        obj = copy.deepcopy(self.server.store.bucket(PODS.storage_key)[(namespace, name)])
        obj["status"] = {"phase": "Succeeded", "containerStatuses": [
            {"name": "ray-job-submitter", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
        self._commit(PODS, "MODIFIED", obj)

    def requests(self, path_contains: str, *, watch: bool | None = None) -> list[Any]:
        return [r for r in list(self.server.requests) if path_contains in r.path
                and (watch is None or r.is_watch == watch)]

    def open_watches(self, namespace: str) -> int:
        return self.call(lambda: sum(1 for w in self.server.store.watchers if w.external and w.namespace == namespace))


@pytest.fixture(scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeAPIServer, asyncio.AbstractEventLoop, Path]]:
    loop = asyncio.new_event_loop()
    server = KubeAPIServer(bookmark_interval=1.0)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="emulated-api", daemon=True)
    thread.start()
    assert started.wait(10)
    path = tmp_path_factory.mktemp("api") / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(server.url)), encoding="utf-8")
    try:
        yield server, loop, path
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture
def api(_server, monkeypatch) -> Iterator[Api]:
    server, loop, path = _server
    conn = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(path), "namespace": "default"}}
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("KUBECONFIG", str(path))
    yield Api(server, loop)
    server.faults.clear()


@pytest.fixture
def namespace() -> str:
    import uuid

    return f"n-{uuid.uuid4().hex[:8]}"


SUCCEEDED = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "jobId": "j", "rayClusterName": "c"}
FAILED = {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed", "jobId": "j"}
RUNNING = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "jobId": "j", "rayClusterName": "c"}
