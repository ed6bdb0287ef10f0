"""The example DAG as a user runs it: ``airflow dags test`` (the CLI, its own process) on the local stack, with the
installed provider and nothing but the ``kubernetes_default`` connection -- here a ``kuberay`` connection in GKE
mode: endpoint and CA from the fake GKE API, HTTPS, Google tokens expiring every few seconds (kubeconfig mode is
covered by the rest of the suite). Runs on every CI lane."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kuberay_provider import constants as c
from kuberay_provider.local.stack import LocalStack
from tests.integration.airflow_support import wait_until
from tests.integration.conftest import airflow_db  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.composer]
REPO = Path(__file__).resolve().parents[2]
TOKEN_LIFETIME = 5.0


@pytest.fixture(scope="module")
def gke_stack(tmp_path_factory: pytest.TempPathFactory):
    """A local stack in GKE mode (HTTPS + expiring bearer tokens + the Google doubles)."""
    stack = LocalStack(tmp_path_factory.mktemp("gke-stack"), requeue_seconds=1.0, spark=False, bigquery=False,
                       gke=True, token_lifetime=TOKEN_LIFETIME)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def kube(gke_stack, airflow_db, monkeypatch):  # noqa: F811
    for key, value in gke_stack.env.items():
        monkeypatch.setenv(key, value)
    from kuberay_provider.hooks.kuberay import KubeRayHook

    return KubeRayHook()


def _task_states(dag_id: str) -> dict[str, str]:
    from airflow.models import DagRun

    (dag_run,) = DagRun.find(dag_id=dag_id)
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_example_dag_runs_with_airflow_dags_test(gke_stack, kube):
    assert "KUBECONFIG" not in gke_stack.env and "kube_config_path" not in gke_stack.env["AIRFLOW_CONN_KUBERNETES_DEFAULT"]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env = {**env, **gke_stack.env, "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    airflow = str(Path(sys.executable).parent / "airflow")
    started = time.monotonic()
    result = subprocess.run([airflow, "dags", "test", "example_kuberay_rayjob", "2026-11-16T00:00:00+00:00"],
                            env=env, capture_output=True, text=True, timeout=600, cwd="/")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    issued = [t for who, t in gke_stack.google.issued if who.startswith("airflow@")]
    seconds = time.monotonic() - started
    print(f"GKE mode: {len(issued)} tokens issued to the Airflow side in {seconds:.0f} s "
          f"(token lifetime {TOKEN_LIFETIME:.0f} s); 401s answered: {gke_stack.server.unauthorized}")
    assert len(issued) >= 3  # the run outlived several tokens
    assert not any(token in output for token in gke_stack.google.tokens)  # no token in the task log
    assert "sum of squares 0..9 = 285" in output  # the driver's own line, streamed into the task log
    assert _task_states("example_kuberay_rayjob") == {"hello_ray": "success", "confirm_teardown": "success"}
    # The finished RayJob is kept as a record (default cleanup policy); its cluster and pods are gone.
    (job,) = [j for j in kube.list_rayjobs("default") if j["metadata"]["labels"].get(c.DAG_ID_LABEL)
              == "example_kuberay_rayjob"]
    assert job["status"]["jobDeploymentStatus"] == "Complete" and job["status"]["jobStatus"] == "SUCCEEDED"
    assert kube.list_objects(c.RAYCLUSTER_KIND, "default") == []
    wait_until(lambda: kube.list_pods("default", "ray.io/is-ray-node=yes") == [], timeout=30)
    kube.delete_object(c.RAYJOB_KIND, job["metadata"]["name"], "default")
