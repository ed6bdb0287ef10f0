"""The local spark-operator double: SparkApplications run with local spark-submit, seen through the official
kubernetes client and through the cncf provider's SparkKubernetesOperator running in Airflow (dag.test)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import jinja2
import pendulum
import pytest
import yaml

from kuberay_provider.local import podlogs, sparksubmit
from kuberay_provider.local.sparkapps import GROUP, PLURAL, VERSION
from tests.integration.airflow_support import run_dag, task_states, wait_until
from tests.integration.conftest import TEST_USER_AGENT, airflow_db  # noqa: F401  (fixture)

SPARK_DIR = Path(__file__).parent / "spark"
MANIFEST = SPARK_DIR / "spark_application.yaml"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
#: Namespaces where SparkKubernetesOperator ran in this module (audited against deploy/rbac.yaml at the end).
OPERATOR_NAMESPACES: list[str] = []


# ----------------------------------------------------------------- helpers
def manifest(name: str, script: str, arguments: list[str] | None = None) -> dict[str, Any]:
    """The example manifest rendered the way SparkKubernetesOperator renders it, under ``name``."""
    text = jinja2.Environment().from_string(MANIFEST.read_text()).render(
        params={"main_application_file": f"local://{SPARK_DIR / script}", "arguments": arguments or []})
    body = yaml.safe_load(text)
    body["metadata"]["name"] = name
    return body


@pytest.fixture
def k8s(local_stack):
    """``(CustomObjectsApi, CoreV1Api)`` of the official client against the local stack."""
    from kubernetes import client, config

    api = config.new_client_from_config(str(local_stack.kubeconfig_path))
    api.user_agent = TEST_USER_AGENT  # so the RBAC audit below can tell the test's own inspection apart
    return client.CustomObjectsApi(api), client.CoreV1Api(api)


def get_app(custom, namespace: str, name: str) -> dict[str, Any]:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def app_state(custom, namespace: str, name: str) -> str:
    return ((get_app(custom, namespace, name).get("status") or {}).get("applicationState") or {}).get("state", "")


def wait_state(custom, namespace: str, name: str, *states: str, timeout: float = 120) -> dict[str, Any]:
    wait_until(lambda: app_state(custom, namespace, name) in states, timeout=timeout)
    return get_app(custom, namespace, name)


def pod_log(core, namespace: str, pod: str, **kwargs: Any) -> str:
    resp = core.read_namespaced_pod_log(pod, namespace, _preload_content=False, **kwargs)
    return resp.data.decode()


def pod_absent(core, namespace: str, name: str) -> bool:
    return name not in {p.metadata.name for p in core.list_namespaced_pod(namespace).items}


# ----------------------------------------------------------------- pure units (fast)
def test_cri_log_render_honours_timestamps_since_and_tail(tmp_path):
    writer = podlogs.CRILogWriter(tmp_path / "c.log")
    writer.write("stdout", b"first\n")
    writer.write("stderr", b"second\n")
    data = (tmp_path / "c.log").read_bytes() + b"2026-01-01T00:00:00.000000000Z stdout F partial-no-newline"
    assert podlogs.render(data) == b"first\nsecond\n"
    stamped = podlogs.render(data, timestamps=True).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["first", "second"]
    assert dt.datetime.fromisoformat(stamped[0].split(" ")[0][:26] + "+00:00").year >= 2026
    assert podlogs.render(data, tail_lines=1) == b"second\n"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    assert podlogs.render(data, since_seconds=10, now=later) == b""


def test_spark_submit_command_maps_the_spec(tmp_path):
    spec = manifest("x", "count_range.py", ["1000"])["spec"]
    spec["sparkConf"]["spark.master"] = "k8s://https://example:443"
    spec["driver"]["cores"] = 8
    argv = sparksubmit.build_command(spec, app_name="x", app_id="spark-abc", work_dir=tmp_path)
    assert argv[1:5] == ["--master", "local[2]", "--name", "x"]
    assert argv[-2:] == [str(SPARK_DIR / "count_range.py"), "1000"]
    confs = {argv[i + 1] for i, a in enumerate(argv) if a == "--conf"}
    assert {"spark.ui.enabled=false", "spark.sql.shuffle.partitions=2", "spark.hadoop.fs.defaultFS=file:///",
            "spark.app.id=spark-abc", f"spark.local.dir={tmp_path / 'local'}"} <= confs
    assert not any(c.startswith("spark.master=") for c in confs)
    assert argv[argv.index("--driver-memory"):argv.index("--driver-memory") + 2] == ["--driver-memory", "512m"]
    env = sparksubmit.process_env(spec, tmp_path)
    assert env["ETL_STAGE"] == "test" and env["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_main_application_file_maps_to_the_local_file_system():
    assert sparksubmit.local_path("local:///opt/app/job.py") == Path("/opt/app/job.py")
    assert sparksubmit.local_path("file:///opt/app/job.py") == Path("/opt/app/job.py")
    assert sparksubmit.local_path("/opt/app/job.py") == Path("/opt/app/job.py")
    with pytest.raises(sparksubmit.SubmissionError, match="gs://"):
        sparksubmit.local_path("gs://bucket/job.py")


def test_validation_rejects_what_cannot_be_submitted():
    spec = manifest("x", "count_range.py")["spec"]
    assert sparksubmit.validate(spec) == []
    bad = {**spec, "type": "R", "mainApplicationFile": "s3a://bucket/job.py"}
    bad.pop("sparkVersion")
    errors = " | ".join(sparksubmit.validate(bad))
    assert "spec.sparkVersion: Required value" in errors and "R applications" in errors and "s3a://" in errors


# ----------------------------------------------------------------- against the local stack
@pytest.mark.slow
def test_application_completes_with_driver_pod_status_and_log(local_stack, k8s, namespace):
    custom, core = k8s
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest("count", "count_range.py",
                                                                                         ["1000"]))
    app = wait_state(custom, namespace, "count", "COMPLETED", "FAILED", timeout=150)
    status = app["status"]
    assert status["applicationState"] == {"state": "COMPLETED"}
    assert status["driverInfo"]["podName"] == "count-driver" and status["terminationTime"]
    pod = core.read_namespaced_pod("count-driver", namespace)
    assert pod.status.phase == "Succeeded"
    term = pod.status.container_statuses[0].state.terminated
    assert (pod.status.container_statuses[0].name, term.exit_code, term.reason) == (
        "spark-kubernetes-driver", 0, "Completed")
    labels = pod.metadata.labels
    assert labels["spark-role"] == "driver" and labels["sparkoperator.k8s.io/app-name"] == "count"
    assert labels["spark-app-selector"] == status["sparkApplicationId"]
    assert labels["app.kubernetes.io/part-of"] == "etl"  # spec.driver.labels
    assert pod.metadata.owner_references[0].uid == app["metadata"]["uid"]
    log = pod_log(core, namespace, "count-driver")
    assert "RESULT even_count=500 app=count" in log
    stamped = pod_log(core, namespace, "count-driver", timestamps=True).splitlines()
    assert all(line[:4].isdigit() and line.split(" ", 1)[0].endswith("Z") for line in stamped)
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "count")
    wait_until(lambda: pod_absent(core, namespace, "count-driver"), timeout=30)


@pytest.mark.slow
def test_failing_driver_fails_application_and_pod(local_stack, k8s, namespace):
    custom, core = k8s
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest("doomed", "fail_fast.py"))
    app = wait_state(custom, namespace, "doomed", "COMPLETED", "FAILED")
    assert app["status"]["applicationState"] == {
        "state": "FAILED", "errorMessage": "driver container failed with ExitCode: 2, Reason: Error"}
    pod = core.read_namespaced_pod("doomed-driver", namespace)
    assert pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 2
    assert "boom: input table missing" in pod_log(core, namespace, "doomed-driver")


@pytest.mark.slow
def test_invalid_spec_fails_submission_without_a_driver(local_stack, k8s, namespace):
    custom, core = k8s
    body = manifest("invalid", "count_range.py")
    del body["spec"]["mainApplicationFile"]
    body["spec"]["timeToLiveSeconds"] = 1
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    app = wait_state(custom, namespace, "invalid", "FAILED", timeout=30)
    assert app["status"]["applicationState"]["errorMessage"] == (
        "failed to submit spark application: spec.mainApplicationFile: Required value")
    assert pod_absent(core, namespace, "invalid-driver")
    # spec.timeToLiveSeconds: the finished application is deleted by the controller.
    wait_until(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"] == [],
               timeout=30)


@pytest.mark.slow
def test_one_app_at_a_time_and_deletion_kills_the_process_group(local_stack, k8s, namespace):
    custom, core = k8s
    spark = local_stack.spark_controller
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest("sleeper", "sleep_forever.py"))
    wait_state(custom, namespace, "sleeper", "RUNNING")
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest("queued", "fail_fast.py"))
    wait_until(lambda: "sleeping driver up" in pod_log(core, namespace, "sleeper-driver"), timeout=60)
    pids = spark.running()[(namespace, "sleeper")]
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids]
    assert any(b"java" in c and b"org.apache.spark.deploy.SparkSubmit" in c for c in cmdlines)
    # The second application waits, SUBMITTED, with an unschedulable driver pod.
    assert app_state(custom, namespace, "queued") == "SUBMITTED"
    queued_pod = core.read_namespaced_pod("queued-driver", namespace)
    assert queued_pod.status.phase == "Pending"
    assert queued_pod.status.conditions[0].reason == "Unschedulable"

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "sleeper")
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), timeout=30)
    wait_until(lambda: pod_absent(core, namespace, "sleeper-driver"), timeout=30)
    # The slot is free: the queued application runs now (and fails as scripted).
    app = wait_state(custom, namespace, "queued", "FAILED", "COMPLETED")
    assert app["status"]["applicationState"]["state"] == "FAILED"
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "queued")
    assert spark.running() == {}


# ----------------------------------------------------------------- SparkKubernetesOperator in Airflow
def _spark_dag(dag_id: str, namespace: str, script: str, arguments: list[str], deferrable: bool = False):
    from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import SparkKubernetesOperator
    from airflow.providers.common.compat.sdk import DAG

    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False,
             template_searchpath=[str(SPARK_DIR)]) as dag:
        SparkKubernetesOperator(
            task_id="etl", namespace=namespace, application_file="spark_application.yaml",
            params={"main_application_file": f"local://{SPARK_DIR / script}", "arguments": arguments},
            deferrable=deferrable)
    return dag


@pytest.fixture
def airflow_env(local_stack, airflow_db, monkeypatch):  # noqa: F811
    """The stack's ``kubernetes_default`` connection (only) in the environment of the in-process Airflow.

    Not ``KUBECONFIG``: in deferrable mode KubernetesPodOperator turns ``$KUBECONFIG`` into the trigger's
    ``config_dict``, and the trigger's AsyncKubernetesHook rejects a connection that also has ``kube_config_path``
    ("Options kube_config_path, kube_config, in_cluster, and config_dict are mutually exclusive").
    """
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", local_stack.env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
    assert "kube_config_path" in os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"]


@pytest.mark.slow
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_spark_kubernetes_operator_completes_and_logs_driver_output(airflow_env, k8s, namespace, capfd, deferrable):
    custom, core = k8s
    OPERATOR_NAMESPACES.append(namespace)
    started = time.monotonic()
    dag_run = run_dag(_spark_dag(f"spark_ok_{deferrable}", namespace, "count_range.py", ["1000"], deferrable))
    elapsed = time.monotonic() - started
    out, err = capfd.readouterr()
    assert task_states(dag_run) == {"etl": "success"}, out[-3000:] + err[-3000:]
    assert "RESULT even_count=500" in out + err
    assert "trigger emitted an error event" not in out + err
    # delete_on_termination (default): the operator deleted the SparkApplication, the controller its driver pod.
    assert custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"] == []
    wait_until(lambda: core.list_namespaced_pod(namespace).items == [], timeout=30)
    print(f"SparkKubernetesOperator success run ({'deferrable' if deferrable else 'sync'}): {elapsed:.1f}s")


@pytest.mark.slow
def test_spark_kubernetes_operator_fails_with_a_failing_driver(airflow_env, k8s, namespace, capfd):
    custom, _ = k8s
    OPERATOR_NAMESPACES.append(namespace)
    dag_run = run_dag(_spark_dag("spark_fail", namespace, "fail_fast.py", []))
    out, err = capfd.readouterr()
    assert task_states(dag_run) == {"etl": "failed"}
    assert "boom: input table missing" in out + err
    assert "ExitCode: 2" in out + err or "returned a failure" in out + err
    [app] = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    assert app["status"]["applicationState"]["state"] == "FAILED"


@pytest.mark.slow
def test_zz_spark_role_grants_exactly_what_spark_kubernetes_operator_used(local_stack):
    """Runs last in this module: every request SparkKubernetesOperator made above (sync success, sync failure,
    deferrable success: the retraining pipeline's ``spark_operator`` ETL step) is granted by the
    ``airflow-kuberay-spark`` Role of deploy/rbac.yaml, and every rule of that Role was needed."""
    from tests.security.rbac import SPARK_ROLE, allowed_rules, requests_as_rbac

    if len(OPERATOR_NAMESPACES) < 3:
        pytest.skip("audits the SparkKubernetesOperator runs of the tests above; run it together with them")
    records = [r for r in local_stack.server.requests if r.external and r.user_agent != TEST_USER_AGENT
               and any(f"/namespaces/{ns}/" in r.path for ns in OPERATOR_NAMESPACES)]
    used = requests_as_rbac(records)
    print("SparkKubernetesOperator used:", sorted(used))
    granted = allowed_rules(role=SPARK_ROLE)
    assert used - granted == set(), f"{SPARK_ROLE} lacks rules SparkKubernetesOperator needs: {sorted(used - granted)}"
    assert granted - used == set(), f"{SPARK_ROLE} grants rules SparkKubernetesOperator never used: {sorted(granted - used)}"
