"""Run the DAG files of this folder the way users run them: ``airflow dags test`` (the CLI, a subprocess with a
private AIRFLOW_HOME) against the session's local stack, then read what the user would see — task states from the
metadata DB, the CLI's log output, and which RayJobs/RayClusters are left in which namespace.

The files are ordinary DAG files (Jinja, params, XComArgs, partial/expand, expand_kwargs, a connection that names a
namespace); the tests never import them. Connections come from ``AIRFLOW_CONN_*`` environment variables:
``kubernetes_default`` (the stack's, namespace ``default``) and ``kuberay_user`` whose extra names the test's own
namespace, exactly as a user would define one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kuberay_provider.compat import airflow_major_version

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
USER_CONN_ID = "kuberay_user"
LOGICAL_DATE = "2026-11-20T00:00:00+00:00"


@dataclass
class DagRun:
    """What ``airflow dags test`` left: its exit code and output, and the task instance states."""

    dag_id: str
    returncode: int
    output: str
    states: dict[str, str]

    def state(self, task_id: str, map_index: int = -1) -> str:
        return self.states.get(task_id if map_index < 0 else f"{task_id}[{map_index}]", "absent")

    def tail(self, chars: int = 8000) -> str:
        return self.output[-chars:]


@pytest.fixture(scope="session")
def dags_airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private AIRFLOW_HOME with a migrated SQLite metadata DB, shared by the DAG runs of the session."""
    home = tmp_path_factory.mktemp("airflow-home-user-dags")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return home


def _states(home: Path, dag_id: str) -> dict[str, str]:
    with sqlite3.connect(home / "airflow.db") as db:
        row = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
        if row is None:
            return {}
        rows = db.execute("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                          (dag_id, row[0])).fetchall()
    return {(t if m < 0 else f"{t}[{m}]"): str(s) for t, m, s in rows}


@pytest.fixture
def run_user_dag(local_stack: Any, dags_airflow_home: Path, namespace: str):
    """``run_user_dag(file, dag_id, env=...)`` runs one DAG file of this folder with ``airflow dags test``."""

    def run(dag_file: str, dag_id: str, env: dict[str, str] | None = None, timeout: float = 420) -> DagRun:
        path = HERE / dag_file
        user_conn = {"conn_type": "kubernetes",
                     "extra": {"kube_config_path": str(local_stack.kubeconfig_path), "namespace": namespace}}
        full_env = {
            **os.environ,
            **local_stack.env,
            "AIRFLOW_HOME": str(dags_airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(HERE),
            f"AIRFLOW_CONN_{USER_CONN_ID.upper()}": json.dumps(user_conn),
            "AIRFLOW_VAR_KUBERAY_TEST_NAMESPACE": namespace,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            **(env or {}),
        }
        full_env.pop("RAY_ADDRESS", None)
        where = ["-f", str(path)] if airflow_major_version() >= 3 else ["-S", str(path)]
        result = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", dag_id, LOGICAL_DATE, *where],
                                env=full_env, capture_output=True, text=True, timeout=timeout, check=False)
        return DagRun(dag_id, result.returncode, result.stdout + result.stderr, _states(dags_airflow_home, dag_id))

    return run


def list_objects(local_stack: Any, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """RayJobs/RayClusters (``plural``) on the local API server, in one namespace or all."""
    where = f"namespaces/{namespace}/" if namespace else ""
    with urllib.request.urlopen(f"{local_stack.api_url}/apis/ray.io/v1/{where}{plural}", timeout=10) as resp:
        return json.loads(resp.read())["items"]


def names_by_namespace(local_stack: Any, plural: str) -> dict[str, list[str]]:
    """``{namespace: [names]}`` of every RayJob/RayCluster on the server."""
    found: dict[str, list[str]] = {}
    for obj in list_objects(local_stack, plural):
        found.setdefault(obj["metadata"]["namespace"], []).append(obj["metadata"]["name"])
    return {ns: sorted(names) for ns, names in found.items()}
