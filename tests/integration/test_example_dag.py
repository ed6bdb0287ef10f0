"""The example DAG as a user runs it: ``airflow dags test`` (the CLI, its own process) on the local stack, with the
installed provider and nothing but the ``kubernetes_default`` connection. Runs on every CI lane."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kuberay_provider import constants as c
from tests.integration.airflow_support import wait_until
from tests.integration.conftest import airflow_db, kube  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.composer]
REPO = Path(__file__).resolve().parents[2]


def _task_states(dag_id: str) -> dict[str, str]:
    from airflow.models import DagRun

    (dag_run,) = DagRun.find(dag_id=dag_id)
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_example_dag_runs_with_airflow_dags_test(local_stack, kube):  # noqa: F811
    env = {**os.environ, **local_stack.env, "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = str(Path(sys.executable).parent / "airflow")
    result = subprocess.run([airflow, "dags", "test", "example_kuberay_rayjob", "2026-11-16T00:00:00+00:00"],
                            env=env, capture_output=True, text=True, timeout=600, cwd="/")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "sum of squares 0..9 = 285" in output  # the driver's own line, streamed into the task log
    assert _task_states("example_kuberay_rayjob") == {"hello_ray": "success", "confirm_teardown": "success"}
    # The finished RayJob is kept as a record (default cleanup policy); its cluster and pods are gone.
    (job,) = [j for j in kube.list_rayjobs("default") if j["metadata"]["labels"].get(c.DAG_ID_LABEL)
              == "example_kuberay_rayjob"]
    assert job["status"]["jobDeploymentStatus"] == "Complete" and job["status"]["jobStatus"] == "SUCCEEDED"
    assert kube.list_objects(c.RAYCLUSTER_KIND, "default") == []
    wait_until(lambda: kube.list_pods("default", "ray.io/is-ray-node=yes") == [], timeout=30)
    kube.delete_object(c.RAYJOB_KIND, job["metadata"]["name"], "default")
