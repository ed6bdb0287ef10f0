"""The demo's time per stage: ``scripts/demo.sh`` (dags/ray_retraining.py end to end), against a same-run baseline.

Runs, in one go on the same machine:

* BASELINE: ``scripts/demo.sh example_kuberay_rayjob``: one trivial RayJob (``hello_ray``) on a transient local
  Ray cluster plus its teardown confirmation: the fixed cost of "a RayJob task" on the local stack.
* the retraining demo: ``scripts/demo.sh`` (``DEMO_ROWS`` raw events, default 300000): stack up, seed, Spark ETL,
  Ray training, teardown confirmation, stack down.

Every figure comes from the demo's own summary (``summary.json``, task durations from Airflow's metadata DB) and
its printed wall times. The table shows each stage's seconds and its ratio to the baseline's RayJob task, so the
train row reads "how many trivial RayJob lifecycles the training stage costs" whatever the machine's speed.
Each demo checks for leftover processes itself and fails if any is left.

Usage (2-core machine: hold the heavy-run lock)::

    flock /tmp/kuberay-heavy.lock .venv/bin/python bench/bench_demo.py            # 300000 rows
    flock /tmp/kuberay-heavy.lock .venv/bin/python bench/bench_demo.py --rows 50000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "demo.sh"
PIPELINE_ORDER = ("seed", "ETL", "train", "teardown confirm")  # the summary's stage names, in the order they run


@dataclass
class DemoRun:
    """What one ``scripts/demo.sh`` run printed and summarised."""

    dag_id: str
    wall: float
    stack_up: float | None
    dags_test: float | None
    stack_down: float | None
    summary: dict[str, Any]

    @property
    def stages(self) -> dict[str, float | None]:
        """Seconds per stage as the demo summary reports them, in pipeline order."""
        stages = dict(self.summary.get("stage_seconds") or {})
        rank = {name: i for i, name in enumerate(PIPELINE_ORDER)}
        return dict(sorted(stages.items(), key=lambda item: rank.get(item[0], len(rank))))


def _figure(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def run_demo(dag_id: str | None, rows: int) -> DemoRun:
    """Run the demo (``dag_id`` None: the retraining DAG); raise with its output tail if it fails."""
    env = {**os.environ, "DEMO_ROWS": str(rows)}
    command = [str(DEMO)] + ([dag_id] if dag_id else [])
    began = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - began
    out = result.stdout + result.stderr
    demo_dir = re.search(r"== demo dir (\S+)", out)
    try:
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed (exit {result.returncode}):\n{out[-4000:]}")
        if demo_dir is None:
            raise RuntimeError(f"{' '.join(command)} printed no demo dir:\n{out[-2000:]}")
        summary = json.loads((Path(demo_dir.group(1)) / "summary.json").read_text())
    finally:
        if demo_dir is not None:
            shutil.rmtree(demo_dir.group(1), ignore_errors=True)
    return DemoRun(dag_id or "ray_retraining", wall, _figure(r"stack up ([0-9.]+) s", out),
                   _figure(r"airflow dags test: exit code 0, ([0-9.]+) s", out), _figure(r", down ([0-9.]+) s", out),
                   summary)


def print_table(baseline: DemoRun, demo: DemoRun, rows: int) -> None:
    """Print the per-stage table (ratios against the baseline's RayJob task)."""
    base = baseline.stages.get("hello_ray")
    if not base:
        raise RuntimeError(f"the baseline's hello_ray task did not succeed: {baseline.summary.get('run')}")
    lines: list[tuple[str, str, float | None]] = [
        ("baseline", "hello_ray: one trivial RayJob (BASELINE)", base),
        ("baseline", "confirm_teardown", baseline.stages.get("confirm_teardown")),
        ("baseline", "whole demo (stack up .. down)", baseline.wall),
        ("demo", "stack up (API, controller, spark-operator, bqemulator)", demo.stack_up),
        *[("demo", name, seconds) for name, seconds in demo.stages.items()],
        ("demo", "airflow dags test ray_retraining (ETL .. teardown confirm)", demo.dags_test),
        ("demo", "stack down", demo.stack_down),
        ("demo", "whole demo (stack up .. down)", demo.wall),
    ]
    print()
    print(f"Demo time per stage: scripts/demo.sh, {rows:,} raw events; ratio = seconds / the baseline's RayJob task")
    header = f"{'run':<9} {'stage':<56} {'seconds':>8} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for run, name, seconds in lines:
        shown = "-" if seconds is None else f"{seconds:.1f}"
        ratio = "-" if seconds is None else f"{seconds / base:.2f}"
        print(f"{run:<9} {name:<56} {shown:>8} {ratio:>6}")
    seed = demo.summary.get("seed", {}).get("rows", {})
    etl = demo.summary.get("etl", {})
    holdout = demo.summary.get("bigquery", {}).get("metrics", {}).get("holdout", {})
    print(
        f"\nseeded {seed.get('events', '-')} events; ETL read {etl.get('events_read', '-')} and wrote "
        f"{demo.summary.get('bigquery', {}).get('features_rows', '-')} feature rows; holdout AUC "
        f"{holdout.get('auc', '-')}; clusters left {demo.summary.get('clusters_left', '-')} "
        f"(baseline {baseline.summary.get('clusters_left', '-')})"
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="raw events the demo seeds (default 300,000)")
    args = parser.parse_args(argv)
    if args.rows < 1000:
        parser.error(f"--rows={args.rows}: must be at least 1000 (the churn signal needs customers)")
    baseline = run_demo("example_kuberay_rayjob", args.rows)
    demo = run_demo(None, args.rows)
    print_table(baseline, demo, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
