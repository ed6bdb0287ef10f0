"""List the processes a demo left behind; exit 1 if there are any.

A process belongs to the demo when its environment carries the demo's marker (``KUBERAY_DEMO_ID=<id>``, exported by
``scripts/demo.sh`` before it starts anything, so every Ray node, Spark JVM, emulator and daemon inherits it). The
checker itself and its ancestors (the demo shell) are not counted. Processes of other users or sessions that merely
match ``raylet|gcs_server|bqemulator|java`` are listed separately as information and never fail the check.

    python scripts/demo_leftovers.py --marker KUBERAY_DEMO_ID=kuberay-demo.abc123
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import psutil

PATTERN = re.compile(r"raylet|gcs_server|bqemulator|java|spark-submit|ray start|kuberay_provider\.local\.cli")


def _ancestors() -> set[int]:
    pids, proc = set(), psutil.Process(os.getpid())
    while proc is not None:
        pids.add(proc.pid)
        proc = proc.parent()
    return pids


def scan(key: str, value: str) -> tuple[list[str], list[str]]:
    """``(demo processes, other matching processes)`` as ``"<pid> <command line>"``."""
    skip = _ancestors()
    ours, others = [], []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["pid"] in skip or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        try:
            marked = proc.environ().get(key) == value
        except psutil.Error:
            marked = False
        line = f"{proc.info['pid']} {cmdline[:150]}"
        if marked:
            ours.append(line)
        elif PATTERN.search(cmdline):
            others.append(line)
    return ours, others


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: prints the demo's leftovers; 0 if none."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--marker", required=True, help="KEY=VALUE in the environment of the demo's processes")
    args = parser.parse_args(argv)
    key, sep, value = args.marker.partition("=")
    if not sep or not key or not value:
        parser.error(f"--marker={args.marker!r}: expected KEY=VALUE")
    ours, others = scan(key, value)
    if others:
        print(f"  (not the demo's: {len(others)} other Ray/Java/emulator processes on this machine)")
    if ours:
        print(f"  processes left by the demo: {len(ours)}")
        for line in ours:
            print(f"    {line}")
        return 1
    print("  processes left by the demo (Ray, Java/Spark, BigQuery emulator, daemon): 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
