"""Import cost at DAG-parse time: our operator and sensor modules against ``from airflow.sdk import BaseOperator``.

Each import runs in a fresh interpreter (median of --runs), interleaved so machine noise hits all alike;
ratios are against the baseline measured in the same run. Usage: .venv/bin/python bench/bench_import.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

CASES = {
    "baseline: from airflow.sdk import BaseOperator": "from airflow.sdk import BaseOperator",
    "kuberay_provider.operators.rayjob": "import kuberay_provider.operators.rayjob",
    "kuberay_provider.sensors.rayjob": "import kuberay_provider.sensors.rayjob",
    "dags/example_rayjob.py (whole DAG file)": "import runpy; runpy.run_path('dags/example_rayjob.py')",
    "dags/ray_retraining.py (whole DAG file)": "import runpy; runpy.run_path('dags/ray_retraining.py')",
    "reference: cncf KubernetesPodOperator": "import airflow.providers.cncf.kubernetes.operators.pod",
}
TIMER = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def measure(stmt: str, env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", TIMER.format(stmt=stmt)], env=env, check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        measure("import airflow", env)  # warm the file cache and write airflow.cfg once
        samples: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(args.runs):
            for name, stmt in CASES.items():
                samples[name].append(measure(stmt, env))
    base = statistics.median(samples[next(iter(CASES))])
    print(f"{'import':55} {'median s':>9} {'ratio':>7}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:55} {median:9.3f} {median / base:7.2f}")
    print(f"(median of {args.runs} fresh interpreters each; ratio = median / baseline median)")


if __name__ == "__main__":
    main()
