"""The ``kuberay-local`` command line: up / status / down as a detached daemon, and argument validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from kuberay_provider.local import cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kuberay_provider.local.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = run("up", "--dir", str(state), "--requeue-seconds", "1")
    assert up.returncode == 0, up.stderr
    assert f"export KUBECONFIG={state / 'kubeconfig'}" in up.stdout
    pid = int((state / "kuberay-local.pid").read_text())
    try:
        env_text = (state / "env").read_text()
        conn = json.loads(env_text.split("AIRFLOW_CONN_KUBERNETES_DEFAULT=", 1)[1].strip().strip("'"))
        assert conn == {"conn_type": "kubernetes",
                        "extra": {"kube_config_path": str(state / "kubeconfig"), "namespace": "default"}}
        got = subprocess.run(["kubectl", "--kubeconfig", str(state / "kubeconfig"), "get", "rayjobs", "-A"],
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, got.stderr
        again = run("up", "--dir", str(state))
        assert again.returncode == 1 and "already runs" in again.stderr
        status = run("status", "--dir", str(state))
        assert status.returncode == 0 and "(answers)" in status.stdout and "rayjobs: 0" in status.stdout
    finally:
        down = run("down", "--dir", str(state))
    assert down.returncode == 0, down.stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    after = run("status", "--dir", str(state))
    assert after.returncode == 1 and "not running" in after.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["up", "--max-clusters", "0"], "--max-clusters must be >= 1"),
    (["up", "--requeue-seconds", "-1"], "--requeue-seconds must be > 0"),
    (["up", "--requeue-seconds", "soon"], "--requeue-seconds must be a number"),
    (["up", "--max-worker-nodes", "x"], "--max-worker-nodes must be an integer"),
])
def test_argument_validation(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_down_when_not_running(tmp_path: Path) -> None:
    result = run("down", "--dir", str(tmp_path))
    assert result.returncode == 0 and "not running" in result.stdout
