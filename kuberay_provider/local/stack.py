"""``LocalStack``: the local API server plus the KubeRay-like controller on a background thread, the spark-operator
double and the BigQuery emulator (a subprocess)."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from kuberay_provider.local.apiserver import KubeAPIServer
from kuberay_provider.local.bigquery_emulator import BigQueryEmulator
from kuberay_provider.local.controller import Controller
from kuberay_provider.local.google import Cluster, GoogleDoubles
from kuberay_provider.local.sparkapps import SparkApplicationController

log = logging.getLogger(__name__)
DEFAULT_BIGQUERY_PROJECT = "local-project"
#: GKE mode: the cluster the fake GKE API serves and the service account the Airflow side authenticates as.
GKE_PROJECT, GKE_LOCATION, GKE_CLUSTER = "local-project", "local-central1", "kuberay-local"
GKE_PRINCIPAL = f"airflow@{GKE_PROJECT}.iam.gserviceaccount.com"


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
    """Local Kubernetes API server + KubeRay controller running real local Ray clusters, the spark-operator double
    and (``bigquery=True``) a private BigQuery emulator.

    Use as a context manager or call :meth:`start` / :meth:`stop`. Everything binds to 127.0.0.1. The emulator keeps
    its state under ``base_dir/bigquery``; :attr:`env` carries its endpoints for the jobs (``KUBERAY_BQ_*``) and for
    the retraining DAG (``AIRFLOW_VAR_KUBERAY_BQ_*``).
    """

    def __init__(self, base_dir: Path | None = None, *, requeue_seconds: float = 3.0, max_clusters: int = 1,
                 max_worker_nodes: int = 1, port: int = 0, bookmark_interval: float = 5.0, spark: bool = True,
                 bigquery: bool = True, bigquery_project: str = DEFAULT_BIGQUERY_PROJECT, gke: bool = False,
                 token_lifetime: float = 5.0) -> None:
        if requeue_seconds <= 0:
            raise ValueError(f"requeue_seconds={requeue_seconds!r}: must be > 0")
        if max_clusters < 1:
            raise ValueError(f"max_clusters={max_clusters!r}: must be >= 1")
        if max_worker_nodes < 0:
            raise ValueError(f"max_worker_nodes={max_worker_nodes!r}: must be >= 0")
        if not isinstance(bigquery_project, str) or not bigquery_project.strip():
            raise ValueError(f"bigquery_project={bigquery_project!r}: must be a non-empty BigQuery project id")
        self._owns_base_dir = base_dir is None  # a temp dir of our own is removed again by stop()
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="kuberay-local-"))
        self.requeue_seconds = requeue_seconds
        self.max_clusters = max_clusters
        self.max_worker_nodes = max_worker_nodes
        self.port = port
        self.server = KubeAPIServer(bookmark_interval=bookmark_interval)
        self.controller: Controller | None = None
        self.spark = spark
        self.spark_controller: SparkApplicationController | None = None  # SparkApplications (spark-operator double)
        self.bigquery = bigquery
        self.bigquery_emulator: BigQueryEmulator | None = (
            BigQueryEmulator(self.base_dir / "bigquery", project=bigquery_project) if bigquery else None
        )
        self.api_url = ""
        self.kubeconfig_path = self.base_dir / "kubeconfig"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bigquery_pid: int | None = None  # kept after stop() to verify the process is gone
        # GKE mode: HTTPS + expiring bearer tokens on the API server, the Google doubles (token endpoint, IAM,
        # GKE GetCluster), and a ``kuberay`` connection in GKE mode in :attr:`env`.
        if gke and not token_lifetime > 0:
            raise ValueError(f"token_lifetime={token_lifetime!r}: must be > 0 seconds")
        self.google: GoogleDoubles | None = GoogleDoubles(token_lifetime=token_lifetime) if gke else None
        self.key_path = self.base_dir / "gcp" / "service-account.json"

    @property
    def model_root(self) -> Path:
        """Where the retraining DAG writes models on this stack (``kuberay_model_root``)."""
        return self.base_dir / "models" / "churn"

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients: ``KUBECONFIG``, Airflow's ``kubernetes_default`` connection and, with the
        emulator, ``KUBERAY_BQ_*`` plus the Airflow Variables of ``dags/ray_retraining.py``."""
        if self.google is not None:
            env = self.gke_env
        else:
            conn = {"conn_type": "kubernetes",
                    "extra": {"kube_config_path": str(self.kubeconfig_path), "namespace": "default"}}
            env = {"KUBECONFIG": str(self.kubeconfig_path), "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(conn)}
        emulator = self.bigquery_emulator
        if emulator is not None and emulator.rest_port and emulator.grpc_port:
            env.update(emulator.env)
            env.update({
                "AIRFLOW_VAR_KUBERAY_BQ_PROJECT": emulator.project,
                "AIRFLOW_VAR_KUBERAY_BQ_REST_ENDPOINT": emulator.rest_endpoint,
                "AIRFLOW_VAR_KUBERAY_BQ_GRPC_ENDPOINT": emulator.grpc_endpoint,
                "AIRFLOW_VAR_KUBERAY_MODEL_ROOT": str(self.model_root),
            })  # fmt: skip
        return env

    def gke_connection(self, **extra: object) -> dict[str, object]:
        """The ``kuberay`` connection (Airflow JSON form) in GKE mode for this stack, ``extra`` merged in."""
        assert self.google is not None, "LocalStack(gke=True) only"
        return {"conn_type": "kuberay", "extra": {
            "project_id": GKE_PROJECT, "location": GKE_LOCATION, "cluster_name": GKE_CLUSTER,
            "gke_api_endpoint": self.google.url, "iam_endpoint": self.google.url, "namespace": "default", **extra}}

    @property
    def gke_env(self) -> dict[str, str]:
        """GKE mode: ``kubernetes_default`` as a ``kuberay`` connection in GKE mode and its Google credentials, the
        ``google_cloud_default`` connection (``key_path``: a service-account key whose token_uri is the local token
        endpoint). A connection rather than ``GOOGLE_APPLICATION_CREDENTIALS`` keeps the key on the Airflow side:
        the local Ray and Spark processes inherit the environment, and on GKE they use their own identity."""
        google = {"conn_type": "google_cloud_platform", "extra": {"key_path": str(self.key_path),
                                                                  "project": GKE_PROJECT}}
        return {"AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(self.gke_connection()),
                "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(google)}

    def start(self) -> LocalStack:
        """Start the API server, the controllers and the emulator (in parallel); returns once all answer."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self._kill_at_exit)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bqemu-start") as pool:
            emulator_started = pool.submit(self.bigquery_emulator.start) if self.bigquery_emulator else None
            try:
                self.loop = asyncio.new_event_loop()
                ready: concurrent.futures.Future[str] = concurrent.futures.Future()
                self._thread = threading.Thread(target=self._run, args=(ready,), name="kuberay-local", daemon=True)
                self._thread.start()
                self.api_url = ready.result(timeout=60)
                if emulator_started is not None:
                    emulator_started.result()
                    self._bigquery_pid = self.bigquery_emulator.pid  # type: ignore[union-attr]
                    log.info("BigQuery emulator (pid %s) at %s / %s in %.1fs", self._bigquery_pid,
                             self.bigquery_emulator.rest_endpoint, self.bigquery_emulator.grpc_endpoint,  # type: ignore[union-attr]
                             self.bigquery_emulator.start_seconds)  # type: ignore[union-attr]
            except BaseException:
                if emulator_started is not None:
                    concurrent.futures.wait([emulator_started])
                self.stop()
                raise
        self.kubeconfig_path.write_text(yaml.safe_dump(kubeconfig(self.api_url)), encoding="utf-8")
        return self

    def _run(self, ready: concurrent.futures.Future[str]) -> None:
        assert self.loop is not None
        asyncio.set_event_loop(self.loop)

        async def boot() -> None:
            url = await self.server.start(port=self.port)
            if self.google is not None:
                await self._start_gke()
            self.controller = Controller(url, self.base_dir, self.server.register_log,
                                         requeue_seconds=self.requeue_seconds, max_clusters=self.max_clusters,
                                         max_worker_nodes=self.max_worker_nodes)
            await self.controller.start()
            self.server.resolve_service = self.controller.service_endpoint
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

    async def _start_gke(self) -> None:
        from kuberay_provider.local.tls import make_ca

        assert self.google is not None
        ca = make_ca()
        self.ca_pem = ca.ca_pem
        tls_url = await self.server.start_tls(ca.server_context(self.base_dir / "tls"),
                                              authenticate=self.google.principal_of)
        await self.google.start()
        self.google.add_cluster(GKE_PROJECT, GKE_LOCATION, GKE_CLUSTER,
                                Cluster(endpoint=tls_url.removeprefix("https://"), ca_pem=ca.ca_pem,
                                        private_endpoint=tls_url.removeprefix("https://")))
        self.google.write_service_account_key(self.key_path, GKE_PRINCIPAL, GKE_PROJECT)

    def call(self, coro: Any, timeout: float = 120) -> Any:
        """Run a coroutine on the stack's loop from another thread and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def ray_pids(self) -> list[int]:
        """PIDs of every Ray process the controller runs now."""
        if self.controller is None:
            return []
        return sorted({pid for pids in self.controller.running_clusters().values() for pid in pids})

    def _kill_at_exit(self) -> None:
        """Last resort when the interpreter exits without :meth:`stop`: Ray and the emulator run in other sessions."""
        if self.controller is not None:
            self.controller.runtime.stop_all()
        if self.bigquery_emulator is not None:
            self.bigquery_emulator.stop()

    def leftover_ray_pids(self) -> list[int]:
        """Live processes of any Ray cluster this stack ever started (empty after a clean :meth:`stop`)."""
        return self.controller.runtime.leftover_pids() if self.controller else []

    def leftover_bigquery_pids(self) -> list[int]:
        """The emulator's PID if its process still lives after :meth:`stop` (empty after a clean stop)."""
        pid = self._bigquery_pid
        if pid is None or (self.bigquery_emulator is not None and self.bigquery_emulator.pid == pid):
            return []  # never started, or still running on purpose
        return [pid] if _alive(pid) else []

    def stop(self) -> None:
        """Stop every Ray cluster (and verify their processes are gone), the controllers, the server and the
        emulator (verified gone by PID)."""
        try:
            self._stop_loop()
        finally:
            if self.bigquery_emulator is not None:
                self.bigquery_emulator.stop()
            atexit.unregister(self._kill_at_exit)
        left = self.leftover_ray_pids()
        if left:
            raise RuntimeError(f"Ray processes still running after stop: {describe_processes(left)}")
        spark_left = self.spark_controller.leftover_pids() if self.spark_controller else []
        if spark_left:
            raise RuntimeError(f"Spark processes still running after stop: {spark_left}")
        bq_left = self.leftover_bigquery_pids()
        if bq_left:
            raise RuntimeError(f"BigQuery emulator still running after stop: {describe_processes(bq_left)}")
        if self._owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def _stop_loop(self) -> None:
        if self.loop is None or self._thread is None:
            return
        if not self._thread.is_alive():  # the loop never ran (start-up failed)
            self.loop.close()
            self.loop = None
            return

        async def shutdown() -> None:
            if self.controller is not None:
                await self.controller.stop()
            if self.spark_controller is not None:
                await self.spark_controller.stop()
            await self.server.stop()
            if self.google is not None:
                await self.google.stop()

        try:
            self.call(shutdown(), timeout=120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            self.loop.close()
            self.loop = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
