"""API requests and wall time of one RayJob lifecycle on the local stack, per wait mode.

Runs the same trivial RayJob through RayJobOperator (sync and deferrable, via ``dag.test``) and, as the
same-run baseline, through a naive client that polls ``GET`` every second (what polling integrations do).
Counts come from the emulated API server's request log (external clients only).
Usage: .venv/bin/python bench/bench_lifecycle.py
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRYPOINT = "python -c \"import time; time.sleep(5); print('done')\""


def _classify(record) -> str:
    kind = "watch" if record.is_watch else record.method
    resource = record.path.rstrip("/").split("/")
    for plural in ("log", "rayjobs", "rayclusters", "pods", "events"):  # pods/log before pods
        if plural in resource:
            resource_name = plural if plural != "log" else "pods/log"
            break
    else:
        resource_name = "other"
    return f"{kind} {resource_name}"


def _operator_run(stack, deferrable: bool, namespace: str) -> float:
    import pendulum
    from airflow.providers.common.compat.sdk import DAG

    from kuberay_provider.operators.rayjob import RayJobOperator
    from tests.integration.airflow_support import run_dag, task_states

    with DAG(f"bench_lifecycle_{int(deferrable)}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        RayJobOperator(task_id="job", namespace=namespace, entrypoint=ENTRYPOINT, deferrable=deferrable,
                       ttl_seconds_after_finished=0, head={"cpu": 1, "memory": "1Gi"})
    started = time.perf_counter()
    states = task_states(run_dag(dag))
    assert states == {"job": "success"}, states
    return time.perf_counter() - started


def _polling_run(stack, namespace: str) -> float:
    from kuberay_provider import specs
    from kuberay_provider.hooks.kuberay import KubeRayHook
    from kuberay_provider.status import RayJobStatus

    hook = KubeRayHook()
    manifest = specs.build_rayjob(
        name="polling-baseline", namespace=namespace,
        job=specs.JobSettings(entrypoint=ENTRYPOINT, ttl_seconds_after_finished=0),
        cluster_spec=specs.build_ray_cluster_spec(head=specs.NodeGroup(cpu="1", memory="1Gi"), worker_groups=[],
                                                  pod=specs.PodSettings(image="rayproject/ray:2.60.0")),
    )
    started = time.perf_counter()
    hook.create_rayjob(manifest)
    while not RayJobStatus.from_object(hook.get_rayjob("polling-baseline", namespace) or {}).is_terminal:
        time.sleep(1.0)
    return time.perf_counter() - started


def main() -> None:
    home = tempfile.mkdtemp(prefix="bench-airflow-")
    os.environ.update(AIRFLOW_HOME=home, AIRFLOW__CORE__LOAD_EXAMPLES="False", RAY_USAGE_STATS_ENABLED="0")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from kuberay_provider.local.stack import LocalStack

    rows = []
    with LocalStack(requeue_seconds=1.0, bigquery=False) as stack:
        os.environ.update(stack.env)
        for label, run in (
            ("baseline: poll GET every 1 s", lambda ns: _polling_run(stack, ns)),
            ("RayJobOperator sync (watch + log follow)", lambda ns: _operator_run(stack, False, ns)),
            ("RayJobOperator deferrable (trigger)", lambda ns: _operator_run(stack, True, ns)),
        ):
            namespace = f"bench-{len(rows)}"
            before = len(stack.server.requests)
            seconds = run(namespace)
            records = [r for r in stack.server.requests[before:] if r.external]
            rows.append((label, seconds, collections.Counter(_classify(r) for r in records), len(records)))
    base = rows[0][3]
    print(f"{'lifecycle':44} {'wall s':>7} {'requests':>9} {'vs base':>8}  breakdown")
    for label, seconds, counts, total in rows:
        breakdown = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        print(f"{label:44} {seconds:7.1f} {total:9d} {total / base:8.2f}  {breakdown}")
    print("(one RayJob sleeping 5 s; requests = external API requests in the emulator's request log)")


if __name__ == "__main__":
    main()
