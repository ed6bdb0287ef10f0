"""``LocalStack``: the local API server plus the KubeRay-like controller on a background thread."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from kuberay_provider.local.apiserver import KubeAPIServer
from kuberay_provider.local.controller import Controller
from kuberay_provider.local.sparkapps import SparkApplicationController

log = logging.getLogger(__name__)


def describe_processes(pids: list[int]) -> list[str]:
    """``"<pid> <command line>"`` for each live pid (for error messages about leaked processes)."""
    import psutil

    described = []
    for pid in pids:
        try:
            described.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:160]}")
        except psutil.Error:
            described.append(f"{pid} (gone)")
    return described
CONTEXT = "kuberay-local"


def kubeconfig(api_url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig for ``api_url``: no TLS, no auth, context ``kuberay-local``."""
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": CONTEXT, "cluster": {"server": api_url}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}],
        "current-context": CONTEXT,
    }


class LocalStack:
    """Local Kubernetes API server + KubeRay controller running real local Ray clusters.

    Use as a context manager or call :meth:`start` / :meth:`stop`. Everything binds to 127.0.0.1.
    """

    def __init__(self, base_dir: Path | None = None, *, requeue_seconds: float = 3.0, max_clusters: int = 1,
                 max_worker_nodes: int = 1, port: int = 0, bookmark_interval: float = 5.0, spark: bool = True) -> None:
        if requeue_seconds <= 0:
            raise ValueError("requeue_seconds must be > 0")
        if max_clusters < 1:
            raise ValueError("max_clusters must be >= 1")
        if max_worker_nodes < 0:
            raise ValueError("max_worker_nodes must be >= 0")
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="kuberay-local-"))
        self.requeue_seconds = requeue_seconds
        self.max_clusters = max_clusters
        self.max_worker_nodes = max_worker_nodes
        self.port = port
        self.server = KubeAPIServer(bookmark_interval=bookmark_interval)
        self.controller: Controller | None = None
        self.spark = spark
        self.spark_controller: SparkApplicationController | None = None  # SparkApplications (spark-operator double)
        self.api_url = ""
        self.kubeconfig_path = self.base_dir / "kubeconfig"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients: ``KUBECONFIG`` and Airflow's ``kubernetes_default`` connection."""
        conn = {"conn_type": "kubernetes",
                "extra": {"kube_config_path": str(self.kubeconfig_path), "namespace": "default"}}
        return {"KUBECONFIG": str(self.kubeconfig_path), "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(conn)}

    def start(self) -> LocalStack:
        """Start the API server and the controller; returns once the API answers."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="kuberay-local", daemon=True)
        self._thread.start()
        self.api_url = ready.result(timeout=60)
        atexit.register(self._kill_ray_at_exit)
        self.kubeconfig_path.write_text(yaml.safe_dump(kubeconfig(self.api_url)), encoding="utf-8")
        return self

    def _run(self, ready: concurrent.futures.Future[str]) -> None:
        assert self.loop is not None
        asyncio.set_event_loop(self.loop)

        async def boot() -> None:
            url = await self.server.start(port=self.port)
            self.controller = Controller(url, self.base_dir, self.server.register_log,
                                         requeue_seconds=self.requeue_seconds, max_clusters=self.max_clusters,
                                         max_worker_nodes=self.max_worker_nodes)
            await self.controller.start()
            if self.spark:
                self.spark_controller = SparkApplicationController(url, self.base_dir, self.server.register_log,
                                                                   requeue_seconds=self.requeue_seconds)
                await self.spark_controller.start()
            ready.set_result(url)

        try:
            self.loop.run_until_complete(boot())
        except Exception as exc:  # surface start-up errors to start()
            ready.set_exception(exc)
            return
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float = 120) -> Any:
        """Run a coroutine on the stack's loop from another thread and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def ray_pids(self) -> list[int]:
        """PIDs of every Ray process the controller runs now."""
        if self.controller is None:
            return []
        return sorted({pid for pids in self.controller.running_clusters().values() for pid in pids})

    def _kill_ray_at_exit(self) -> None:
        """Last resort when the interpreter exits without :meth:`stop`: Ray runs in other sessions and would stay."""
        if self.controller is not None:
            self.controller.runtime.stop_all()

    def leftover_ray_pids(self) -> list[int]:
        """Live processes of any Ray cluster this stack ever started (empty after a clean :meth:`stop`)."""
        return self.controller.runtime.leftover_pids() if self.controller else []

    def stop(self) -> None:
        """Stop every Ray cluster (and verify their processes are gone), the controller and the server."""
        if self.loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            if self.controller is not None:
                await self.controller.stop()
            if self.spark_controller is not None:
                await self.spark_controller.stop()
            await self.server.stop()

        try:
            self.call(shutdown(), timeout=120)
        finally:
            atexit.unregister(self._kill_ray_at_exit)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            self.loop.close()
            self.loop = None
        left = self.leftover_ray_pids()
        if left:
            raise RuntimeError(f"Ray processes still running after stop: {describe_processes(left)}")
        spark_left = self.spark_controller.leftover_pids() if self.spark_controller else []
        if spark_left:
            raise RuntimeError(f"Spark processes still running after stop: {spark_left}")

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
