"""``kuberay-local``: run the local Kubernetes API server + KubeRay controller as a background daemon.

    kuberay-local up [--dir DIR] [--requeue-seconds S] [--max-clusters N] [--max-worker-nodes N] [--port P]
                     [--spark/--no-spark] [--bigquery/--no-bigquery] [--bigquery-project ID] [--timeout S]
    kuberay-local status [--dir DIR]
    kuberay-local down [--dir DIR] [--timeout S]

``up`` writes DIR/kubeconfig and DIR/env (``source DIR/env``), logs to DIR/kuberay-local.log, the pid to
DIR/kuberay-local.pid. With ``--bigquery`` (the default) it also runs the BigQuery emulator (state under
DIR/bigquery, its pid and endpoints in DIR/bigquery.json) and DIR/env carries its endpoints as ``KUBERAY_BQ_*``
and as the Airflow Variables of ``dags/ray_retraining.py`` (``AIRFLOW_VAR_KUBERAY_BQ_*``). ``down`` sends SIGTERM
(the daemon stops every Ray cluster and the emulator, then exits), then SIGKILL after the timeout, and checks by
PID that no process of the daemon (the emulator included) is left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from kuberay_provider.local.net import http_ok

DEFAULT_DIR = ".kuberay-local"
PID_FILE = "kuberay-local.pid"
LOG_FILE = "kuberay-local.log"
URL_FILE = "api-url"
BIGQUERY_FILE = "bigquery.json"


def _positive_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text!r}")
        return value

    return parse


def _int_at_least(name: str, low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{name} must be <= {high}, got {text!r}")
        return value

    return parse


def _project(name: str):
    def parse(text: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", text):
            raise argparse.ArgumentTypeError(
                f"{name} must be a project id (6-30 lower-case letters, digits or '-', starting with a letter), got {text!r}"
            )
        return text

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kuberay-local``."""
    parser = argparse.ArgumentParser(prog="kuberay-local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack in the background")
    status = sub.add_parser("status", help="show whether the stack runs and what it runs")
    down = sub.add_parser("down", help="stop the stack and every Ray cluster it started")
    serve = sub.add_parser("serve", help=argparse.SUPPRESS)  # the daemon itself (foreground)
    for p in (up, status, down, serve):
        p.add_argument("--dir", type=Path, default=Path(DEFAULT_DIR), help=f"state directory (default {DEFAULT_DIR})")
    for p in (up, serve):
        p.add_argument("--requeue-seconds", type=_positive_float("--requeue-seconds"), default=3.0)
        p.add_argument("--max-clusters", type=_int_at_least("--max-clusters", 1), default=1)
        p.add_argument("--max-worker-nodes", type=_int_at_least("--max-worker-nodes", 0), default=1)
        p.add_argument("--port", type=_int_at_least("--port", 0, 65535), default=0, help="API port (default: any free)")
        p.add_argument("--spark", action=argparse.BooleanOptionalAction, default=True,
                       help="run the local spark-operator double for SparkApplications (default: on)")
        p.add_argument("--bigquery", action=argparse.BooleanOptionalAction, default=True,
                       help="run the BigQuery emulator and write its endpoints into DIR/env (default: on)")
        p.add_argument("--bigquery-project", type=_project("--bigquery-project"), default="local-project",
                       help="the emulator's project (default local-project)")
        p.add_argument("--gke", action=argparse.BooleanOptionalAction, default=False,
                       help="GKE mode: the API over HTTPS with expiring Google tokens, a fake GKE API, and DIR/env "
                            "with a kuberay connection in GKE mode (default: off)")
        p.add_argument("--token-lifetime", type=_positive_float("--token-lifetime"), default=300.0,
                       help="GKE mode: seconds a Google access token lives (default 300)")
    up.add_argument("--timeout", type=_positive_float("--timeout"), default=120.0,
                    help="seconds to wait for the API and the emulator")
    down.add_argument("--timeout", type=_positive_float("--timeout"), default=60.0,
                      help="seconds to wait after SIGTERM before SIGKILL")
    return parser


def _read_pid(state: Path) -> int | None:
    try:
        return int((state / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return _alive_proc(psutil.Process(pid))
    except psutil.Error:
        return False


def _api_answers(url: str) -> bool:
    return http_ok(f"{url}/version")


def _bigquery_state(state: Path) -> dict | None:
    """DIR/bigquery.json as the daemon wrote it, or None (no emulator, or not started yet)."""
    try:
        return json.loads((state / BIGQUERY_FILE).read_text())
    except (OSError, ValueError):
        return None


def _emulator_process(info: dict | None) -> psutil.Process | None:
    """The emulator's live process named in ``info`` (None if gone, a zombie, or the PID now runs something else)."""
    if not info or not isinstance(info.get("pid"), int):
        return None
    try:
        proc = psutil.Process(info["pid"])
        if proc.status() == psutil.STATUS_ZOMBIE or "bqemulator" not in " ".join(proc.cmdline()):
            return None
        return proc
    except psutil.Error:
        return None


def _stop_emulator(proc: psutil.Process, timeout: float) -> bool:
    """SIGTERM then SIGKILL the emulator's process group; True once it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            os.killpg(proc.pid, sig)
        _, alive = psutil.wait_procs([proc], timeout=timeout if sig == signal.SIGTERM else 5)
        if not alive:
            return True
    return False


def env_file_text(stack_env: dict[str, str]) -> str:
    """The DIR/env file: one `export KEY=VALUE` line per variable (values shell-quoted), for `source`."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in stack_env.items())


def cmd_up(args: argparse.Namespace) -> int:
    """Start the daemon detached, wait until the API answers, print the env lines."""
    state: Path = args.dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    if _alive(_read_pid(state)):
        print(f"kuberay-local already runs (pid {_read_pid(state)}); use 'kuberay-local down --dir {state}'",
              file=sys.stderr)
        return 1
    (state / URL_FILE).unlink(missing_ok=True)
    (state / BIGQUERY_FILE).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "kuberay_provider.local.cli", "serve", "--dir", str(state),
            "--requeue-seconds", str(args.requeue_seconds), "--max-clusters", str(args.max_clusters),
            "--max-worker-nodes", str(args.max_worker_nodes), "--port", str(args.port),
            "--spark" if args.spark else "--no-spark", "--bigquery" if args.bigquery else "--no-bigquery",
            "--bigquery-project", args.bigquery_project, "--gke" if args.gke else "--no-gke",
            "--token-lifetime", str(args.token_lifetime)]
    with (state / LOG_FILE).open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=state)
    (state / PID_FILE).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"kuberay-local exited with code {proc.returncode}; see {state / LOG_FILE}", file=sys.stderr)
            return 1
        url_file = state / URL_FILE
        if url_file.exists() and _api_answers(url_file.read_text().strip()):
            print(f"kuberay-local is up at {url_file.read_text().strip()} (pid {proc.pid})")
            bigquery = _bigquery_state(state)
            if bigquery is not None:
                print(f"bigquery emulator at {bigquery['rest_endpoint']} (REST), {bigquery['grpc_endpoint']} (gRPC), "
                      f"project {bigquery['project']} (pid {bigquery['pid']}, started in {bigquery['start_seconds']}s)")
            print(f"# source {state / 'env'}")
            print((state / "env").read_text(), end="")
            return 0
        time.sleep(0.2)
    print(f"kuberay-local did not answer within {args.timeout}s; see {state / LOG_FILE}", file=sys.stderr)
    return 1


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the stack in the foreground until SIGTERM/SIGINT."""
    from kuberay_provider.local.stack import LocalStack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state: Path = args.dir.resolve()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = LocalStack(state, requeue_seconds=args.requeue_seconds, max_clusters=args.max_clusters,
                       max_worker_nodes=args.max_worker_nodes, port=args.port, spark=args.spark,
                       bigquery=args.bigquery, bigquery_project=args.bigquery_project, gke=args.gke,
                       token_lifetime=args.token_lifetime).start()
    (state / "env").write_text(env_file_text(stack.env))
    emulator = stack.bigquery_emulator
    if emulator is not None:
        (state / BIGQUERY_FILE).write_text(json.dumps({
            "pid": emulator.pid, "project": emulator.project, "rest_endpoint": emulator.rest_endpoint,
            "grpc_endpoint": emulator.grpc_endpoint, "dir": str(emulator.base_dir), "log": str(emulator.log_path),
            "start_seconds": round(emulator.start_seconds or 0.0, 2),
        }, indent=2) + "\n")  # fmt: skip
    (state / URL_FILE).write_text(stack.api_url + "\n")  # last: `up` waits for this file
    logging.info("API at %s, kubeconfig %s", stack.api_url, stack.kubeconfig_path)
    stop.wait()
    logging.info("stopping")
    try:
        stack.stop()
    finally:
        (state / URL_FILE).unlink(missing_ok=True)
    logging.info("stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the daemon's state; exit 0 if it runs and answers."""
    state: Path = args.dir.resolve()
    pid = _read_pid(state)
    url_file = state / URL_FILE
    url = url_file.read_text().strip() if url_file.exists() else ""
    running, answers = _alive(pid), bool(url) and _api_answers(url)
    print(f"pid: {pid if pid else '-'} ({'running' if running else 'not running'})")
    print(f"api: {url or '-'} ({'answers' if answers else 'no answer'})")
    if answers:
        for plural, fields in (("rayjobs", ("jobDeploymentStatus", "jobStatus", "reason")), ("rayclusters", ("state",))):
            with urllib.request.urlopen(f"{url}/apis/ray.io/v1/{plural}", timeout=5) as resp:
                items = json.loads(resp.read())["items"]
            print(f"{plural}: {len(items)}")
            for item in items:
                status = item.get("status") or {}
                shown = " ".join(f"{f}={status[f]}" for f in fields if status.get(f))
                print(f"  {item['metadata']['namespace']}/{item['metadata']['name']} {shown}".rstrip())
    bigquery = _bigquery_state(state)
    bq_ok = True
    if bigquery is None:
        print("bigquery emulator: -")
    else:
        emulator = _emulator_process(bigquery)
        rest_ok = emulator is not None and http_ok(f"{bigquery['rest_endpoint']}/healthz")
        bq_ok = rest_ok
        print(f"bigquery emulator: pid {bigquery['pid']} ({'running' if emulator else 'not running'}) "
              f"project {bigquery['project']}")
        print(f"  rest: {bigquery['rest_endpoint']} ({'answers' if rest_ok else 'no answer'})")
        print(f"  grpc: {bigquery['grpc_endpoint']}")
        print(f"  data: {bigquery['dir']}")
    if running:
        heads = []
        for proc in psutil.Process(pid).children(recursive=True):
            try:
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            if "start" in cmdline and "--head" in cmdline:
                heads.append((proc.pid, next((c for c in cmdline if c.startswith("--temp-dir=")), "")))
        print(f"local ray clusters: {len(heads)}")
        for head_pid, temp_dir in heads:
            print(f"  head pid {head_pid} {temp_dir}")
    return 0 if running and answers and bq_ok else 1


def cmd_down(args: argparse.Namespace) -> int:
    """SIGTERM the daemon, wait, SIGKILL after the timeout, verify nothing of it is left."""
    state: Path = args.dir.resolve()
    pid = _read_pid(state)
    bigquery = _bigquery_state(state)
    if not _alive(pid):
        print("kuberay-local is not running")
        (state / PID_FILE).unlink(missing_ok=True)
        return _down_emulator(state, bigquery, args.timeout)
    assert pid is not None
    daemon = psutil.Process(pid)
    family = [daemon, *daemon.children(recursive=True)]
    os.kill(pid, signal.SIGTERM)
    _, alive = psutil.wait_procs([daemon], timeout=args.timeout)
    if alive:
        print(f"kuberay-local did not stop within {args.timeout}s; killing it", file=sys.stderr)
        with_children = [*alive, *[p for p in family if p.is_running()]]
        for proc in with_children:
            with contextlib.suppress(psutil.Error):
                proc.kill()
    left = [p.pid for p in family if _alive_proc(p)]
    (state / PID_FILE).unlink(missing_ok=True)
    emulator_rc = _down_emulator(state, bigquery, args.timeout)
    if left:
        print(f"processes still running: {left}", file=sys.stderr)
        return 1
    print("kuberay-local stopped")
    return emulator_rc


def _alive_proc(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _down_emulator(state: Path, info: dict | None, timeout: float) -> int:
    """Verify by PID that the emulator is gone (the daemon stops it); stop it if it outlived the daemon."""
    if info is None:
        return 0
    proc = _emulator_process(info)
    if proc is not None:
        print(f"bigquery emulator (pid {info['pid']}) outlived the daemon; stopping it", file=sys.stderr)
        if not _stop_emulator(proc, timeout):
            print(f"bigquery emulator still running: pid {info['pid']}", file=sys.stderr)
            return 1
    (state / BIGQUERY_FILE).unlink(missing_ok=True)
    print(f"bigquery emulator stopped (pid {info['pid']} gone)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kuberay-local`` console script."""
    args = build_parser().parse_args(argv)
    handlers = {"up": cmd_up, "serve": cmd_serve, "status": cmd_status, "down": cmd_down}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
