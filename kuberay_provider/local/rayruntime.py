"""Real local Ray clusters standing in for RayCluster pods.

Each cluster is a ``ray start --head --block`` process (plus capped ``ray start --address`` worker nodes), each in
its own process group, with its own short temp dir and free loopback ports. Nothing here calls ``ray stop``.
All methods are blocking; the controller calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from kuberay_provider.local import images
from kuberay_provider.local.net import free_port, free_ports

OBJECT_STORE_BYTES = 200 * 1024 * 1024
RAY_BIN = Path(sys.executable).parent / "ray"
#: The ``rayStartParams`` that size a node, beyond ``num-cpus`` (KubeRay passes each as ``--<key>=<value>``).
SIZING_PARAMS = ("num-gpus", "memory", "resources")
#: Set to ``1`` to start nodes with Ray's defaults instead of :data:`LIGHT_NODE_ENV` / :data:`LIGHT_HEAD_FLAGS`
#: (the baseline of ``bench/bench_local_ray.py``, or to debug something those settings switch off).
FULL_NODES_ENV = "KUBERAY_LOCAL_RAY_FULL"
#: Ray settings that make each local node cheaper in CPU (each would cost the same on a real KubeRay pod, but there it
#: has its own cores; here every node of every cluster shares the machine with Airflow, Spark and the tests). None of
#: them changes what a job sees: job submission through the dashboard, driver logs, worker prints reaching the
#: driver, node and resource counts, task/actor scheduling and failure handling are all as with the defaults.
#: Applied with ``setdefault``: a value already in the environment wins. Every name is read by Ray 2.60 (the C++
#: ``RAY_<config>`` names by raylet/GCS/core workers via ``ray_config_def.h``, the others by the dashboard).
LIGHT_NODE_ENV = {
    # Prestarting: a raylet starts ``num-cpus`` idle Python workers when it boots and again when the first driver
    # connects, so they are warm when tasks arrive. Each costs a full ``import ray`` (1-2 CPU seconds) and most jobs
    # here (a driver printing, a few tasks) never use them all. Without prestart a worker starts when a task or actor
    # is leased (what the raylet does anyway once the prestarted ones are busy): same results, a little later.
    "RAY_enable_worker_prestart": "0",
    "RAY_prestart_worker_first_driver": "0",
    # Metrics: every core worker, raylet and GCS records OpenCensus/OpenTelemetry metrics and exports them to the
    # node's dashboard agent every few seconds (for Prometheus/Grafana, which nobody scrapes here). Off, the
    # ``--metrics-export-port`` still binds but serves no Ray metrics; nothing in the job path reads them.
    "RAY_enable_metrics_collection": "0",
    # Per-handler event-loop statistics of raylet/GCS/core workers (only printed to their debug logs).
    "RAY_event_stats": "0",
    # The dashboard agent's reporter samples every process of the node with psutil and publishes it for the dashboard
    # UI's node view every 5 s; once a minute is plenty here (the first sample is still published at start).
    "REPORTER_UPDATE_INTERVAL_MS": "60000",
    # The dashboard head records Prometheus metrics about itself every 5 s (unscraped, see above).
    "METRICS_RECORD_INTERVAL_S": "60",
}


def bytecode_cache_dir(fallback: Path) -> Path:
    """Where light nodes' Python processes cache compiled bytecode (``PYTHONPYCACHEPREFIX``): a per-user directory
    kept across runs (``$XDG_CACHE_HOME/kuberay-local/pycache-<python>``, never a shared world-writable one, whose
    bytecode another user could plant), else ``fallback`` when the home is not writable.

    Why: a venv installed by uv (as the lanes and ``scripts/venv.sh`` are) has no ``.pyc`` files, and with
    ``PYTHONDONTWRITEBYTECODE=1`` in the environment every Ray process of every node (``ray start``, dashboard and
    its modules, agents, log monitor, each worker and driver: ~20 per cluster) compiles all of Ray from source
    again, which is most of a node's start-up CPU. A ``rayproject/ray`` image ships its bytecode compiled; the cache
    only makes the local nodes do what the image's do. Writes are atomic (temp file + rename), so concurrent nodes
    and test workers can share it; entries are checked against their source's mtime and size as usual.

    The cache mirrors source paths, so job code run from temp dirs (working_dir packages, test dirs) leaves entries
    under ``<cache>/tmp/...`` that no later run reads: those older than an hour are deleted here (a node that loses
    an entry it is writing just skips caching it; Python ignores bytecode write errors).
    """
    tag = f"pycache-{sys.implementation.cache_tag}"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kuberay-local"
    cache = fallback / tag
    try:
        (base / tag).mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.access(base / tag, os.W_OK):
            cache = base / tag
    except OSError:
        pass
    cache.mkdir(parents=True, exist_ok=True)
    _prune_stale(cache / Path(tempfile.gettempdir()).relative_to("/"), max_age=3600)
    return cache


def installed_with_bytecode() -> bool:
    """Whether Ray was installed with its bytecode compiled (pip does by default, ``uv pip install
    --compile-bytecode`` as the lanes do): then nodes read it where it is and need no :func:`bytecode_cache_dir`
    (whose ``PYTHONPYCACHEPREFIX`` would make Python ignore the installed bytecode)."""
    import importlib.util

    spec = importlib.util.find_spec("ray")  # a top-level package: found without importing it
    if spec is None or not spec.origin:
        return False
    return (Path(spec.origin).parent / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc").exists()


def _prune_stale(directory: Path, max_age: float, depth: int = 3) -> None:
    """Delete the subtrees of ``directory`` with nothing modified for ``max_age`` seconds, looking ``depth`` levels
    down (``/tmp/pytest-of-<user>`` lives on while its old ``pytest-<n>`` dirs do not). Best effort."""
    cutoff = time.time() - max_age
    with contextlib.suppress(OSError):
        for entry in list(directory.iterdir()):
            with contextlib.suppress(OSError):
                if entry.is_symlink() or not entry.is_dir():
                    if entry.lstat().st_mtime < cutoff:
                        entry.unlink()
                elif _newest_mtime(entry) < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
                elif depth > 1:
                    _prune_stale(entry, max_age, depth - 1)


def _newest_mtime(directory: Path) -> float:
    newest = directory.lstat().st_mtime
    for root, _, files in os.walk(directory):
        with contextlib.suppress(OSError):
            newest = max(newest, os.lstat(root).st_mtime, *(os.lstat(os.path.join(root, f)).st_mtime for f in files))
    return newest


#: Extra ``ray start --head`` flags of a light head. ``--no-monitor``: no autoscaler monitor process (``monitor.py``
#: polls the GCS every few seconds to autoscale and to feed ``ray status``). The local double never autoscales (worker
#: replicas are fixed by the RayCluster spec, see :meth:`RayRuntime.reserve`), and KubeRay itself passes this flag
#: whenever the autoscaler runs as its own sidecar.
LIGHT_HEAD_FLAGS = ("--no-monitor",)


def ray_start_flags(ray_start_params: dict | None, pod_template: dict | None = None) -> list[str]:
    """``ray start`` flags for a node's ``num-gpus``/``memory``/``resources``, as KubeRay builds them: from
    ``rayStartParams`` (``resources`` is JSON, possibly shell-quoted as KubeRay's samples write it), else
    ``--num-gpus`` from the Ray container's ``nvidia.com/gpu`` limit and a ``TPU`` resource from its
    ``google.com/tpu`` limit. Accelerator pods are scheduled as if their GKE node pool existed: node selectors and
    tolerations are not matched against the local machine, and Ray is told about the chips it does not have."""
    params = dict(ray_start_params or {})
    containers = ((pod_template or {}).get("spec") or {}).get("containers") or [{}]
    limits = (containers[0].get("resources") or {}).get("limits") or {}
    if "num-gpus" not in params:
        gpus = limits.get("nvidia.com/gpu")
        if gpus not in (None, "", "0", 0):
            params["num-gpus"] = gpus
    flags = []
    for key in SIZING_PARAMS:
        value = str(params.get(key, "")).strip()
        if key == "resources" and value.startswith('"') and value.endswith('"'):
            value = json.loads(value)  # '"{\"TPU\": 4}"' (quoted for KubeRay's shell command) → '{"TPU": 4}'
        if key == "resources" and limits.get("google.com/tpu") not in (None, "", "0", 0):
            # KubeRay adds the well-known accelerator resource TPU for a google.com/tpu limit, unless given.
            resources = json.loads(value) if value else {}
            if isinstance(resources, dict) and "TPU" not in resources:
                resources["TPU"] = int(str(limits["google.com/tpu"]))
                value = json.dumps(resources)
        if value:
            flags.append(f"--{key}={value}")
    return flags


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (what :func:`free_port` draws from)."""
    try:
        low, high = (int(p) for p in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def worker_port_window(size: int = 200) -> int:
    """The first of ``size`` ports for Ray worker processes, below the ephemeral range: ports handed out by
    :func:`free_port` (GCS, dashboard, node manager, ...) must never fall inside a worker window."""
    low, _ = ephemeral_port_range()
    top = max(10000 + size, low - size)
    return random.randrange(10000, top, size)


#: The ``ray start`` flags of a node's own ports (each node gets distinct free ones, see :func:`_node_ports`).
NODE_PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--metrics-export-port",
                   "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port")


def _node_ports() -> list[str]:
    """A node's port flags, all distinct (two components on one port make the node exit at every start)."""
    return [f"{flag}={port}" for flag, port in zip(NODE_PORT_FLAGS, free_ports(len(NODE_PORT_FLAGS)), strict=True)]


def _with_fresh_node_ports(argv: list[str]) -> list[str]:
    """``argv`` of a node's ``ray start`` with new port flags: a restarted node must not reuse a port another
    process took meanwhile."""
    kept = [arg for arg in argv if arg.split("=", 1)[0] not in NODE_PORT_FLAGS]
    return [*kept, *_node_ports()]


@dataclass(frozen=True)
class Dashboard:
    """Where a local cluster's job API answers, and the bearer token it requires."""

    url: str
    token: str
    image: str | None = None
    """The head's container image: what the job's driver can import (see :mod:`kuberay_provider.local.images`)."""

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers that authenticate to the cluster (Ray token authentication)."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class LocalRayCluster:
    """One running local Ray cluster."""

    key: tuple[str, str]
    num_cpus: int
    worker_cpus: list[int]
    owner_uid: str
    temp_dir: Path
    log_dir: Path
    # The container images of the head and of each worker node (see :mod:`kuberay_provider.local.images`).
    image: str | None = None
    worker_images: list[str | None] = field(default_factory=list)
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    client_port: int = field(default_factory=free_port)
    # Ray 2.60 cannot bind its gRPC servers (GCS, raylet, agents) to loopback only, so every local cluster requires
    # this random token (RAY_AUTH_MODE=token): nobody else on the network can use it.
    auth_token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Extra `ray start` flags (see ray_start_flags) of the head and of each worker node.
    head_flags: list[str] = field(default_factory=list)
    worker_flags: list[list[str]] = field(default_factory=list)
    started_at: float = 0.0
    ready_at: float | None = None
    stopped: bool = False
    # How each worker node was launched (argv, env, log, cwd), to restart it as kubelet restarts a crashed worker
    # container (KubeRay's worker pods restart on failure), and how often each one was restarted.
    worker_launches: list[tuple[list[str], dict[str, str], Path, Path]] = field(default_factory=list)
    worker_restarts: list[int] = field(default_factory=list)
    # Serialises start() and stop(): a stop during start waits for the spawned processes, then kills them.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def dashboard_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the head's dashboard (the job submission API)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def dashboard(self) -> Dashboard:
        """The job API address with its credentials."""
        return Dashboard(self.dashboard_url, self.auth_token, self.image)

    @property
    def head(self) -> subprocess.Popen[bytes] | None:
        """The head node process."""
        return self.processes[0] if self.processes else None

    def pids(self) -> list[int]:
        """PIDs of the ``ray start`` processes and all their descendants."""
        pids: set[int] = set()
        for proc in self.processes:
            pids.add(proc.pid)
            with contextlib.suppress(psutil.Error):
                pids.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
            pids.update(_scan({proc.pid}, set()))
        return sorted(pids)

    def head_alive(self) -> bool:
        """Whether the head ``ray start`` process still runs."""
        return self.head is not None and self.head.poll() is None

    def dashboard_ready(self) -> bool:
        """Whether the head answers ``/api/gcs_healthz`` and the job API (checked once)."""
        headers = self.dashboard.headers
        try:
            for path in ("/api/gcs_healthz", "/api/version"):
                request = urllib.request.Request(f"{self.dashboard_url}{path}", headers=headers)
                with urllib.request.urlopen(request, timeout=2) as resp:
                    if resp.status != 200:
                        return False
            return True
        except OSError:
            return False


def _scan(groups: set[int], temp_dirs: set[str]) -> list[int]:
    """Live (non-zombie) processes in one of ``groups`` or naming one of ``temp_dirs`` on their command line."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            if os.getpgid(proc.pid) in groups or any(d in cmdline for d in temp_dirs):
                found.append(proc.pid)
    return sorted(found)


def _processes(pids: set[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                procs.append(psutil.Process(pid))
    return procs


class RayRuntime:
    """Starts and stops local Ray clusters, at most ``max_clusters`` at a time."""

    def __init__(self, base_dir: Path, *, max_clusters: int = 1, max_worker_nodes: int = 1) -> None:
        self.base_dir = base_dir
        self.max_clusters = max_clusters
        self.max_worker_nodes = max_worker_nodes
        self.clusters: dict[tuple[str, str], LocalRayCluster] = {}
        self.stop_seconds: list[float] = []
        self.started: list[tuple[int, Path]] = []  # (process group id, temp dir) of every node ever started
        # (pid, create time) of every process seen when stopping a cluster: PIDs and process groups are reused.
        self.seen: set[tuple[int, float]] = set()
        self._lock = threading.Lock()
        # Clusters whose stop is in progress (already gone from ``clusters``, so the name can be reused at once, but
        # their processes may still be dying): running() reports them and stop_all() waits for them.
        self._stopping: list[LocalRayCluster] = []
        self._stopped = threading.Condition(self._lock)
        self._site_dir: Path | None = None
        self._site_lock = threading.Lock()
        self._bytecode_dir: Path | None = None

    def bytecode_dir(self) -> Path:
        """The bytecode cache of light nodes (see :func:`bytecode_cache_dir`; looked up once)."""
        with self._site_lock:
            if self._bytecode_dir is None:
                self._bytecode_dir = bytecode_cache_dir(self.base_dir / "ray")
            return self._bytecode_dir

    def site_dir(self) -> Path:
        """The generated ``sitecustomize`` directory every node's ``PYTHONPATH`` starts with (written once)."""
        with self._site_lock:
            if self._site_dir is None:
                self._site_dir = images.write_site_dir(self.base_dir / "ray" / "image-site")
            return self._site_dir

    def has_capacity(self) -> bool:
        """Whether one more cluster may start now."""
        with self._lock:
            return len(self.clusters) < self.max_clusters

    def get(self, key: tuple[str, str]) -> LocalRayCluster | None:
        """The cluster for ``(namespace, raycluster name)`` if one runs."""
        with self._lock:
            return self.clusters.get(key)

    def reserve(
        self, key: tuple[str, str], head_cpus: int, worker_cpus: list[int], owner_uid: str,
        head_flags: list[str] | None = None, worker_flags: list[list[str]] | None = None,
    ) -> LocalRayCluster | None:
        """Claim a slot for a cluster (returns ``None`` when full). Call :meth:`start` next."""
        with self._lock:
            if key in self.clusters:
                return self.clusters[key]
            if len(self.clusters) >= self.max_clusters:
                return None
            temp_dir = Path(tempfile.mkdtemp(prefix="krl-", dir="/tmp"))
            log_dir = self.base_dir / "ray" / f"{key[0]}.{key[1]}"
            log_dir.mkdir(parents=True, exist_ok=True)
            nodes = worker_cpus[: self.max_worker_nodes]
            if worker_cpus and nodes:
                # Fold the logical CPUs of replicas beyond the cap into the nodes that do start.
                extra = sum(worker_cpus[len(nodes):])
                nodes = [nodes[0] + extra, *nodes[1:]]
            cluster = LocalRayCluster(key, head_cpus, nodes, owner_uid, temp_dir, log_dir,
                                      head_flags=list(head_flags or []), worker_flags=list(worker_flags or []))
            self.clusters[key] = cluster
            return cluster

    def start(self, cluster: LocalRayCluster) -> None:
        """Start the head and worker nodes (returns once the processes are spawned, not when ready)."""
        with cluster.lock:
            if not cluster.stopped:
                self._start(cluster)

    def _start(self, cluster: LocalRayCluster) -> None:
        env = dict(os.environ)
        env["PATH"] = f"{RAY_BIN.parent}{os.pathsep}{env.get('PATH', '')}"
        env["RAY_USAGE_STATS_ENABLED"] = "0"
        # Token authentication with the cluster's own token (never ~/.ray/auth_token): Ray's servers listen on every
        # interface whatever --node-ip-address says, so the token is what keeps the cluster private. Drivers and
        # workers inherit it; the controller sends it as a bearer header (see :class:`Dashboard`).
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = cluster.auth_token
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        env.pop("RAY_ADDRESS", None)
        # A laptop or CI machine running several clusters, Spark and Airflow on two cores can starve a raylet for
        # longer than Ray's default health check forgives (5 misses, ~15-60 s), and the GCS then declares the head
        # dead mid-job. Real nodes are not that contended: tolerate ~2 minutes of silence instead.
        env.setdefault("RAY_health_check_failure_threshold", "40")
        light = env.get(FULL_NODES_ENV, "0") != "1"
        if light:
            for name, value in LIGHT_NODE_ENV.items():
                env.setdefault(name, value)
            if not installed_with_bytecode():  # see bytecode_cache_dir
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env.setdefault("PYTHONPYCACHEPREFIX", str(self.bytecode_dir()))
        common = ["--block", "--node-ip-address=127.0.0.1", f"--object-store-memory={OBJECT_STORE_BYTES}",
                  f"--temp-dir={cluster.temp_dir}", "--disable-usage-stats"]
        base_port = worker_port_window()
        head = [str(RAY_BIN), "start", "--head", *common, f"--port={cluster.gcs_port}",
                "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={cluster.dashboard_port}",
                f"--ray-client-server-port={cluster.client_port}", f"--num-cpus={cluster.num_cpus}",
                f"--min-worker-port={base_port}", f"--max-worker-port={base_port + 99}", *_node_ports(),
                *(LIGHT_HEAD_FLAGS if light else ()), *cluster.head_flags]
        site_dir = self.site_dir()
        home = cluster.temp_dir / "home"  # an empty working directory, like the image's home
        home.mkdir(exist_ok=True)
        cluster.started_at = time.monotonic()
        head_env = images.node_env(cluster.image, env, site_dir, [cluster.temp_dir])
        cluster.processes.append(self._spawn(head, head_env, cluster.log_dir / "head.log", home))
        self.started.append((cluster.processes[-1].pid, cluster.temp_dir))
        for index, cpus in enumerate(cluster.worker_cpus):
            worker = [str(RAY_BIN), "start", f"--address=127.0.0.1:{cluster.gcs_port}", *common,
                      f"--num-cpus={cpus}", f"--min-worker-port={base_port + 100}",
                      f"--max-worker-port={base_port + 199}", *_node_ports(),
                      *(cluster.worker_flags[index] if index < len(cluster.worker_flags) else [])]
            image = cluster.worker_images[index] if index < len(cluster.worker_images) else cluster.image
            worker_env = images.node_env(image, env, site_dir, [cluster.temp_dir])
            launch = (worker, worker_env, cluster.log_dir / f"worker-{index}.log", home)
            cluster.worker_launches.append(launch)
            cluster.worker_restarts.append(0)
            cluster.processes.append(self._spawn(*launch))
            self.started.append((cluster.processes[-1].pid, cluster.temp_dir))

    def restart_exited_workers(self, cluster: LocalRayCluster) -> int:
        """Start again every worker node whose ``ray start`` exited while the head runs (Ray gives a worker 30 s to
        register with the GCS, which a busy 2-core machine can exceed), as kubelet restarts a failed container of
        a worker pod. Returns how many were restarted."""
        restarted = 0
        with cluster.lock:
            if cluster.stopped or not cluster.head_alive():
                return 0
            for index, launch in enumerate(cluster.worker_launches):
                proc = cluster.processes[index + 1]
                if proc.poll() is None:
                    continue
                cluster.worker_restarts[index] += 1
                argv, env, log, cwd = launch
                cluster.worker_launches[index] = launch = (_with_fresh_node_ports(argv), env, log, cwd)
                cluster.processes[index + 1] = self._spawn(*launch)
                self.started.append((cluster.processes[index + 1].pid, cluster.temp_dir))
                restarted += 1
        return restarted

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True, cwd=cwd)

    def stop(self, key: tuple[str, str], timeout: float = 1.0) -> float:
        """Stop a cluster: SIGTERM its process groups, wait, SIGKILL stragglers. Returns the seconds it took."""
        with self._lock:
            cluster = self.clusters.pop(key, None)
            if cluster is None:
                return 0.0
            self._stopping.append(cluster)
        try:
            with cluster.lock:
                elapsed = self._stop(cluster, timeout)
        finally:
            with self._lock:
                self._stopping.remove(cluster)
                self._stopped.notify_all()
        self.stop_seconds.append(elapsed)
        return elapsed

    def _stop(self, cluster: LocalRayCluster, timeout: float) -> float:
        began = time.monotonic()
        groups = {p.pid for p in cluster.processes}
        procs = _processes(set(cluster.pids()) | set(_scan(groups, {str(cluster.temp_dir)})))
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                self.seen.add((proc.pid, proc.create_time()))
        for pgid in sorted(groups, reverse=True):  # worker nodes first, then the head
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = _processes({p.pid for p in alive} | set(_scan(groups, {str(cluster.temp_dir)})))
            if not alive:
                break
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            _, alive = psutil.wait_procs(alive, timeout=1)
        for proc in cluster.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        cluster.stopped = True
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
        return time.monotonic() - began

    def stop_all(self, timeout: float = 60.0) -> None:
        """Stop every cluster, and wait for stops already in progress in other threads."""
        for key in list(self.clusters):
            self.stop(key)
        with self._lock:
            self._stopped.wait_for(lambda: not self._stopping, timeout)

    def active(self) -> list[tuple[str, str]]:
        """``(namespace, raycluster)`` of the clusters running now (not those being stopped)."""
        with self._lock:
            return list(self.clusters)

    def leftover_pids(self) -> list[int]:
        """Live processes of any cluster this runtime ever started: members of running clusters' process groups,
        processes seen when stopping a cluster that still run, and anything naming one of its temp dirs."""
        with self._lock:
            groups = {p.pid for c in [*self.clusters.values(), *self._stopping] for p in c.processes}
        left = set(_scan(groups, {str(d) for _, d in self.started}))
        for pid, created in self.seen:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    left.add(pid)
        return sorted(left)

    def running(self) -> dict[tuple[str, str], list[int]]:
        """``{(namespace, raycluster): [pids]}`` of the clusters running now or still being stopped: it is empty only
        once every process of every stopped cluster is gone."""
        with self._lock:
            clusters = [*self.clusters.values(), *self._stopping]
        running: dict[tuple[str, str], list[int]] = {}
        for cluster in clusters:
            running.setdefault(cluster.key, []).extend(cluster.pids())
        return running
