"""The ``kuberay-local`` command line: up / status / down as a detached daemon (with and without the BigQuery
emulator), and argument validation."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from kuberay_provider.local import cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kuberay_provider.local.cli", *args], capture_output=True,
                          text=True, timeout=180)


def read_env(state: Path) -> dict[str, str]:
    """DIR/env parsed the way ``source`` would (``export K=V`` lines, shell-quoted)."""
    env = {}
    for line in (state / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = run("up", "--dir", str(state), "--requeue-seconds", "1")
    assert up.returncode == 0, up.stderr
    assert f"export KUBECONFIG={state / 'kubeconfig'}" in up.stdout
    assert "bigquery emulator at http://127.0.0.1:" in up.stdout
    pid = int((state / "kuberay-local.pid").read_text())
    bigquery = json.loads((state / "bigquery.json").read_text())
    try:
        env = read_env(state)
        conn = json.loads(env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
        assert conn == {"conn_type": "kubernetes",
                        "extra": {"kube_config_path": str(state / "kubeconfig"), "namespace": "default"}}
        # The emulator's endpoints, for the jobs (KUBERAY_BQ_*) and for the retraining DAG (Airflow Variables).
        rest, grpc_endpoint = bigquery["rest_endpoint"], bigquery["grpc_endpoint"]
        assert rest.startswith("http://127.0.0.1:") and grpc_endpoint.startswith("127.0.0.1:")
        assert {k: env[k] for k in env if "BQ_" in k} == {
            "KUBERAY_BQ_PROJECT": "local-project", "KUBERAY_BQ_REST_ENDPOINT": rest, "KUBERAY_BQ_GRPC_ENDPOINT": grpc_endpoint,
            "AIRFLOW_VAR_KUBERAY_BQ_PROJECT": "local-project", "AIRFLOW_VAR_KUBERAY_BQ_REST_ENDPOINT": rest,
            "AIRFLOW_VAR_KUBERAY_BQ_GRPC_ENDPOINT": grpc_endpoint,
        }  # fmt: skip
        assert env["AIRFLOW_VAR_KUBERAY_MODEL_ROOT"].startswith(str(state))
        # Its state is private to the stack dir, and the daemon owns the process.
        assert bigquery["dir"] == str(state / "bigquery") and (state / "bigquery" / "data").is_dir()
        emulator = psutil.Process(bigquery["pid"])
        assert "bqemulator" in " ".join(emulator.cmdline()) and emulator.ppid() == pid
        # The REST API answers a real request (an empty dataset list of the project).
        with urllib.request.urlopen(f"{rest}/bigquery/v2/projects/local-project/datasets", timeout=10) as resp:
            assert resp.status == 200
        from kuberay_provider.bigquery.config import BigQueryConfig

        assert BigQueryConfig.from_env(env).rest_endpoint == rest

        got = subprocess.run(["kubectl", "--kubeconfig", str(state / "kubeconfig"), "get", "rayjobs", "-A"],
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, got.stderr
        again = run("up", "--dir", str(state))
        assert again.returncode == 1 and "already runs" in again.stderr
        status = run("status", "--dir", str(state))
        assert status.returncode == 0 and "(answers)" in status.stdout and "rayjobs: 0" in status.stdout
        assert f"bigquery emulator: pid {bigquery['pid']} (running)" in status.stdout
        assert f"rest: {rest} (answers)" in status.stdout
    finally:
        down = run("down", "--dir", str(state))
    assert down.returncode == 0, down.stderr
    assert f"bigquery emulator stopped (pid {bigquery['pid']} gone)" in down.stdout
    assert gone(pid) and gone(bigquery["pid"])
    assert not (state / "bigquery.json").exists()
    after = run("status", "--dir", str(state))
    assert after.returncode == 1 and "not running" in after.stdout


def test_down_stops_an_emulator_that_outlived_the_daemon(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = run("up", "--dir", str(state))
    assert up.returncode == 0, up.stderr
    pid = int((state / "kuberay-local.pid").read_text())
    emulator_pid = json.loads((state / "bigquery.json").read_text())["pid"]
    try:
        os.kill(pid, signal.SIGKILL)  # the daemon cannot clean up; the emulator runs in its own session
        psutil.wait_procs([psutil.Process(pid)], timeout=10)
        assert not gone(emulator_pid)
        status = run("status", "--dir", str(state))
        assert status.returncode == 1 and "not running" in status.stdout
    finally:
        down = run("down", "--dir", str(state))
    assert down.returncode == 0, down.stdout + down.stderr
    assert "outlived the daemon" in down.stderr
    assert gone(emulator_pid)


def test_no_bigquery(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = run("up", "--dir", str(state), "--no-bigquery", "--no-spark")
    assert up.returncode == 0, up.stderr
    try:
        env = read_env(state)
        assert not [k for k in env if "BQ_" in k] and "KUBECONFIG" in env
        assert not (state / "bigquery.json").exists()
        status = run("status", "--dir", str(state))
        assert status.returncode == 0 and "bigquery emulator: -" in status.stdout
        assert not [p for p in psutil.Process(int((state / "kuberay-local.pid").read_text())).children(recursive=True)
                    if "bqemulator" in " ".join(p.cmdline())]
    finally:
        down = run("down", "--dir", str(state))
    assert down.returncode == 0, down.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["up", "--max-clusters", "0"], "--max-clusters must be >= 1"),
    (["up", "--requeue-seconds", "-1"], "--requeue-seconds must be > 0"),
    (["up", "--requeue-seconds", "soon"], "--requeue-seconds must be a number"),
    (["up", "--max-worker-nodes", "x"], "--max-worker-nodes must be an integer"),
    (["up", "--bigquery-project", "Bad_Project"], "--bigquery-project must be a project id"),
])
def test_argument_validation(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bigquery_flag_parses() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["up"]).bigquery is True
    assert parser.parse_args(["up", "--no-bigquery"]).bigquery is False
    assert parser.parse_args(["up", "--bigquery-project", "my-proj-1"]).bigquery_project == "my-proj-1"


def test_down_when_not_running(tmp_path: Path) -> None:
    result = run("down", "--dir", str(tmp_path))
    assert result.returncode == 0 and "not running" in result.stdout
