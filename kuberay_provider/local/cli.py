"""``kuberay-local``: run the local Kubernetes API server + KubeRay controller as a background daemon.

    kuberay-local up [--dir DIR] [--requeue-seconds S] [--max-clusters N] [--max-worker-nodes N] [--port P]
                     [--spark/--no-spark]
    kuberay-local status [--dir DIR]
    kuberay-local down [--dir DIR] [--timeout S]

``up`` writes DIR/kubeconfig and DIR/env (``source DIR/env``), logs to DIR/kuberay-local.log, the pid to
DIR/kuberay-local.pid. ``down`` sends SIGTERM (the daemon stops every Ray cluster, then exits), then SIGKILL after
the timeout, and checks that no process of the daemon is left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
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

DEFAULT_DIR = ".kuberay-local"
PID_FILE = "kuberay-local.pid"
LOG_FILE = "kuberay-local.log"
URL_FILE = "api-url"


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


def _int_at_least(name: str, low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {text!r}")
        return value

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
        p.add_argument("--port", type=_int_at_least("--port", 0), default=0, help="API port (default: any free)")
        p.add_argument("--spark", action=argparse.BooleanOptionalAction, default=True,
                       help="run the local spark-operator double for SparkApplications (default: on)")
    up.add_argument("--timeout", type=_positive_float("--timeout"), default=60.0, help="seconds to wait for the API")
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
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _api_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _env_lines(stack_env: dict[str, str]) -> str:
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
    argv = [sys.executable, "-m", "kuberay_provider.local.cli", "serve", "--dir", str(state),
            "--requeue-seconds", str(args.requeue_seconds), "--max-clusters", str(args.max_clusters),
            "--max-worker-nodes", str(args.max_worker_nodes), "--port", str(args.port),
            "--spark" if args.spark else "--no-spark"]
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
                       max_worker_nodes=args.max_worker_nodes, port=args.port, spark=args.spark).start()
    (state / "env").write_text(_env_lines(stack.env))
    (state / URL_FILE).write_text(stack.api_url + "\n")
    logging.info("API at %s, kubeconfig %s", stack.api_url, stack.kubeconfig_path)
    stop.wait()
    logging.info("stopping")
    stack.stop()
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
    return 0 if running and answers else 1


def cmd_down(args: argparse.Namespace) -> int:
    """SIGTERM the daemon, wait, SIGKILL after the timeout, verify nothing of it is left."""
    state: Path = args.dir.resolve()
    pid = _read_pid(state)
    if not _alive(pid):
        print("kuberay-local is not running")
        (state / PID_FILE).unlink(missing_ok=True)
        return 0
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
    left = [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    (state / PID_FILE).unlink(missing_ok=True)
    if left:
        print(f"processes still running: {left}", file=sys.stderr)
        return 1
    print("kuberay-local stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kuberay-local`` console script."""
    args = build_parser().parse_args(argv)
    handlers = {"up": cmd_up, "serve": cmd_serve, "status": cmd_status, "down": cmd_down}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
