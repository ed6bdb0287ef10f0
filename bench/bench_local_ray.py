"""CPU seconds and wall time of one local Ray cluster lifecycle (1 head + 1 worker node, one trivial RayJob).

Each run is a fresh child process: it starts a :class:`~kuberay_provider.local.stack.LocalStack` (no Spark, no
BigQuery), creates a RayJob with one worker replica (``shutdownAfterJobFinishes``, TTL 0) whose driver runs four Ray
tasks, and waits for the job to succeed and for every Ray process to be gone. Phases:

* ``start``: RayJob created → the head's dashboard answers (the controller's ``ready_at``);
* ``job``: dashboard ready → RayJob ``Complete``/``SUCCEEDED``;
* ``teardown``: ``Complete`` → no process of the cluster left.

CPU is the user+system time of the whole process tree under the child (``ray start`` processes, raylets, GCS,
dashboard and agents, Ray workers, the submitter, the driver), exited processes included: the child makes itself a
child subreaper (orphans stay in its tree) and samples ``/proc`` every 0.1 s, keeping each process's last value
(zombies still report theirs); processes that live less than one sample are missed. The stack's own process (API
server, controller, submitter) is reported separately (``stack``, without the sampler thread's own CPU).

Variants: ``baseline`` starts nodes with Ray's defaults (``KUBERAY_LOCAL_RAY_FULL=1``: the settings before the
light-node change); ``light`` is the product with its bytecode cache warm (any cluster after the first on a
machine: it reuses the cache the previous ``light-cold`` run filled, else the user's own); ``light-cold`` is the
product with an empty bytecode cache (``XDG_CACHE_HOME`` pointed at a fresh directory: the first cluster on a
machine). ``cache-only`` (not run by default) is ``light`` without :data:`~kuberay_provider.local.rayruntime.LIGHT_NODE_ENV`
and ``LIGHT_HEAD_FLAGS`` (how much the bytecode cache alone saves). The variants alternate in the same invocation.
In a venv installed with its bytecode (pip; the lanes' ``uv pip install --compile-bytecode``) nodes read the
installed bytecode and the cache is not used (``installed_with_bytecode``): there light-cold is light.

Usage::

    .venv/bin/python bench/bench_local_ray.py                  # 2 runs of each variant
    .venv/bin/python bench/bench_local_ray.py --runs 1 --kinds # + CPU seconds per process kind
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VARIANTS = {"baseline": {"KUBERAY_LOCAL_RAY_FULL": "1"}, "light-cold": {"KUBERAY_LOCAL_RAY_FULL": "0"},
            "light": {"KUBERAY_LOCAL_RAY_FULL": "0"}, "cache-only": {"KUBERAY_LOCAL_RAY_FULL": "0"}}
ENTRYPOINT = ("python -c \"import ray; ray.init(); f = ray.remote(lambda i: i * 2); "
              "print('result', sum(ray.get([f.remote(i) for i in range(4)])))\"")
PR_SET_CHILD_SUBREAPER = 36
CLK_TCK = os.sysconf("SC_CLK_TCK")
PHASES = ("start", "job", "teardown")


def _stat(pid: int) -> tuple[int, float, float] | None:
    """``(ppid, starttime, cpu seconds)`` of ``pid`` from ``/proc/<pid>/stat``."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), float(fields[19]), (int(fields[11]) + int(fields[12])) / CLK_TCK


KINDS = (  # (substring of the command line, kind): first match wins
    ("default_worker.py", "ray worker"), ("ray::", "ray worker"), ("gcs_server", "gcs_server"),
    ("dashboard/agent.py", "dashboard agent"), ("runtime_env/agent/main.py", "runtime_env agent"),
    ("dashboard/dashboard.py", "dashboard"), ("ray-dashboard-", "dashboard module"),
    ("multiprocessing.forkserver", "dashboard module"), ("multiprocessing.resource_tracker", "dashboard module"),
    ("log_monitor.py", "log_monitor"), ("ray.util.client.server", "ray client server"),
    ("autoscaler/_private/monitor.py", "autoscaler monitor"),
    ("core/src/ray/raylet/raylet", "raylet"), ("bin/ray start", "ray start"), ("kill -s 0", "ray start reaper"),
    ("sleep", "ray start reaper"), ("import ray", "driver"),
)


def _kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmd = ""
    if not cmd:
        return ""  # a zombie: classify it later if it was seen alive, else "?"
    program = cmd.split()[0]
    if program.endswith(("/raylet", "/gcs_server")):  # before the needles: their arguments name the others
        return program.rsplit("/", 1)[1]
    for needle, kind in KINDS:
        if needle in cmd:
            return kind
    return "other: " + cmd[:60]


class TreeSampler:
    """CPU seconds of every process ever seen below this one (keyed by pid and start time)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.cpu: dict[tuple[int, float], float] = {}
        self.kinds: dict[tuple[int, float], str] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.own_cpu = 0.0  # this sampler thread's CPU seconds (not the stack's)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self.own_cpu = time.thread_time()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        me = os.getpid()
        stats = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat:
                    stats[int(entry.name)] = stat
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        todo, tree = list(children.get(me, [])), []
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        with self._lock:
            for pid in tree:
                _, started, cpu = stats[pid]
                key = (pid, started)
                self.cpu[key] = max(cpu, self.cpu.get(key, 0.0))
                kind = _kind(pid)  # again each time: a process is first seen as the fork of its parent
                if kind:
                    self.kinds[key] = kind
                else:
                    self.kinds.setdefault(key, "")

    def total(self) -> float:
        self.sample()
        with self._lock:
            return sum(self.cpu.values())

    def by_kind(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            out: dict[str, tuple[int, float]] = {}
            for key, cpu in self.cpu.items():
                kind = self.kinds[key] or "?"
                count, total = out.get(kind, (0, 0.0))
                out[kind] = (count + 1, total + cpu)
            return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rayjob(name: str) -> dict:
    def group(kind: str) -> dict:
        return {"template": {"spec": {"containers": [{"name": f"ray-{kind}", "image": "rayproject/ray:2.60.0",
                                                      "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}

    cluster = {"headGroupSpec": {"rayStartParams": {}, **group("head")},
               "workerGroupSpecs": [{"groupName": "workers", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                                     "rayStartParams": {}, **group("worker")}]}
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": name},
            "spec": {"entrypoint": ENTRYPOINT, "shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 0,
                     "rayClusterSpec": cluster}}


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} not within {timeout}s")


def child(variant: str) -> dict:
    """One lifecycle in this process; returns the measurements."""
    from kubernetes import client, config

    from kuberay_provider.local import rayruntime
    from kuberay_provider.local.stack import LocalStack

    if variant == "cache-only":  # ablation: the bytecode cache without the other light settings
        rayruntime.LIGHT_NODE_ENV, rayruntime.LIGHT_HEAD_FLAGS = {}, ()

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sampler = TreeSampler().start()
    with tempfile.TemporaryDirectory(prefix="bench-lightray-") as base:
        stack = LocalStack(Path(base), requeue_seconds=1.0, spark=False, bigquery=False)
        stack.start()
        try:
            crd = client.CustomObjectsApi(config.new_client_from_config(config_file=str(stack.kubeconfig_path)))
            runtime = stack.controller.runtime
            marks = [(time.monotonic(), sampler.total(), _self_cpu() - sampler.own_cpu)]
            crd.create_namespaced_custom_object("ray.io", "v1", "default", "rayjobs", _rayjob("bench"))
            cluster = _wait(lambda: next(iter(runtime.clusters.values()), None), 60, "cluster reserved")
            _wait(lambda: cluster.ready_at is not None, 240, "dashboard ready")
            marks.append((time.monotonic(), sampler.total(), _self_cpu() - sampler.own_cpu))

            def status() -> dict:
                return crd.get_namespaced_custom_object("ray.io", "v1", "default", "rayjobs", "bench").get("status") or {}

            final = _wait(lambda: (s := status()).get("jobDeploymentStatus") in ("Complete", "Failed") and s, 240,
                          "job finished")
            marks.append((time.monotonic(), sampler.total(), _self_cpu() - sampler.own_cpu))
            if final.get("jobStatus") != "SUCCEEDED":
                raise RuntimeError(f"job did not succeed: {final}")
            _wait(lambda: not runtime.running() and not runtime.clusters, 120, "cluster gone")
            marks.append((time.monotonic(), sampler.total(), _self_cpu() - sampler.own_cpu))
            driver_log = "".join(p.read_text(errors="replace") for p in Path(base).rglob("*.log")
                                 if "submitter" in p.name or "bench" in p.name)
        finally:
            stack.stop()
    sampler.stop()
    while True:  # reap the orphans this subreaper adopted
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break
    phases = {}
    for name, (a, b) in zip(PHASES, itertools.pairwise(marks), strict=True):
        phases[name] = {"wall": b[0] - a[0], "ray_cpu": b[1] - a[1], "stack_cpu": b[2] - a[2]}
    return {"variant": variant, "phases": phases, "kinds": sampler.by_kind(), "result_in_log": "result 12" in driver_log}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of each variant (alternating)")
    parser.add_argument("--variants", default="baseline,light-cold,light")
    parser.add_argument("--kinds", action="store_true", help="print CPU seconds per process kind")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    variants = args.variants.split(",")
    results: list[dict] = []
    caches: list[tempfile.TemporaryDirectory] = []
    for run in range(args.runs):
        for variant in variants:
            env = {**os.environ, **VARIANTS[variant]}
            if variant == "light-cold":  # an empty bytecode cache: the first cluster on a machine
                caches.append(tempfile.TemporaryDirectory(prefix="bench-lightray-cache-"))
                env["XDG_CACHE_HOME"] = caches[-1].name
            elif variant in ("light", "cache-only") and caches:  # the cache the last light-cold run filled
                env["XDG_CACHE_HOME"] = caches[-1].name
            out = subprocess.run([sys.executable, __file__, "--child", variant], env=env, capture_output=True,
                                 text=True, check=False)
            if out.returncode:
                sys.stderr.write(out.stderr[-4000:])
                raise SystemExit(f"{variant} run {run + 1} failed")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"# {variant} run {run + 1}: total ray CPU {sum(p['ray_cpu'] for p in r['phases'].values()):.1f}s, "
                  f"wall {sum(p['wall'] for p in r['phases'].values()):.1f}s, driver output seen: {r['result_in_log']}",
                  file=sys.stderr)
    print(f"\n{'variant':<10} {'phase':<9} {'wall s':>7} {'ray CPU s':>10} {'stack CPU s':>12}   (mean of {args.runs})")
    means: dict[str, float] = {}
    for variant in variants:
        runs = [r for r in results if r["variant"] == variant]
        for phase in (*PHASES, "total"):
            keys = PHASES if phase == "total" else (phase,)
            vals = [tuple(sum(r["phases"][k][m] for k in keys) for m in ("wall", "ray_cpu", "stack_cpu")) for r in runs]
            wall, ray_cpu, stack_cpu = (sum(v[i] for v in vals) / len(vals) for i in range(3))
            print(f"{variant:<10} {phase:<9} {wall:7.1f} {ray_cpu:10.1f} {stack_cpu:12.1f}")
            if phase == "total":
                means[variant] = ray_cpu
    for variant in ("light-cold", "light"):
        if "baseline" in means and variant in means:
            print(f"ray CPU per cluster lifecycle: {variant} {means[variant]:.1f}s vs baseline {means['baseline']:.1f}s "
                  f"({100 * (1 - means[variant] / means['baseline']):.0f}% less)")
    if args.kinds:
        print(f"\n{'variant':<10} {'process kind':<20} {'procs':>6} {'CPU s':>7}   (mean per run)")
        for variant in variants:
            runs = [r for r in results if r["variant"] == variant]
            kinds = sorted({k for r in runs for k in r["kinds"]})
            rows = [(k, sum(r["kinds"].get(k, (0, 0))[0] for r in runs) / len(runs),
                     sum(r["kinds"].get(k, (0, 0))[1] for r in runs) / len(runs)) for k in kinds]
            for kind, procs, cpu in sorted(rows, key=lambda row: -row[2]):
                print(f"{variant:<10} {kind:<20} {procs:6.1f} {cpu:7.2f}")


if __name__ == "__main__":
    main()
