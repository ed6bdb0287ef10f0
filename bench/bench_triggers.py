"""N RayJob triggers in one event loop against the emulated Kubernetes API in another process (no Ray).

For each design and N, a fresh child process runs N ``RayJobTrigger`` waits in one asyncio loop (what a triggerer
does), the API server runs in its own process (seeded with N running RayJobs and, with logs, N running submitter
pods whose log has a few lines), and a third process drives the RayJobs' statuses through the API (HTTP status
PATCHes; the submitter pod finishes first, as in KubeRay) in waves. Every 10th RayJob fails (the failure path:
its log tail; diagnostics are read by the resumed task, not here).

Designs: ``shared`` is the product (one client per connection, one RayJob watch and one submitter-pod watch per
namespace, bounded log follows); ``baseline`` is the one-watch-per-trigger design the provider had before
(a client per API call, a field-selector watch per trigger and, with logs, a pod lookup every 2 s plus a follow
per trigger), re-created here from the hook's per-object wait.

Printed per run: RSS and RSS per trigger, open connections to the API, API requests/s while waiting, CPU seconds per
minute of waiting, loop lag p50/p99/max (steady, during waves), reaction latency (status write → TriggerEvent)
p50/p99/max, events received vs expected (each exactly once, with the expected outcome). Printed to stderr after each
run: how long the waves took, CPU milliseconds per job during the waves (triggers' process and API server), the machine's
load, GC-tracked objects before the triggers and while they wait, and the API requests of the whole run by kind.

Diagnosis: ``BENCH_PROFILE=<dir>`` writes cProfile files of the API server and the triggers' process;
``BENCH_STALL_TRACE=1`` prints where the triggers' loop stalls for > 100 ms, GC collections over 50 ms and the
GC-tracked objects per trigger by type.

Usage::

    .venv/bin/python bench/bench_triggers.py                       # N = 100, 1000, 10000; baseline up to 1000
    .venv/bin/python bench/bench_triggers.py --n 100 --wait 10     # a quick run
    .venv/bin/python bench/bench_triggers.py --n 1000 --designs shared --no-logs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAMESPACE = "bench"
ROOT = Path(__file__).resolve().parent.parent


def _time_gc(what: str) -> None:
    """With ``BENCH_STALL_TRACE``: print every garbage collection of this process that takes over 50 ms."""
    if not os.environ.get("BENCH_STALL_TRACE"):
        return
    import gc

    started = [0.0]

    def timer(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (took := time.perf_counter() - started[0]) > 0.05:
            print(f"{what}: GC generation {info['generation']} took {took * 1000:.0f} ms ({info['collected']} collected)",
                  file=sys.stderr, flush=True)

    gc.callbacks.append(timer)


@contextlib.contextmanager
def _profiled(what: str) -> Any:
    """With ``BENCH_PROFILE=<dir>``: cProfile the block into ``<dir>/<what>.prof`` (also when ended by SIGTERM)."""
    target = os.environ.get("BENCH_PROFILE")
    if not target:
        yield
        return
    import cProfile
    import signal

    profile = cProfile.Profile()

    def dump(*_: Any) -> None:
        profile.disable()
        Path(target).mkdir(parents=True, exist_ok=True)
        profile.dump_stats(str(Path(target) / f"{what}.prof"))

    def on_term(*_: Any) -> None:
        dump()
        os._exit(0)

    previous = signal.signal(signal.SIGTERM, on_term)
    profile.enable()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        dump()


def _request_kind(record: Any) -> str:
    """``GET pods log``, ``LIST rayjobs``, ``WATCH pods``, ``PATCH rayjobs status`` ...: what a request was."""
    parts = [p for p in record.path.split("/") if p]
    parts = parts[parts.index("namespaces") + 2:] if "namespaces" in parts else parts[-1:]
    plural, rest = (parts[0] if parts else "?"), parts[1:]
    verb = record.method
    if verb == "GET" and not rest:
        verb = "WATCH" if record.is_watch else "LIST"
    return " ".join([verb, plural, *rest[1:]])


# ------------------------------------------------------------------------------------------------ the API process
def serve(args: argparse.Namespace) -> None:
    """The emulated API server, seeded with N running RayJobs (and submitter pods with logs)."""
    from aiohttp import web

    from kuberay_provider.local.apiserver import KubeAPIServer, now_iso
    from kuberay_provider.local.resources import BY_PATH

    rayjobs, pods = BY_PATH[("ray.io", "v1", "rayjobs")], BY_PATH[("", "v1", "pods")]
    server = KubeAPIServer()
    logs = Path(args.dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        name = f"bench-{i:05d}"
        server.store.commit(rayjobs.storage_key, "ADDED", {
            "apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"u{i}", "creationTimestamp": now_iso(),
                         "generation": 1, "labels": {"app.kubernetes.io/managed-by": "airflow-provider-kuberay"}},
            "spec": {"entrypoint": "python train.py", "shutdownAfterJobFinishes": True,
                     "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {
                         "containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}}}},
            "status": {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "jobId": f"{name}-id",
                       "rayClusterName": f"{name}-raycluster", "startTime": now_iso()}})
        if args.logs:
            pod = f"{name}-abcde"
            path = logs / f"{pod}.log"
            path.write_text("".join(f"{name} driver line {k}\n" for k in range(3)))
            server.register_log(NAMESPACE, pod, "ray-job-submitter", path)
            server.store.commit(pods.storage_key, "ADDED", {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": NAMESPACE, "uid": f"p{i}", "creationTimestamp": now_iso(),
                             "labels": {"batch.kubernetes.io/job-name": name, "job-name": name}},
                "spec": {"containers": [{"name": "ray-job-submitter", "image": "rayproject/ray:2.60.0"}]},
                "status": {"phase": "Running", "containerStatuses": [
                    {"name": "ray-job-submitter", "state": {"running": {"startedAt": now_iso()}}}]}})

    writes: dict[str, float] = {}

    # Warm the emulator's admission (it loads KubeRay's CRD schema on first use) so the first wave does not pay it.
    server.create(rayjobs, "warmup", {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "warmup"},
                                      "spec": {"entrypoint": "true", "rayClusterSpec": {"headGroupSpec": {
                                          "rayStartParams": {}, "template": {"spec": {"containers": [
                                              {"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}}}}})

    @web.middleware
    async def stats(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/_bench/writes":
            return web.json_response(writes)
        if request.method == "PATCH" and "/rayjobs/" in request.path and request.path.endswith("/status"):
            response = await handler(request)
            writes[request.path.rsplit("/", 2)[1]] = time.time()  # committed: watchers were notified
            return response
        if request.path == "/_bench/stats":
            records = [r for r in server.requests if not r.path.startswith("/_bench")]
            open_watches: dict[str, int] = {}
            for w in server.store.watchers:
                if w.external:
                    open_watches[w.storage[1]] = open_watches.get(w.storage[1], 0) + 1
            kinds: dict[str, int] = {}
            for r in records:
                kind = _request_kind(r)
                kinds[kind] = kinds.get(kind, 0) + 1
            return web.json_response({"requests": len(records), "watches": sum(1 for r in records if r.is_watch),
                                      "open_watches": open_watches, "by_kind": kinds})
        return await handler(request)

    server.app.middlewares.append(stats)
    # The emulated API stands in for kube-apiserver (Go): its seeded objects (N RayJobs, N pods) need no cyclic GC,
    # and full collections over them would stall every request and watch of the run for seconds.
    import gc

    gc.collect()
    gc.freeze()
    _time_gc("API server")

    async def main() -> None:
        url = await server.start()
        Path(args.url_file).write_text(url)
        await asyncio.Event().wait()

    with _profiled("apiserver"):
        asyncio.run(main())


# ------------------------------------------------------------------------------------------------ the driver process
def drive(args: argparse.Namespace) -> None:
    """PATCH statuses in waves (the API process records when each RayJob status write was committed)."""
    import aiohttp

    names = [f"bench-{i:05d}" for i in range(args.n)]
    waves = [names[k::args.waves] for k in range(args.waves)]

    async def main() -> list[dict[str, float]]:
        out = []
        headers = {"Content-Type": "application/merge-patch+json"}
        connector = aiohttp.TCPConnector(limit=args.writers)
        async with aiohttp.ClientSession(args.url, connector=connector, headers=headers) as session:
            sem = asyncio.Semaphore(args.writers)

            async def finish(name: str) -> None:
                i = int(name.split("-")[1])
                failed = i % 10 == 9
                async with sem:
                    if args.logs:
                        state = {"terminated": {"exitCode": 1 if failed else 0,
                                                "reason": "Error" if failed else "Completed"}}
                        body = {"status": {"phase": "Failed" if failed else "Succeeded",
                                           "containerStatuses": [{"name": "ray-job-submitter", "state": state}]}}
                        async with session.patch(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}-abcde/status",
                                                 data=json.dumps(body)) as r:
                            r.raise_for_status()
                    status = {"jobDeploymentStatus": "Failed" if failed else "Complete",
                              "jobStatus": "FAILED" if failed else "SUCCEEDED",
                              "reason": "AppFailed" if failed else None}
                    async with session.patch(f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayjobs/{name}/status",
                                             data=json.dumps({"status": status})) as r:
                        r.raise_for_status()

            for wave in waves:
                start = time.time()
                await asyncio.gather(*(finish(n) for n in wave))
                out.append({"start": start, "end": time.time(), "size": len(wave)})
                await asyncio.sleep(args.wave_gap)
        return out

    print(json.dumps(asyncio.run(main())))


# ------------------------------------------------------------------------------------------------ the triggers
def _baseline_trigger_class() -> Any:
    """Today's-before design: one client per API call, one watch and (logs) one 2 s pod poller + follow per trigger."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
    from airflow.triggers.base import TriggerEvent

    from kuberay_provider.hooks.kuberay import USER_AGENT, AsyncKubeRayHook
    from kuberay_provider.hooks.pods import LogTail
    from kuberay_provider.hooks.watching import RayJobWaiter
    from kuberay_provider.outcome import outcome_event
    from kuberay_provider.triggers.rayjob import LOG_DRAIN_SECONDS, RayJobTrigger

    class PerCallHook(AsyncKubeRayHook):
        @contextlib.asynccontextmanager
        async def get_conn(self) -> Any:  # the cncf hook's client per call (kubeconfig + TLS on the loop)
            async with AsyncKubernetesHook.get_conn(self) as api:
                api.user_agent = USER_AGENT
                yield api

    class BaselineTrigger(RayJobTrigger):
        async def run(self) -> Any:
            hook = PerCallHook(kubernetes_conn_id=self.kubernetes_conn_id)
            waiter = RayJobWaiter(self.name, self.namespace, watch_jitter=0.0)
            tail = LogTail(self.log_tail_lines)
            stop = asyncio.Event()
            log_task = None
            if self.stream_logs:
                log_task = asyncio.create_task(
                    hook.stream_driver_log(self.name, self.namespace, tail, self._emit_driver_line, stop))
            async for status in hook.watch_rayjob(self.name, self.namespace, waiter=waiter):
                self._on_status(status)
            outcome = waiter.next_action()
            stop.set()
            if log_task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(log_task), timeout=LOG_DRAIN_SECONDS)
                except (TimeoutError, Exception):
                    log_task.cancel()
            # (no diagnostics in either design: a failure is diagnosed where the task resumes, in the worker)
            yield TriggerEvent({**outcome_event(outcome, self.name, self.namespace, log_tail=tail.lines),
                                "name": self.name, "namespace": self.namespace})

    return BaselineTrigger


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    ordered = sorted(values)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), p(0.99), ordered[-1]


def child(args: argparse.Namespace) -> None:
    """One design at one N: start the API process, run the triggers, drive the waves, print one JSON result."""
    import logging


    tmp = Path(tempfile.mkdtemp(prefix="bench-triggers-"))
    url_file = tmp / "url"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    common = ["--n", str(args.n), "--dir", str(tmp)] + (["--logs"] if args.logs else ["--no-logs"])
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--url-file", str(url_file), *common], env=env)
    try:
        deadline = time.time() + 600
        while not url_file.exists():
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("the API process did not start")
            time.sleep(0.2)
        url = url_file.read_text()
        import yaml

        from kuberay_provider.local.stack import kubeconfig

        (tmp / "kubeconfig").write_text(yaml.safe_dump(kubeconfig(url)))
        os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(tmp / "kubeconfig"), "namespace": NAMESPACE}})
        os.environ["KUBECONFIG"] = str(tmp / "kubeconfig")
        with _profiled(f"triggers-{args.design}-{args.n}"):
            result = asyncio.run(_run_triggers(args, url, common, env, server.pid))
        print("RESULT " + json.dumps(result), flush=True)
    finally:
        server.terminate()
        server.wait(30)
        logging.shutdown()


async def _run_triggers(args: argparse.Namespace, url: str, common: list[str], env: dict[str, str],
                        server_pid: int) -> dict[str, Any]:
    import logging

    import aiohttp
    import psutil

    from kuberay_provider.triggers.rayjob import RayJobTrigger

    # Status and driver lines are not written anywhere (both designs): what a record costs depends on the triggerer's
    # log pipeline, not on the design. Airflow 3's trigger loggers are structlog's (the root logger's level does not
    # filter them; its console renderer costs ~1 ms a record), so their level is set there too.
    logging.getLogger().setLevel(logging.WARNING)
    with contextlib.suppress(ImportError):
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    proc = psutil.Process()
    port = int(url.rsplit(":", 1)[1])
    cls = _baseline_trigger_class() if args.design == "baseline" else RayJobTrigger
    first_status: dict[str, float] = {}
    events: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    lags: list[tuple[float, float]] = []

    class Measured(cls):  # type: ignore[misc, valid-type]
        def _on_status(self, status: Any) -> None:
            first_status.setdefault(self.name, time.time())

    beat = [time.monotonic()]

    async def sample_lag() -> None:
        interval = 0.01
        while True:
            before = time.perf_counter()
            await asyncio.sleep(interval)
            beat[0] = time.monotonic()
            lags.append((time.time(), time.perf_counter() - before - interval))

    if os.environ.get("BENCH_STALL_TRACE"):  # a watchdog thread prints where the loop is stuck for > 100 ms
        import threading
        import traceback

        loop_thread = threading.get_ident()

        def watchdog() -> None:
            reported = 0.0
            while True:
                time.sleep(0.05)
                if time.monotonic() - beat[0] > 0.1 and beat[0] != reported:
                    reported = beat[0]
                    frame = sys._current_frames().get(loop_thread)
                    print("STALL\n" + "".join(traceback.format_stack(frame)[-4:]), file=sys.stderr, flush=True)

        threading.Thread(target=watchdog, daemon=True).start()
        _time_gc("triggers")

    async def run_one(name: str) -> None:
        trigger = Measured(name, NAMESPACE, stream_logs=args.logs)
        async for event in trigger.run():
            events.setdefault(name, []).append((time.time(), event.payload))

    async def api_stats(session: aiohttp.ClientSession) -> dict[str, int]:
        async with session.get(f"{url}/_bench/stats") as r:
            return await r.json()

    def api_connections() -> int:
        return sum(1 for c in proc.net_connections(kind="tcp")
                   if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)

    received_at: dict[str, float] = {}  # when the shared watch delivered a RayJob's terminal status (shared only)
    # (the emulated server and the transport's share of the reaction time)
    from kuberay_provider.hooks import informer as informer_mod

    original_apply = informer_mod.Informer._apply

    def apply(self: Any, event: Any) -> None:
        if self.kind.plural == "rayjobs" and (event.object.get("status") or {}).get("jobDeploymentStatus") in (
                "Complete", "Failed"):
            received_at.setdefault(event.object["metadata"]["name"], time.time())
        original_apply(self, event)

    informer_mod.Informer._apply = apply
    call_times: dict[str, list[float]] = {}
    if os.environ.get("BENCH_CALL_TIMES"):  # how long each hook call of the waits took (queueing included)
        from kuberay_provider.hooks.kuberay import AsyncKubeRayHook
        from kuberay_provider.triggers.waits import DriverLog

        def timed(cls: type, method: str) -> None:
            original = getattr(cls, method)

            async def measured(self: Any, *a: Any, **kw: Any) -> Any:
                began = time.perf_counter()
                try:
                    return await original(self, *a, **kw)
                finally:
                    call_times.setdefault(f"{cls.__name__}.{method}", []).append(time.perf_counter() - began)

            setattr(cls, method, measured)

        for method in ("list_pods", "read_pod_log", "get_rayjob", "read_driver_log_tail"):
            timed(AsyncKubeRayHook, method)
        timed(DriverLog, "finish")
    names = [f"bench-{i:05d}" for i in range(args.n)]
    lag_task = asyncio.create_task(sample_lag())
    rss_before = proc.memory_info().rss
    import gc

    gc_before = len(gc.get_objects())
    if os.environ.get("BENCH_STALL_TRACE"):
        from collections import Counter

        types_before = Counter(type(o).__qualname__ for o in gc.get_objects())
    async with aiohttp.ClientSession() as stats_session:
        started = time.time()
        tasks = [asyncio.create_task(run_one(n)) for n in names]
        while len(first_status) < len(names) and time.time() - started < args.startup_timeout:
            await asyncio.sleep(0.2)
        startup = time.time() - started
        if args.gc_freeze:  # attribution only: what the loop does without full collections over the started waits
            import gc

            gc.freeze()
        await asyncio.sleep(2)  # settle
        steady_from = time.time()
        cpu0, req0 = sum(proc.cpu_times()[:2]), (await api_stats(stats_session))["requests"]
        await asyncio.sleep(args.wait)
        stats = await api_stats(stats_session)
        cpu1, req1 = sum(proc.cpu_times()[:2]), stats["requests"]
        steady_to = time.time()
        rss_steady = proc.memory_info().rss
        gc_steady = len(gc.get_objects())
        if os.environ.get("BENCH_STALL_TRACE"):
            grown = Counter(type(o).__qualname__ for o in gc.get_objects())
            grown.subtract(types_before)
            print("GC-tracked objects per trigger: " + ", ".join(
                f"{k} {v / args.n:.1f}" for k, v in grown.most_common(25)), file=sys.stderr, flush=True)
        connections = api_connections()
        api_proc = psutil.Process(server_pid)
        cpu_waves0, api_cpu_waves0 = sum(proc.cpu_times()[:2]), sum(api_proc.cpu_times()[:2])
        driver = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--drive", "--url", url, "--waves", str(args.waves),
            "--wave-gap", str(args.wave_gap), "--writers", str(args.writers), *common, stdout=asyncio.subprocess.PIPE, env=env)
        out, _ = await driver.communicate()
        waves = json.loads(out)
        waves_from = waves[0]["start"]
        give_up = time.time() + args.event_timeout
        while sum(len(v) for v in events.values()) < len(names) and time.time() < give_up:
            await asyncio.sleep(0.2)
        late_to = time.time()
        cpu_waves, api_cpu_waves = sum(proc.cpu_times()[:2]) - cpu_waves0, sum(api_proc.cpu_times()[:2]) - api_cpu_waves0
        load = os.getloadavg()[0]
        await asyncio.sleep(1)  # anything delivered twice would show now
        rss_end = proc.memory_info().rss
        async with stats_session.get(f"{url}/_bench/writes") as r:
            writes = await r.json()
        final_stats = await api_stats(stats_session)
    for method, times in sorted(call_times.items()):
        print(f"CALLS {method}: {len(times)} calls, ms p50/p99/max {_ms(list(_percentiles(times)))}", file=sys.stderr, flush=True)
    for t in tasks:
        t.cancel()
    lag_task.cancel()
    await asyncio.gather(*tasks, lag_task, return_exceptions=True)

    reactions, wrong, by_outcome = [], 0, {"success": [], "failed": []}
    delivery = [received_at[n] - writes[n] for n in received_at if n in writes]
    for name, got in events.items():
        i = int(name.split("-")[1])
        expected = "failed" if i % 10 == 9 else "success"
        at, payload = got[0]
        if payload.get("status") != expected or payload.get("name") != name:
            wrong += 1
        if name in writes:
            reactions.append(at - writes[name])
            by_outcome[expected].append(at - writes[name])
    steady = [v for t, v in lags if steady_from <= t <= steady_to]
    during = [v for t, v in lags if waves_from <= t <= late_to]
    start_lag = [v for t, v in lags if started <= t <= steady_from]
    received = sum(len(v) for v in events.values())
    return {
        "design": args.design, "n": args.n, "logs": args.logs,
        "rss_mb": rss_steady / 2**20, "rss_end_mb": rss_end / 2**20,
        "rss_per_trigger_kb": (rss_steady - rss_before) / max(1, args.n) / 1024,
        "startup_s": startup, "started": len(first_status), "connections": connections - 1,  # minus the stats one
        "open_watches": stats["open_watches"], "requests_by_kind": final_stats["by_kind"],
        "requests_per_s": (req1 - req0) / (steady_to - steady_from),
        "cpu_s_per_min": (cpu1 - cpu0) / (steady_to - steady_from) * 60,
        "cpu_ms_per_job_waves": cpu_waves / args.n * 1000, "api_cpu_ms_per_job_waves": api_cpu_waves / args.n * 1000,
        "waves_s": late_to - waves_from, "gc_objects_before": gc_before, "gc_objects_steady": gc_steady, "load_1min": load,
        "lag_start": _percentiles(start_lag), "lag_steady": _percentiles(steady), "lag_waves": _percentiles(during),
        "reaction": _percentiles(reactions), "reaction_success": _percentiles(by_outcome["success"]),
        "reaction_failed": _percentiles(by_outcome["failed"]), "delivery": _percentiles(delivery),
        "received": received, "expected": len(names),
        "exactly_once": sum(1 for v in events.values() if len(v) == 1), "wrong": wrong,
    }


# ------------------------------------------------------------------------------------------------ the table
def _ms(triple: list[float]) -> str:
    return "/".join(f"{v * 1000:.0f}" if v == v else "-" for v in triple)


def _watches(r: dict[str, Any]) -> str:
    return " + ".join(f"{v:,} {k}" for k, v in sorted(r["open_watches"].items())) or "0"


def table(results: list[dict[str, Any]]) -> str:
    head = ("| design | N | logs | RSS MB | per trigger KB | startup s | API conns | open watches | req/s waiting "
            "| CPU s/min waiting | lag ms p50/p99/max steady | lag ms p50/p99/max waves | reaction ms p50/p99/max "
            "| of which watch delivery ms p50/p99/max | events (exactly once) |")
    rows = [head, "|" + "|".join(["---"] * 15) + "|"]
    for r in results:
        rows.append(
            f"| {r['design']} | {r['n']:,} | {'on' if r['logs'] else 'off'} | {r['rss_mb']:.0f} | "
            f"{r['rss_per_trigger_kb']:.1f} | {r['startup_s']:.1f} | {r['connections']} | {_watches(r)} | "
            f"{r['requests_per_s']:.2f} | "
            f"{r['cpu_s_per_min']:.2f} | {_ms(r['lag_steady'])} | {_ms(r['lag_waves'])} | {_ms(r['reaction'])} | "
            f"{_ms(r['delivery'])} | "
            f"{r['received']:,}/{r['expected']:,} ({r['exactly_once']:,}{', wrong ' + str(r['wrong']) if r['wrong'] else ''}) |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="100,1000,10000", help="comma-separated trigger counts")
    parser.add_argument("--designs", default="shared,baseline", help="shared and/or baseline")
    parser.add_argument("--baseline-max", type=int, default=1000, help="skip the baseline above this N")
    parser.add_argument("--logs", dest="logs", action="store_true", default=True, help="stream_logs=True (default)")
    parser.add_argument("--no-logs", dest="logs", action="store_false")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds of plain waiting measured")
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--wave-gap", type=float, default=3.0)
    parser.add_argument("--writers", type=int, default=8, help="concurrent status writes of the driver")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument("--event-timeout", type=float, default=300.0)
    parser.add_argument("--gc-freeze", action="store_true",
                        help="attribution experiment: gc.freeze() in the triggers' process once all waits started")
    parser.add_argument("--design", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--url-file", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve or args.drive or args.child:
        args.n = int(args.n)
        {"serve": serve, "drive": drive, "child": child}["serve" if args.serve else "drive" if args.drive else "child"](args)
        return
    results, skipped = [], []
    for n in (int(x) for x in args.n.split(",")):
        for design in args.designs.split(","):
            if design == "baseline" and n > args.baseline_max:
                skipped.append(f"baseline at N={n:,} skipped (--baseline-max {args.baseline_max})")
                continue
            cmd = [sys.executable, __file__, "--child", "--design", design, "--n", str(n), "--wait", str(args.wait),
                   "--waves", str(args.waves), "--wave-gap", str(args.wave_gap), "--writers", str(args.writers),
                   "--startup-timeout", str(args.startup_timeout), "--event-timeout", str(args.event_timeout),
                   "--logs" if args.logs else "--no-logs", *(["--gc-freeze"] if args.gc_freeze else [])]
            print(f"running {design} N={n} ...", file=sys.stderr, flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if not lines:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{design} N={n} failed")
            results.append(json.loads(lines[-1][len("RESULT "):]))
            if os.environ.get("BENCH_STALL_TRACE"):
                print(proc.stderr[-20000:], file=sys.stderr)
            for line in proc.stderr.splitlines():
                if line.startswith("CALLS "):
                    print("  " + line, file=sys.stderr)
            print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
            kinds = sorted(results[-1]["requests_by_kind"].items(), key=lambda kv: -kv[1])
            r = results[-1]
            print(f"  waves took {r['waves_s']:.1f} s; CPU ms per job during the waves: triggers "
                  f"{r['cpu_ms_per_job_waves']:.2f}, API server {r['api_cpu_ms_per_job_waves']:.2f}; "
                  f"machine load (1 min) {r['load_1min']:.1f}; GC-tracked objects {r['gc_objects_before']:,} before the "
                  f"triggers, {r['gc_objects_steady']:,} while waiting", file=sys.stderr, flush=True)
            print(f"  reaction ms p50/p99/max of the successes {_ms(r['reaction_success'])}, of the failures "
                  f"{_ms(r['reaction_failed'])}", file=sys.stderr, flush=True)
            print("  requests in the whole run: " + ", ".join(f"{k} {v:,}" for k, v in kinds), file=sys.stderr, flush=True)
    print(table(results))
    for note in skipped:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
