"""Malformed input across the provider is refused with a message naming the parameter, before anything is created.

Fast part (no server): construction-time errors of the cluster operators, the sensors and the janitor, the hook's
kind check, BigQuery I/O (endpoints that cannot be reached prove no request was needed to refuse) and the
``kuberay-local`` command line. Slow part (``@pytest.mark.slow``, the local stack + real Airflow): values that
only go bad once templates render are refused at the start of ``execute`` with no write request sent, and the
hook's kind check sends nothing. RayJobOperator's own parameters are covered in tests/operators/test_rayjob_params.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kuberay_provider.errors import InvalidParameterError
from tests.integration.conftest import airflow_db  # noqa: F401  (fixture of the slow tests)

Case = tuple[str, Callable[[], Any], str]


def _create(**kw: Any) -> Any:
    from kuberay_provider.operators.raycluster import RayClusterCreateOperator

    kw.setdefault("name", "shared")
    return RayClusterCreateOperator(task_id="create", **kw)


def _delete(**kw: Any) -> Any:
    from kuberay_provider.operators.raycluster import RayClusterDeleteOperator

    kw.setdefault("name", "shared")
    return RayClusterDeleteOperator(task_id="delete", **kw)


def _rayjob_sensor(**kw: Any) -> Any:
    from kuberay_provider.sensors.rayjob import RayJobSensor

    kw.setdefault("name", "train-1")
    return RayJobSensor(task_id="wait", **kw)


def _deleted_sensor(**kw: Any) -> Any:
    from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor

    return RayClusterDeletedSensor(task_id="confirm", **kw)


def _janitor(**kw: Any) -> Any:
    from kuberay_provider.operators.janitor import RayJanitorOperator

    return RayJanitorOperator(task_id="sweep", **kw)


def _rayjob(**kw: Any) -> Any:
    from kuberay_provider.operators.rayjob import RayJobOperator

    kw.setdefault("entrypoint", "python train.py")
    return RayJobOperator(task_id="train", **kw)


CONSTRUCTION: list[Case] = [
    # RayClusterCreateOperator
    ("create-name-underscore", lambda: _create(name="Shared_Cluster"), "name"),
    ("create-name-none", lambda: _create(name=None), "name"),
    ("create-namespace-space", lambda: _create(namespace="ray jobs"), "namespace"),
    ("create-labels-key", lambda: _create(labels={"bad key": "x"}), "labels['bad key']"),
    ("create-labels-not-mapping", lambda: _create(labels=["team"]), "labels"),
    ("create-head-cpu", lambda: _create(head={"cpu": "lots"}), "head.cpu"),
    ("create-head-string", lambda: _create(head="big"), "head"),
    ("create-worker-replicas", lambda: _create(worker_groups=[{"replicas": -1}]), "worker_groups[0].replicas"),
    ("create-worker-groups-dict", lambda: _create(worker_groups={"cpu": 2}), "worker_groups"),
    ("create-ready-timeout-zero", lambda: _create(ready_timeout=0), "ready_timeout"),
    ("create-ready-timeout-string", lambda: _create(ready_timeout="soon"), "ready_timeout"),
    ("create-image-space", lambda: _create(image="rayproject/ray 2.60"), "image"),
    ("create-service-account", lambda: _create(service_account="Ray SA"), "service_account"),
    ("create-conn-empty", lambda: _create(kubernetes_conn_id=""), "kubernetes_conn_id"),
    ("create-wait-not-bool", lambda: _create(wait_until_ready="yes"), "wait_until_ready"),
    # RayClusterDeleteOperator
    ("delete-name-underscore", lambda: _delete(name="Shared_Cluster"), "name"),
    ("delete-name-64", lambda: _delete(name="a" * 64), "name"),
    ("delete-name-empty", lambda: _delete(name=""), "name"),
    ("delete-namespace", lambda: _delete(namespace="Ray"), "namespace"),
    ("delete-wait-timeout", lambda: _delete(wait_timeout=-1), "wait_timeout"),
    ("delete-wait-not-bool", lambda: _delete(wait="no"), "wait"),
    # RayJobSensor
    ("sensor-name-dot", lambda: _rayjob_sensor(name="my.job"), "name"),
    ("sensor-name-none", lambda: _rayjob_sensor(name=None), "name"),
    ("sensor-namespace", lambda: _rayjob_sensor(namespace="ray_jobs"), "namespace"),
    ("sensor-conn-empty", lambda: _rayjob_sensor(kubernetes_conn_id=" "), "kubernetes_conn_id"),
    # RayClusterDeletedSensor
    ("deleted-nothing-to-check", lambda: _deleted_sensor(), "rayjob_name"),
    ("deleted-rayjob-name", lambda: _deleted_sensor(rayjob_name="Train_1"), "rayjob_name"),
    ("deleted-cluster-names-string", lambda: _deleted_sensor(cluster_names="shared"), "cluster_names"),
    ("deleted-cluster-name-bad", lambda: _deleted_sensor(cluster_names=["ok", "Not_OK"]), "cluster_names[1]"),
    ("deleted-cluster-name-int", lambda: _deleted_sensor(cluster_names=[7]), "cluster_names[0]"),
    ("deleted-label-selector", lambda: _deleted_sensor(label_selector="app ray"), "label_selector"),
    ("deleted-label-selector-key", lambda: _deleted_sensor(label_selector="=ray"), "label_selector"),
    ("deleted-namespace", lambda: _deleted_sensor(rayjob_name="x", namespace="Ray"), "namespace"),
    ("deleted-poke-zero", lambda: _deleted_sensor(rayjob_name="x", poke_interval=0), "poke_interval"),
    ("deleted-timeout-zero", lambda: _deleted_sensor(rayjob_name="x", timeout=0), "timeout"),
    # RayJanitorOperator
    ("janitor-max-age-negative", lambda: _janitor(max_age=dt.timedelta(hours=-1)), "max_age"),
    ("janitor-max-age-int", lambda: _janitor(max_age=3600), "max_age"),
    ("janitor-namespace", lambda: _janitor(namespaces="default,Ray_Jobs"), "namespaces"),
    ("janitor-namespaces-empty-list", lambda: _janitor(namespaces=[]), "namespaces"),
    ("janitor-namespaces-blank", lambda: _janitor(namespaces=" , "), "namespaces"),
    ("janitor-namespaces-ints", lambda: _janitor(namespaces=[1, 2]), "namespaces"),
    ("janitor-dry-run", lambda: _janitor(dry_run="maybe"), "dry_run"),
    ("janitor-conn-empty", lambda: _janitor(kubernetes_conn_id=""), "kubernetes_conn_id"),
    # RayJobOperator: secret references (the rest: tests/operators/test_rayjob_params.py, tests/security)
    ("rayjob-secret-env-no-key", lambda: _rayjob(secret_env={"DB_PASSWORD": "db-creds"}), "secret_env['DB_PASSWORD']"),
    ("rayjob-secret-env-bad-secret", lambda: _rayjob(secret_env={"X": "Db_Creds:pw"}), "secret_env['X']"),
    ("rayjob-secret-env-three-parts", lambda: _rayjob(secret_env={"X": "a:b:c"}), "secret_env['X']"),
    ("rayjob-secret-env-list", lambda: _rayjob(secret_env=["DB_PASSWORD"]), "secret_env"),
    ("rayjob-secret-env-bad-name", lambda: _rayjob(secret_env={"1DB PASSWORD": "db:pw"}), "secret_env['1DB PASSWORD']"),
    ("rayjob-secret-env-with-selector", lambda: _rayjob(secret_env={"DB_PASSWORD": "db:pw"}, cluster_selector="shared"),
     "secret_env"),
    # RayJobOperator: pod and job settings
    ("rayjob-entrypoint-cpus-negative", lambda: _rayjob(entrypoint_num_cpus=-1), "entrypoint_num_cpus"),
    ("rayjob-entrypoint-gpus-text", lambda: _rayjob(entrypoint_num_gpus="one"), "entrypoint_num_gpus"),
    ("rayjob-job-id-space", lambda: _rayjob(job_id="my job"), "job_id"),
    ("rayjob-service-account", lambda: _rayjob(service_account="Ray Runner"), "service_account"),
    ("rayjob-node-selector-key", lambda: _rayjob(node_selector={"bad key": "x"}), "node_selector['bad key']"),
    ("rayjob-image-pull-secrets-string", lambda: _rayjob(image_pull_secrets="regcred"), "image_pull_secrets"),
    ("rayjob-tolerations-string", lambda: _rayjob(tolerations="gpu"), "tolerations"),
    ("rayjob-group-env-name", lambda: _rayjob(head={"env": {"MY VAR": "1"}}), "head.env['MY VAR']"),
    ("rayjob-group-annotation-key", lambda: _rayjob(head={"annotations": {"a b": "x"}}), "head.annotations['a b']"),
    ("rayjob-cluster-selector-name", lambda: _rayjob(cluster_selector="Shared_Cluster"), "cluster_selector"),
    ("rayjob-ray-version", lambda: _rayjob(ray_version="latest"), "ray_version"),
    ("rayjob-dashboard-template-key", lambda: _rayjob(dashboard_url_template="https://{host}/ray"),
     "dashboard_url_template"),
    ("rayjob-dashboard-template-scheme", lambda: _rayjob(dashboard_url_template="{dashboard_url}"),
     "dashboard_url_template"),
    ("rayjob-stream-logs-not-bool", lambda: _rayjob(stream_logs="yes"), "stream_logs"),
    ("rayjob-conn-empty", lambda: _rayjob(kubernetes_conn_id=" "), "kubernetes_conn_id"),
    # numbers: integer-valued strings are accepted (what Jinja renders); words, fractions and negatives are not
    ("rayjob-ttl-word", lambda: _rayjob(ttl_seconds_after_finished="sixty"), "ttl_seconds_after_finished"),
    ("rayjob-backoff-fraction", lambda: _rayjob(backoff_limit="0.5"), "backoff_limit"),
    ("rayjob-log-tail-negative-string", lambda: _rayjob(log_tail_lines="-3"), "log_tail_lines"),
    ("rayjob-timeout-word", lambda: _rayjob(timeout="an hour"), "timeout"),
    ("deleted-poke-interval-word", lambda: _deleted_sensor(rayjob_name="x", poke_interval="often"), "poke_interval"),
    ("sensor-timeout-negative-string", lambda: _rayjob_sensor(timeout="-1"), "timeout"),
    ("delete-wait-timeout-word", lambda: _delete(wait_timeout="later"), "wait_timeout"),
]


@pytest.mark.parametrize(("make", "parameter"), [c[1:] for c in CONSTRUCTION], ids=[c[0] for c in CONSTRUCTION])
def test_construction_rejects_naming_the_parameter(make: Callable[[], Any], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        make()
    assert err.value.parameter == parameter
    assert str(err.value).startswith(f"Invalid {parameter}=")


# Templated values are left for execute() (checked once rendered); they must not be refused at parse time.
TEMPLATED_OK: list[tuple[str, Callable[[], Any]]] = [
    ("create", lambda: _create(name="{{ params.name }}", namespace="{{ params.ns }}", labels={"run": "{{ run_id }}"})),
    ("delete", lambda: _delete(name="{{ params.name }}", namespace="{{ params.ns }}")),
    ("sensor", lambda: _rayjob_sensor(name="{{ ti.xcom_pull('train')['name'] }}", namespace="{{ params.ns }}")),
    ("deleted", lambda: _deleted_sensor(rayjob_name="{{ ti.xcom_pull('train')['name'] }}",
                                        cluster_names=["{{ params.c }}"], label_selector="{{ params.sel }}")),
    ("janitor", lambda: _janitor(namespaces="{{ var.value.ns }}", dry_run="{{ params.dry_run }}")),
    ("deleted-53-char-cluster", lambda: _deleted_sensor(cluster_names=["a" * 47 + "-b4z9q"])),  # <rayjob>-<5>
    ("deleted-timedelta", lambda: _deleted_sensor(rayjob_name="x", timeout=dt.timedelta(minutes=5))),
    # what Jinja and native rendering give numeric parameters, and strings that merely end in .yaml
    ("rayjob-numeric-strings", lambda: _rayjob(ttl_seconds_after_finished="60", backoff_limit="0", timeout="90",
                                               pre_running_deadline_seconds="600", log_tail_lines="20")),
    ("rayjob-templated-numbers", lambda: _rayjob(ttl_seconds_after_finished="{{ params.ttl }}",
                                                 active_deadline_seconds="{{ params.deadline }}")),
    ("rayjob-yaml-path-in-entrypoint", lambda: _rayjob(entrypoint="python train.py --config conf.yaml",
                                                       runtime_env={"env_vars": {"CONFIG": "configs/a.yml"}})),
    ("rayjob-templated-pod-settings", lambda: _rayjob(secret_env={"DB_PASSWORD": "{{ params.secret }}:password"},
                                                      node_selector={"pool": "{{ params.pool }}"},
                                                      tolerations=[{"key": "{{ params.taint }}", "operator": "Exists"}])),
    ("sensor-seconds-strings", lambda: _rayjob_sensor(poke_interval="2", timeout="30")),
    ("delete-wait-timeout-string", lambda: _delete(wait_timeout="60")),
    ("create-ready-timeout-string-number", lambda: _create(ready_timeout="300")),
]


@pytest.mark.parametrize("make", [t[1] for t in TEMPLATED_OK], ids=[t[0] for t in TEMPLATED_OK])
def test_templated_and_edge_values_still_construct(make: Callable[[], Any]) -> None:
    assert make().task_id


# -- the validators behind them (naming.py) -----------------------------------------------------------------------

@pytest.mark.parametrize("selector", ["app=ray", "a==b,c!=d", "!x", "x", "env in (a, b),tier notin (c)",
                                      "ray.io/originated-from-cr-name=job-1", "k="])
def test_label_selector_accepts_kubernetes_syntax(selector: str) -> None:
    from kuberay_provider.naming import validate_label_selector

    assert validate_label_selector(selector) == selector


@pytest.mark.parametrize("selector", ["", "a b c", "=x", "a in ()", "a=b=c", "a in (b", "Bad Key=v", "a=b,",
                                      "k=v v", None])
def test_label_selector_rejects(selector: Any) -> None:
    from kuberay_provider.naming import validate_label_selector

    with pytest.raises(InvalidParameterError) as err:
        validate_label_selector(selector, "label_selector")
    assert err.value.parameter == "label_selector"


@pytest.mark.parametrize(("validator", "value", "ok"), [
    ("validate_raycluster_name", "a" * 47 + "-b4z9q", True), ("validate_raycluster_name", "a" * 54, False),
    ("validate_raycluster_name", "a" * 64, False), ("validate_raycluster_name", "1shared", False),
    ("validate_raycluster_name", "", False), ("validate_dns_subdomain", "ray.workers", True),
    ("validate_dns_subdomain", "Ray", False), ("validate_dns_subdomain", None, False),
    ("validate_seconds", 0.5, True), ("validate_seconds", 0, False), ("validate_seconds", True, False),
    ("validate_seconds", "60", False),
])
def test_name_and_number_validators(validator: str, value: Any, ok: bool) -> None:
    from kuberay_provider import naming

    check = getattr(naming, validator)
    if ok:
        check(value, "p")
        return
    with pytest.raises(InvalidParameterError) as err:
        check(value, "p")
    assert err.value.parameter == "p"


# -- KubeRayHook: a bad kind is refused before any request ------------------------------------------------------

HOOK_CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    ("create-pod", lambda h: h.create_object("Pod", {"metadata": {"name": "x"}}, "default")),
    ("get-lowercase", lambda h: h.get_object("rayjob", "x", "default")),
    ("list-job", lambda h: h.list_objects("Job", "default")),
    ("delete-deployment", lambda h: h.delete_object("Deployment", "x", "default")),
]


@pytest.mark.parametrize("call", [h[1] for h in HOOK_CALLS], ids=[h[0] for h in HOOK_CALLS])
def test_hook_refuses_unknown_kinds_without_a_request(call: Callable[[Any], Any], monkeypatch) -> None:
    """The connection points at a port nothing listens on: any request would fail (slowly, after retries) with a
    connection error, so an error naming ``kind`` proves nothing was sent."""
    from kuberay_provider.hooks.kuberay import KubeRayHook
    from kuberay_provider.hooks.retry import RetryPolicy

    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
                  "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                  "users": [{"name": "u", "user": {}}], "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
    monkeypatch.setenv("AIRFLOW_CONN_NOWHERE", json.dumps({"conn_type": "kubernetes",
                                                           "extra": {"kube_config": json.dumps(kubeconfig)}}))
    hook = KubeRayHook(kubernetes_conn_id="nowhere", retry=RetryPolicy(attempts=1))
    with pytest.raises(InvalidParameterError, match=r"^Invalid kind=.*: must be one of \['RayCluster', 'RayJob'\]$"):
        call(hook)


# -- BigQuery I/O -----------------------------------------------------------------------------------------------

def _unreachable() -> Any:
    from kuberay_provider.bigquery.config import BigQueryConfig

    return BigQueryConfig(project="p", rest_endpoint="http://127.0.0.1:9", grpc_endpoint="127.0.0.1:9")


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.int64())])


def _table(name: Any) -> Any:
    from kuberay_provider.bigquery.storage import TableRef

    return TableRef.parse(name, _unreachable())


def _config(**kw: Any) -> Any:
    from kuberay_provider.bigquery.config import BigQueryConfig

    kw.setdefault("project", "p")
    return BigQueryConfig(**kw)


def _storage(fn: str, *args: Any, **kw: Any) -> Any:
    from kuberay_provider.bigquery import storage

    return getattr(storage, fn)(_unreachable(), *args, **kw)


BIGQUERY: list[Case] = [
    ("table-empty", lambda: _table(""), "table"),
    ("table-no-dataset", lambda: _table("events"), "table"),
    ("table-four-parts", lambda: _table("p.d.t.x"), "table"),
    ("table-empty-part", lambda: _table("raw..events"), "table"),
    ("table-not-string", lambda: _table(["raw", "events"]), "table"),
    ("write-mode", lambda: _storage("plan_write", "raw.events", _schema(), "upsert"), "mode"),
    ("write-no-columns", lambda: _storage("plan_write", "raw.events", _schema().remove(0)), "data schema"),
    ("write-bad-table", lambda: _storage("plan_write", "events", _schema()), "table"),
    ("read-bad-table", lambda: _storage("plan_read", "a.b.c.d"), "table"),
    ("query-empty", lambda: _storage("materialize_query", "  "), "query"),
    ("query-bad-destination", lambda: _storage("materialize_query", "SELECT 1", destination="x"), "destination"),
    ("config-project-empty", lambda: _config(project=" "), "project"),
    ("config-rest-no-scheme", lambda: _config(rest_endpoint="127.0.0.1:9050"), "rest_endpoint"),
    ("config-grpc-scheme", lambda: _config(grpc_endpoint="http://127.0.0.1:9060"), "grpc_endpoint"),
    ("config-grpc-no-port", lambda: _config(grpc_endpoint="bigquery.local"), "grpc_endpoint"),
    ("config-two-credentials", lambda: _config(credentials_file="/k.json", credentials_info="{}"), "credentials_info"),
    ("config-credentials-not-json", lambda: _config(credentials_info="key=secret"), "credentials_info"),
    ("config-from-env-no-project", lambda: __import__("kuberay_provider.bigquery.config", fromlist=["x"])
     .BigQueryConfig.from_env({}), "KUBERAY_BQ_PROJECT"),
]


@pytest.mark.parametrize(("make", "parameter"), [c[1:] for c in BIGQUERY], ids=[c[0] for c in BIGQUERY])
def test_bigquery_rejects_naming_the_parameter_without_a_request(make: Callable[[], Any], parameter: str) -> None:
    """Endpoints point at a closed port: a refusal that needed BigQuery would be a BigQueryIOError instead."""
    with pytest.raises(InvalidParameterError) as err:
        make()
    assert err.value.parameter == parameter
    assert "key=secret" not in str(err.value)  # credentials are never echoed


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"table": "raw.events", "query": "SELECT 1"}, "table/query"),
    ({}, "table/query"),
    ({"table": "raw.events", "parallelism": 0}, "parallelism"),
], ids=["table-and-query", "neither", "parallelism-zero"])
def test_read_bigquery_rejects_before_reading(kwargs: dict[str, Any], parameter: str) -> None:
    from kuberay_provider.bigquery.ray_io import read_bigquery

    with pytest.raises(InvalidParameterError) as err:
        read_bigquery(config=_unreachable(), **kwargs)
    assert err.value.parameter == parameter


# -- the kuberay-local command line -----------------------------------------------------------------------------

CLI: list[tuple[str, list[str], str]] = [
    ("port-negative", ["up", "--port", "-1"], "--port must be >= 0"),
    ("port-text", ["up", "--port", "http"], "--port must be an integer"),
    ("timeout-zero", ["down", "--timeout", "0"], "--timeout must be > 0"),
    ("up-timeout-text", ["up", "--timeout", "soon"], "--timeout must be a number"),
    ("worker-nodes-negative", ["up", "--max-worker-nodes", "-1"], "--max-worker-nodes must be >= 0"),
    ("no-command", [], "the following arguments are required: command"),
    ("unknown-command", ["start"], "invalid choice: 'start'"),
    ("option-of-another-command", ["status", "--max-clusters", "2"], "unrecognized arguments: --max-clusters 2"),
]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_cli_rejects_bad_arguments_before_starting_anything(args: list[str], message: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from kuberay_provider.local import cli

    state = tmp_path / "state"
    argv = [*args[:1], "--dir", str(state), *args[1:]] if args and args[0] in ("up", "down", "status") else args
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not state.exists()  # nothing was started: not even the state directory was created


def test_cli_rejects_a_port_above_65535(capsys: pytest.CaptureFixture[str]) -> None:
    from kuberay_provider.local import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["up", "--port", "70000"])


@pytest.mark.parametrize("name", ["raw.events` AS SELECT 1; --", "raw.ev;ents", "ra w.events"])
def test_table_names_that_would_break_out_of_sql_quoting_are_refused(name: str) -> None:
    with pytest.raises(InvalidParameterError):
        _table(name)


# -- slow: values that only go bad once rendered, against the local stack ----------------------------------------

@pytest.mark.slow
def test_rendered_bad_values_are_refused_in_execute_before_any_write(local_stack, airflow_db, namespace, capfd,  # noqa: F811
                                                                     monkeypatch) -> None:
    """Every task renders a bad name/namespace/selector from DAG params: each fails naming the parameter, the
    API server receives no write (no POST/PUT/PATCH/DELETE) and no request for the bad names, and the objects
    already in the namespace are unchanged."""
    from airflow.providers.common.compat.sdk import DAG

    from kuberay_provider import constants as c
    from kuberay_provider.hooks.kuberay import KubeRayHook
    from kuberay_provider.local.clusters import SIMULATE_ANNOTATION
    from kuberay_provider.operators.janitor import RayJanitorOperator
    from kuberay_provider.operators.raycluster import RayClusterCreateOperator, RayClusterDeleteOperator
    from kuberay_provider.operators.rayjob import RayJobOperator
    from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor, RayJobSensor
    from tests.integration.airflow_support import run_dag, task_states
    from tests.integration.test_janitor import START

    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    kube = KubeRayHook()
    keep = RayClusterCreateOperator(task_id="x", name="keep-me", namespace=namespace).build_manifest()
    keep["metadata"]["annotations"] = {SIMULATE_ANNOTATION: "unschedulable"}
    kube.create_object(c.RAYCLUSTER_KIND, keep, namespace)

    def objects() -> dict[str, list[str]]:
        return {kind: sorted(o["metadata"]["name"] for o in kube.list_objects(kind, namespace))
                for kind in (c.RAYJOB_KIND, c.RAYCLUSTER_KIND)}

    present = objects()
    assert present == {c.RAYJOB_KIND: [], c.RAYCLUSTER_KIND: ["keep-me"]}
    params = {"ns": namespace, "bad_name": "Keep_Me", "bad_ns": "Bad_NS", "bad_selector": "app ray"}
    with DAG(dag_id="bad_rendered_values", schedule=None, start_date=START, catchup=False, params=params) as dag:
        RayJobOperator(task_id="rayjob", name="{{ params.bad_name }}", namespace="{{ params.ns }}",
                       entrypoint="python -c 'print(1)'", head={"cpu": 1, "memory": "1Gi"})
        RayJobOperator(task_id="rayjob_ns", namespace="{{ params.bad_ns }}", entrypoint="python -c 'print(1)'")
        RayJobOperator(task_id="rayjob_conn", kubernetes_conn_id="no_such_connection", entrypoint="python x.py")
        RayClusterCreateOperator(task_id="create", name="{{ params.bad_name }}", namespace="{{ params.ns }}")
        RayClusterDeleteOperator(task_id="delete", name="{{ params.bad_name }}", namespace="{{ params.ns }}")
        RayJobSensor(task_id="sensor", name="{{ params.bad_name }}", namespace="{{ params.ns }}")
        RayClusterDeletedSensor(task_id="deleted", label_selector="{{ params.bad_selector }}",
                                namespace="{{ params.ns }}")
        RayJanitorOperator(task_id="janitor", namespaces="{{ params.ns }},{{ params.bad_ns }}")
    before = len(local_stack.server.requests)
    dag_run = run_dag(dag)
    out, err = capfd.readouterr()
    log = out + err
    assert set(task_states(dag_run).values()) == {"failed"}, task_states(dag_run)
    # each names the parameter the DAG set (the operators judge rendered values before building anything)
    for message in ("Invalid namespace='Bad_NS'",
                    "Invalid kubernetes_conn_id='no_such_connection'", "Invalid name='Keep_Me'",
                    "Invalid label_selector='app ray'", "Invalid namespaces='Bad_NS'"):
        assert message in log, (message, [line for line in log.splitlines() if "Invalid " in line])
    sent = [r for r in local_stack.server.requests[before:] if r.external]
    assert [r for r in sent if r.method in ("POST", "PUT", "PATCH", "DELETE")] == []
    assert [r.path for r in sent if f"/namespaces/{namespace}/" in r.path or "Bad_NS" in r.path
            or "Keep_Me" in r.path] == []
    assert objects() == present
    kube.delete_object(c.RAYCLUSTER_KIND, "keep-me", namespace)


@pytest.mark.slow
@pytest.mark.parametrize("call", [h[1] for h in HOOK_CALLS], ids=[h[0] for h in HOOK_CALLS])
def test_hook_bad_kind_sends_nothing_to_the_api_server(local_stack, namespace, monkeypatch, call) -> None:
    from kuberay_provider.hooks.kuberay import KubeRayHook

    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    hook = KubeRayHook()
    before = len(local_stack.server.requests)
    with pytest.raises(InvalidParameterError, match=r"^Invalid kind="):
        call(hook)
    assert [r for r in local_stack.server.requests[before:] if r.external] == []


@pytest.mark.slow
@pytest.mark.parametrize(("call", "parameter"), [
    (lambda h, ns: h.create_object("RayJob", {"metadata": {"name": "Bad_Name", "namespace": ns}, "spec": {}}, ns),
     "name"),
    (lambda h, ns: h.get_object("RayCluster", "x", "Bad_NS"), "namespace"),
    (lambda h, ns: h.delete_object("RayJob", "Bad_Name", ns), "name"),
], ids=["create-bad-name", "get-bad-namespace", "delete-bad-name"])
def test_hook_refuses_bad_names_and_namespaces_before_a_request(local_stack, namespace, monkeypatch, call,
                                                               parameter) -> None:
    from kuberay_provider.hooks.kuberay import KubeRayHook

    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    hook = KubeRayHook()
    before = len(local_stack.server.requests)
    with pytest.raises(InvalidParameterError) as err:
        call(hook, namespace)
    assert err.value.parameter == parameter
    assert [r for r in local_stack.server.requests[before:] if r.external] == []
