"""Credentials reach Ray only as Kubernetes Secret references; literal ones are refused; the connection's
credentials are masked in the task log; no XCom carries a secret.

Real objects throughout: the real RayJobOperator and KubeRayHook, Airflow's real secrets masker (the one
``hooks/secrets.py`` registers with, through ``airflow.sdk.log.mask_secret``), real Airflow connections built from
``AIRFLOW_CONN_*`` and, in the slow test, a real task run (dag.test) against the local stack's HTTP API.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.naming import TaskInstanceIdentity
from kuberay_provider.operators.rayjob import RayJobOperator
from tests.integration.conftest import airflow_db, kube  # noqa: F401  (fixtures of the slow test)

IDENT = TaskInstanceIdentity("etl", "train", "scheduled__2026-11-22T00:00:00+00:00")


def redact(value: Any) -> Any:
    """Airflow's own redaction (what the task log's structlog processor applies to every event)."""
    from tests.integration.airflow_support import redact as airflow_redact

    return airflow_redact(value)


def fresh(prefix: str) -> str:
    """A secret nobody registered yet (the masker is process-wide, so each test needs its own values)."""
    return f"{prefix}-{secrets.token_hex(12)}"


def containers(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    cluster = manifest["spec"]["rayClusterSpec"]
    yield from cluster["headGroupSpec"]["template"]["spec"]["containers"]
    for group in cluster["workerGroupSpecs"]:
        yield from group["template"]["spec"]["containers"]


# -- secret_env → secretKeyRef only --------------------------------------------------------------------------

def test_manifest_carries_secret_env_only_as_secret_key_refs():
    op = RayJobOperator(
        task_id="train", entrypoint="python train.py",
        worker_groups=[{"name": "cpu", "replicas": 2}, {"name": "gpu", "gpus": 1}],
        head={"env": {"EPOCHS": "10"}},
        secret_env={"DB_PASSWORD": "db-creds:password", "HF_TOKEN": {"secret": "hf", "key": "token"}},
    )
    manifest = op.build_manifest(IDENT)
    seen = 0
    for container in containers(manifest):
        env = {e["name"]: e for e in container["env"]}
        assert env["DB_PASSWORD"] == {"name": "DB_PASSWORD",
                                      "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}
        assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
        seen += 1
    assert seen == 3  # head + both worker groups
    # No credential-named variable anywhere carries a literal value.
    text = json.dumps(manifest)
    assert '"value"' not in text.replace('"EPOCHS", "value": "10"', "")


LITERAL = [
    ("head-env-password", {"head": {"env": {"DB_PASSWORD": "hunter2hunter2"}}}, "head.env['DB_PASSWORD']"),
    ("head-env-lower-token", {"head": {"env": {"github_token": "ghp_" + "x" * 36}}}, "head.env['github_token']"),
    ("worker-env-aws-secret", {"worker_groups": [{"env": {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz"}}]},
     "worker_groups[0].env['AWS_SECRET_ACCESS_KEY']"),
    ("worker-env-api-key", {"worker_groups": [{"name": "a"}, {"name": "b", "env": {
        "OPENAI_API_KEY": "sk-proj-" + "a1B2" * 8}}]}, "worker_groups[1].env['OPENAI_API_KEY']"),
    ("head-env-credentials", {"head": {"env": {"GOOGLE_APPLICATION_CREDENTIALS_JSON": '{"private_key": "-----BEGIN '
                                                                                     'PRIVATE KEY-----\\nMIIE"}'}}},
     "head.env['GOOGLE_APPLICATION_CREDENTIALS_JSON']"),
    ("runtime-env-token", {"runtime_env": {"env_vars": {"WANDB_API_KEY": "0123456789abcdef" * 2}}},
     "runtime_env.env_vars['WANDB_API_KEY']"),
    ("runtime-env-yaml-secret", {"runtime_env": "env_vars:\n  CLIENT_SECRET: 9sd8f7g6h5j4k3\n"},
     "runtime_env.env_vars['CLIENT_SECRET']"),
    ("runtime-env-private-key", {"runtime_env": {"env_vars": {"SSH_PRIVATE_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----"}}},
     "runtime_env.env_vars['SSH_PRIVATE_KEY']"),
]


@pytest.mark.parametrize(("kwargs", "parameter"), [b[1:] for b in LITERAL], ids=[b[0] for b in LITERAL])
def test_literal_credentials_are_refused_at_construction_naming_the_parameter(kwargs, parameter):
    with pytest.raises(InvalidParameterError) as err:
        RayJobOperator(task_id="train", entrypoint="python train.py", **kwargs)
    assert err.value.parameter == parameter
    assert str(err.value).startswith(f"Invalid {parameter}='<hidden>'")  # the value itself is not echoed
    assert "secret_env" in str(err.value)
    for value in ("hunter2", "ghp_x", "sk-proj", "wJalr", "0123456789abcdef", "9sd8f7", "BEGIN"):
        assert value not in str(err.value)


def test_literal_credentials_in_a_full_manifest_are_refused():
    manifest = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "x"}, "spec": {
        "entrypoint": "python x.py", "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {
            "containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0",
                            "env": [{"name": "DB_PASSWORD", "value": "hunter2hunter2"}]}]}}}}}}
    with pytest.raises(InvalidParameterError, match="DB_PASSWORD"):
        RayJobOperator(task_id="train", manifest=manifest)


@pytest.mark.parametrize("kwargs", [
    {"cluster_selector": "shared", "entrypoint": "python x.py"},
    {"manifest": {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "x"}, "spec": {
        "entrypoint": "python x.py", "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}, "template": {
            "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}}}}}},
], ids=["cluster-selector", "manifest"])
def test_secret_env_is_never_silently_dropped(kwargs):
    try:
        manifest = RayJobOperator(task_id="train", secret_env={"DB_PASSWORD": "db:pw"}, **kwargs).build_manifest(IDENT)
    except InvalidParameterError as err:
        assert err.parameter == "secret_env"
        return
    assert "secretKeyRef" in json.dumps(manifest)


# -- masking of the connection's credentials ------------------------------------------------------------------

def _kubeconfig(server: str, *, token: str, password: str, key: str, refresh: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}},
                     {"name": "other", "context": {"cluster": "c", "user": "oidc"}}],
        "users": [
            {"name": "u", "user": {"token": token, "username": "admin", "password": password,
                                   "client-key-data": base64.b64encode(key.encode()).decode()}},
            {"name": "oidc", "user": {"auth-provider": {"name": "oidc", "config": {"refresh-token": refresh}}}},
        ],
    }


@pytest.fixture
def creds() -> dict[str, str]:
    values = {name: fresh(name) for name in ("token", "password", "key", "refresh", "conn_password")}
    for value in values.values():
        assert redact(f"x {value} y") == f"x {value} y", "a fresh value must not be masked before the hook runs"
    return values


def _kubeconfig_text(creds: dict[str, str], server: str = "http://127.0.0.1:9") -> str:
    return yaml.safe_dump(_kubeconfig(server, token=creds["token"], password=creds["password"],
                                      key=creds["key"], refresh=creds["refresh"]))


def _assert_all_masked(values: list[str]) -> None:
    for value in values:
        assert redact(f"Authorization: Bearer {value}!") == "Authorization: Bearer ***!"
        assert redact({"nested": [value]}) == {"nested": ["***"]}


def test_inline_kube_config_and_connection_password_are_masked(monkeypatch, creds):
    from kuberay_provider.hooks.kuberay import KubeRayHook

    kubeconfig = _kubeconfig_text(creds)
    monkeypatch.setenv("AIRFLOW_CONN_KUBE_INLINE", json.dumps({
        "conn_type": "kubernetes", "password": creds["conn_password"], "extra": {"kube_config": kubeconfig}}))
    hook = KubeRayHook(kubernetes_conn_id="kube_inline")
    hook.get_conn()  # no request is made: building the client is enough
    _assert_all_masked([creds["token"], creds["password"], base64.b64encode(creds["key"].encode()).decode(),
                        creds["refresh"], creds["conn_password"]])
    assert redact(f"config:\n{kubeconfig}") == "config:\n***"  # the inline document as a whole


def _task_logger(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``log(message, *args, **fields) -> (rendered message, fields)`` through Airflow's own task-log masking: the
    Task SDK's structlog processors (``mask_logs`` included) on Airflow 3, the ``SecretsMasker`` logging filter that
    Airflow 2 attaches to its task handlers on Airflow 2."""

    from tests.integration.airflow_support import AIRFLOW_2

    if AIRFLOW_2:
        import logging

        from airflow import settings
        from airflow.utils.log.secrets_masker import _secrets_masker

        monkeypatch.setattr(settings, "MASK_SECRETS_IN_LOGS", True)  # what `airflow tasks run` sets for a task

        def log2(message: str, *args: str, **fields: str) -> tuple[str, dict[str, str]]:
            records: list[logging.LogRecord] = []

            class Capture(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    records.append(record)

            handler = Capture()
            handler.addFilter(_secrets_masker())
            logger = logging.getLogger(f"airflow.task.secrets-test-{secrets.token_hex(4)}")
            logger.propagate = False
            logger.addHandler(handler)
            logger.info(message, *args, extra=fields)
            (record,) = records
            return record.getMessage(), {k: getattr(record, k) for k in fields}

        return log2

    import io

    import structlog
    from airflow.sdk.log import logging_processors

    def log3(message: str, *args: str, **fields: str) -> tuple[str, dict[str, str]]:
        out = io.StringIO()
        logger = structlog.wrap_logger(structlog.PrintLogger(file=out),
                                       processors=list(logging_processors(json_output=True)))
        logger.info(message, *args, **fields)
        line = out.getvalue().strip()
        record = json.loads(line[2:-1] if line.startswith("b'") else line)
        return record["event"], {k: record[k] for k in fields}

    return log3


def test_task_log_processors_redact_what_the_hook_registered(monkeypatch, creds):
    """Airflow's own task-log pipeline turns the connection's credentials into ``***`` once the hook has registered
    them (Airflow 3: the Task SDK's structlog processors; Airflow 2: the SecretsMasker filter)."""
    from kuberay_provider.hooks.kuberay import KubeRayHook

    monkeypatch.setenv("AIRFLOW_CONN_KUBE_LOGGED", json.dumps({
        "conn_type": "kubernetes", "password": creds["conn_password"],
        "extra": {"kube_config": _kubeconfig_text(creds)}}))
    task_log = _task_logger(monkeypatch)
    fields = {"token": creds["token"], "password": creds["password"], "conn": creds["conn_password"]}

    event, logged = task_log("connecting with token=%s", creds["token"], **fields)
    assert event == f"connecting with token={creds['token']}"  # not registered yet: shown as is
    KubeRayHook(kubernetes_conn_id="kube_logged").get_conn()
    event, logged = task_log("connecting with token=%s", creds["token"], **fields)
    assert event == "connecting with token=***"
    assert logged == {"token": "***", "password": "***", "conn": "***"}


def test_kube_config_path_credentials_are_masked(monkeypatch, creds, tmp_path: Path):
    from kuberay_provider.hooks.kuberay import KubeRayHook

    path = tmp_path / "kubeconfig"
    path.write_text(_kubeconfig_text(creds))
    monkeypatch.setenv("AIRFLOW_CONN_KUBE_FILE", json.dumps({
        "conn_type": "kubernetes", "extra": {"kube_config_path": str(path)}}))
    KubeRayHook(kubernetes_conn_id="kube_file").get_conn()
    _assert_all_masked([creds["token"], creds["password"], creds["refresh"]])
    assert redact(str(path)) == str(path)  # the path is not a secret


def test_async_hook_masks_the_same_credentials(monkeypatch, creds):
    import asyncio

    from kuberay_provider.hooks.kuberay import AsyncKubeRayHook

    monkeypatch.setenv("AIRFLOW_CONN_KUBE_ASYNC", json.dumps({
        "conn_type": "kubernetes", "extra": {"kube_config": _kubeconfig_text(creds)}}))

    async def connect() -> None:
        async with AsyncKubeRayHook(kubernetes_conn_id="kube_async").get_conn():
            pass

    asyncio.run(connect())
    _assert_all_masked([creds["token"], creds["password"], creds["refresh"]])


def test_default_kubeconfig_credentials_are_masked(monkeypatch, creds, tmp_path: Path):
    from kuberay_provider.hooks.kuberay import KubeRayHook

    path = tmp_path / "kubeconfig"
    path.write_text(_kubeconfig_text(creds))
    monkeypatch.setenv("AIRFLOW_CONN_KUBE_DEFAULT_FILE", json.dumps({"conn_type": "kubernetes", "extra": {}}))
    hook = KubeRayHook(kubernetes_conn_id="kube_default_file", config_file=str(path))
    assert hook.get_conn().configuration.host == "http://127.0.0.1:9"  # the client was built from the file
    _assert_all_masked([creds["token"]])


# -- end to end: the task log and the XComs of a real run ------------------------------------------------------

@pytest.mark.slow
def test_real_run_registers_masks_logs_nothing_and_returns_no_secret(local_stack, kube, namespace, creds,  # noqa: F811
                                                                      capfd, monkeypatch):
    """A real RayJobOperator run (dag.test) over a connection full of credentials, against the local stack's API:
    the RayJob stored on the API server carries the credential only as a secretKeyRef, the run registered the
    connection's credentials with the masker, nothing the provider logged contains one, and no XCom does.

    (dag.test's in-process logging applies no masking to anything, so the redaction of the task log itself is
    proven with Airflow's task-log processors in test_task_log_processors_redact_what_the_hook_registered.)
    """
    from airflow.providers.common.compat.sdk import DAG
    from airflow.utils.session import create_session

    from kuberay_provider import constants as c
    from kuberay_provider.local.clusters import SIMULATE_ANNOTATION
    from tests.integration.airflow_support import run_dag, task_states, xcom_model, xcom_value
    from tests.integration.test_janitor import START

    kubeconfig = _kubeconfig_text(creds, server=local_stack.api_url)
    monkeypatch.setenv("AIRFLOW_CONN_KUBE_SECRETS", json.dumps({
        "conn_type": "kubernetes", "password": creds["conn_password"], "extra": {"kube_config": kubeconfig}}))
    monkeypatch.delenv("KUBECONFIG", raising=False)  # the connection's inline kubeconfig is the only config
    registered = [creds["token"], creds["password"], creds["refresh"], creds["conn_password"]]
    leaks = [*registered, kubeconfig]

    with DAG(dag_id="secrets_run", schedule=None, start_date=START, catchup=False) as dag:
        RayJobOperator(
            task_id="train", name="train-secrets", namespace=namespace, kubernetes_conn_id="kube_secrets",
            entrypoint="python -c 'print(1)'", head={"cpu": 1, "memory": "1Gi"},
            secret_env={"DB_PASSWORD": "db-creds:password"},
            annotations={SIMULATE_ANNOTATION: "unschedulable"},  # never starts Ray
            wait_for_completion=False, stream_logs=False,
        )
    try:
        dag_run = run_dag(dag)
        out, err = capfd.readouterr()
        assert task_states(dag_run) == {"train": "success"}, out[-3000:]
        assert "Created RayJob" in out + err
        for leak in leaks:
            assert leak not in out + err
        _assert_all_masked(registered)  # the run's hook registered every credential of the connection
        # The RayJob as the API server stores it: the credential only as a reference, in every container.
        stored = kube.get_rayjob("train-secrets", namespace)
        assert stored is not None
        head = stored["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        assert {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}} in head["env"]
        assert not any(leak in json.dumps(stored) for leak in leaks)
        # Every XCom of the run.
        with create_session() as session:
            model = xcom_model()
            rows = session.query(model).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
            xcoms = {(r.task_id, r.key): json.dumps(xcom_value(r), default=str) for r in rows}
        assert {("train", "return_value"), ("train", "rayjob_name")} <= set(xcoms)
        summary = json.loads(xcoms[("train", "return_value")])
        summary = json.loads(summary) if isinstance(summary, str) else summary
        assert summary["name"] == "train-secrets" and summary["namespace"] == namespace
        for key, value in xcoms.items():
            assert not any(leak in value for leak in leaks), key
            assert "db-creds" not in value, key  # not even the Secret reference is returned
    finally:
        kube.delete_object(c.RAYJOB_KIND, "train-secrets", namespace)
