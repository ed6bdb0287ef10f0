"""Fixtures for end-to-end tests: an Airflow metadata DB and the local stack's connection in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TEST_USER_AGENT = "kuberay-provider-tests"


@pytest.fixture(scope="session")
def airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``airflow db migrate`` once per session in the private AIRFLOW_HOME the test command set."""
    home = Path(os.environ["AIRFLOW_HOME"])
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return home


@pytest.fixture
def kube(local_stack, airflow_db, monkeypatch):
    """The local stack's ``kubernetes_default`` connection for Airflow, plus a hook to inspect the cluster."""
    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    from kuberay_provider.hooks.kuberay import KubeRayHook

    hook = KubeRayHook()
    hook.api_client.user_agent = TEST_USER_AGENT  # so the RBAC audit can tell test inspection from the provider
    return hook
