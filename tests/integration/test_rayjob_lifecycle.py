"""RayJobOperator, RayJobSensor and RayClusterDeletedSensor end to end: real Airflow (dag.test), the emulated
Kubernetes API over HTTP, the local KubeRay controller and real local Ray clusters."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import pendulum
import pytest

from kuberay_provider import constants as c
from tests.integration.airflow_support import (
    in_background,
    join_checked,
    run_dag,
    task_states,
    wait_until,
    xcom,
    xcom_model,
    xcom_value,
)

pytestmark = pytest.mark.slow

PRINT_AND_SUCCEED = "python -c \"print('hello-from-driver'); print('second line')\""
PRINT_AND_FAIL = "python -c \"import sys; print('boom: training diverged'); sys.exit(3)\""
SLEEP = "python -c \"import time; print('sleeping', flush=True); time.sleep(120)\""
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _dag(dag_id: str):
    from airflow.providers.common.compat.sdk import DAG

    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False)


def _rayjob_op(task_id: str, namespace: str, entrypoint: str, **kwargs):
    from kuberay_provider.operators.rayjob import RayJobOperator

    kwargs.setdefault("ttl_seconds_after_finished", 0)
    kwargs.setdefault("head", {"cpu": 1, "memory": "1Gi"})
    kwargs.setdefault("pre_running_deadline_seconds", 240)
    return RayJobOperator(task_id=task_id, namespace=namespace, entrypoint=entrypoint, **kwargs)


def _rayjobs(kube, namespace):
    return kube.list_rayjobs(namespace)


def _running(kube, namespace):
    jobs = [j for j in _rayjobs(kube, namespace) if (j.get("status") or {}).get("jobStatus") == "RUNNING"]
    return jobs[0] if jobs else None


def _no_cluster_left(local_stack, kube, namespace):
    assert kube.list_objects(c.RAYCLUSTER_KIND, namespace) == []
    assert local_stack.controller.running_clusters() == {}


@pytest.mark.composer
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_success_streams_log_and_teardown_is_confirmed(kube, local_stack, namespace, capfd, deferrable):
    from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor

    if deferrable:  # transient API errors on create and on pod listing are retried
        local_stack.server.faults.fail_next(2, 503, method="POST", path_contains="/rayjobs")
        local_stack.server.faults.fail_next(2, 429, method="GET", path_contains="/pods")
    with _dag(f"lifecycle_success_{int(deferrable)}") as dag:
        run = _rayjob_op("train", namespace, PRINT_AND_SUCCEED, deferrable=deferrable)
        confirm = RayClusterDeletedSensor(
            task_id="confirm", namespace=namespace, poke_interval=1, timeout=120,
            rayjob_name="{{ ti.xcom_pull(task_ids='train', key='rayjob_name') }}",
        )
        run >> confirm.as_teardown(setups=run)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"train": "success", "confirm": "success"}
    result = xcom(dag_run, "train")
    assert result["deployment_status"] == "Complete" and result["job_status"] == "SUCCEEDED"
    assert result["job_id"] and result["cluster_name"].startswith(result["name"])
    assert "svc.cluster.local:8265" in result["dashboard_url"]
    # the "Ray Dashboard" link: the API server's service proxy for the cluster's head Service, not cluster.local
    assert xcom(dag_run, "train", "ray_dashboard_url") == (
        f"{kube.api_client.configuration.host.rstrip('/')}/api/v1/namespaces/{namespace}/services/"
        f"{result['cluster_name']}-head-svc:dashboard/proxy/")
    out = capfd.readouterr().out
    assert "[driver] hello-from-driver" in out and "[driver] second line" in out
    # default cleanup policy keeps the finished RayJob as a record; its cluster is gone
    [job] = _rayjobs(kube, namespace)
    assert job["status"]["jobDeploymentStatus"] == "Complete"
    _no_cluster_left(local_stack, kube, namespace)


@pytest.mark.composer
def test_app_failure_fails_task_with_reason_and_log_tail_and_deletes_everything(kube, local_stack, namespace, capfd):
    with _dag("lifecycle_app_failure") as dag:
        _rayjob_op("train", namespace, PRINT_AND_FAIL)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"train": "failed"}
    out = capfd.readouterr().out
    assert "reason=AppFailed" in out
    assert "Last" in out and "boom: training diverged" in out
    wait_until(lambda: _rayjobs(kube, namespace) == [], timeout=60)
    _no_cluster_left(local_stack, kube, namespace)


def test_active_deadline_exceeded_fails_and_cleans_up(kube, local_stack, namespace, capfd):
    with _dag("lifecycle_deadline") as dag:
        _rayjob_op("train", namespace, SLEEP, active_deadline_seconds=15)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"train": "failed"}
    out = capfd.readouterr().out
    assert "reason=DeadlineExceeded" in out and "activeDeadlineSeconds" in out
    wait_until(lambda: _rayjobs(kube, namespace) == [], timeout=60)
    _no_cluster_left(local_stack, kube, namespace)


def test_rayjob_deleted_mid_run_fails_the_task(kube, local_stack, namespace, capfd):
    def delete_when_running():
        job = wait_until(lambda: _running(kube, namespace), timeout=120)
        kube.delete_rayjob(job["metadata"]["name"], namespace)

    helper = in_background(delete_when_running)
    with _dag("lifecycle_deleted") as dag:
        _rayjob_op("train", namespace, SLEEP)
    dag_run = run_dag(dag)
    join_checked(helper)
    assert task_states(dag_run) == {"train": "failed"}
    assert "was deleted while the task waited" in capfd.readouterr().out
    wait_until(lambda: _rayjobs(kube, namespace) == [], timeout=60)
    # Kubernetes' garbage collector follows the ownerReferences: the RayCluster, the submitter Job, every pod and
    # the head service go, and with them every Ray process (rayjob-status-sequences.md §9).
    wait_until(lambda: kube.list_objects(c.RAYCLUSTER_KIND, namespace) == [], timeout=30)
    from kubernetes import client, config

    # A client of the test's own (not the provider's user agent: the RBAC audit below judges only the provider).
    api = config.new_client_from_config(config_file=str(local_stack.kubeconfig_path))
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    wait_until(lambda: batch.list_namespaced_job(namespace).items == [], timeout=30)
    wait_until(lambda: core.list_namespaced_pod(namespace).items == [], timeout=30)
    wait_until(lambda: core.list_namespaced_service(namespace).items == [], timeout=30)
    wait_until(lambda: local_stack.controller.running_clusters() == {}, timeout=30)
    assert local_stack.leftover_ray_pids() == []


def test_execution_timeout_runs_on_kill_which_deletes_the_rayjob(kube, local_stack, namespace, capfd):
    with _dag("lifecycle_on_kill") as dag:
        _rayjob_op("train", namespace, SLEEP, timeout=3600, execution_timeout=dt.timedelta(seconds=25))
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"train": "failed"}
    assert "the task was killed" in capfd.readouterr().out
    wait_until(lambda: _rayjobs(kube, namespace) == [], timeout=60)
    _no_cluster_left(local_stack, kube, namespace)


@pytest.mark.composer
def _stored_dashboard_link(dag_id: str) -> str | None:
    """The "Ray Dashboard" link the running task stored (what the UI renders), read from the metadata DB."""
    from airflow.utils.session import create_session

    from kuberay_provider.links import DASHBOARD_XCOM_KEY

    with create_session() as session:
        row = session.query(xcom_model()).filter_by(dag_id=dag_id, task_id="train", key=DASHBOARD_XCOM_KEY).first()
        return xcom_value(row) if row is not None else None


def _open(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_retry_reattaches_to_the_running_job_instead_of_submitting_again(kube, local_stack, namespace, capfd,
                                                                         record_property):
    faults = local_stack.server.faults
    opened: dict[str, object] = {}

    def break_first_try_once_running():
        wait_until(lambda: _running(kube, namespace), timeout=300)
        # While the job runs, the stored dashboard link opens the Ray dashboard through the API server's service
        # proxy (what a browser with the user's Kubernetes credentials reaches), not *.svc.cluster.local.
        opened["link"] = link = wait_until(lambda: _stored_dashboard_link("lifecycle_reattach"), timeout=60)
        opened["version"] = _open(f"{link}api/version")
        # A permission glitch kills try 1's wait (its watch reconnects into a 403) and its cleanup; the RayJob
        # keeps running.
        faults.fail_next(1, 403, method="GET", path_contains="/rayjobs")
        faults.fail_next(3, 403, method="DELETE", path_contains="/rayjobs")
        faults.drop_watches()

    helper = in_background(break_first_try_once_running)
    with _dag("lifecycle_reattach") as dag:
        _rayjob_op("train", namespace, "python -c \"import time; time.sleep(20); print('done once')\"",
                   retries=1, retry_delay=dt.timedelta(seconds=0))
    dag_run = run_dag(dag)
    join_checked(helper)
    faults.clear()
    assert task_states(dag_run) == {"train": "success"}
    result = xcom(dag_run, "train")
    assert result["reattached"] is True
    [job] = _rayjobs(kube, namespace)  # one RayJob object for both tries
    assert job["metadata"]["labels"][c.TRY_NUMBER_LABEL] == "1"
    assert job["status"]["succeeded"] == 1 and job["status"]["failed"] == 0
    creates = [r for r in local_stack.server.external_requests()
               if r.method == "POST" and r.path.endswith(f"/namespaces/{namespace}/rayjobs")]
    assert len(creates) == 1
    assert "Re-attaching to RayJob" in capfd.readouterr().out
    link = opened["link"]
    assert isinstance(link, str) and link.startswith(f"{local_stack.api_url}/api/v1/namespaces/{namespace}/services/")
    assert link.endswith("-head-svc:dashboard/proxy/")
    status, body = opened["version"]
    assert status == 200 and json.loads(body)["ray_version"], body
    # once the cluster is gone the link answers like a real API server: the Service is deleted (404) or, while the
    # garbage collector has not reached it yet, has no endpoint (503)
    status, body = _open(f"{link}api/version")
    record_property("dashboard_link_after_teardown", status)
    assert status in (404, 503) and json.loads(body)["kind"] == "Status", body


def test_dropped_watch_and_410_gone_are_resumed(kube, local_stack, namespace):
    faults = local_stack.server.faults

    def disturb_watch():
        wait_until(lambda: _running(kube, namespace), timeout=120)
        faults.drop_watches()
        wait_until(lambda: any(r.is_watch for r in local_stack.server.external_requests()[-5:]), timeout=30)
        faults.expire_watches()

    before = len(local_stack.server.requests)
    helper = in_background(disturb_watch)
    with _dag("lifecycle_watch_resume") as dag:
        _rayjob_op("train", namespace, "python -c \"import time; time.sleep(10); print('ok')\"")
    dag_run = run_dag(dag)
    join_checked(helper)
    assert task_states(dag_run) == {"train": "success"}
    requests = [r for r in local_stack.server.requests[before:] if r.external and "/rayjobs" in r.path]
    watches = [r for r in requests if r.is_watch]
    assert len(watches) >= 3  # first watch, after the drop, after the 410
    assert any(r.query.get("resourceVersion") for r in watches[1:])  # resumed, not replayed from scratch
    name = xcom(dag_run, "train")["name"]
    gets = [r for r in requests if r.method == "GET" and not r.is_watch and r.path.endswith(f"/rayjobs/{name}")]
    assert len(gets) >= 2  # initial read + the re-list after 410


def test_rayjob_sensor_reports_validation_failed(kube, local_stack, namespace, capfd):
    from kuberay_provider import specs
    from kuberay_provider.sensors.rayjob import RayJobSensor

    name = "rejected-by-kuberay"
    manifest = specs.build_rayjob(
        name=name, namespace=namespace, job=specs.JobSettings(entrypoint="python -V"),
        cluster_spec=specs.build_ray_cluster_spec(head=specs.NodeGroup(), worker_groups=[],
                                                  pod=specs.PodSettings(image="rayproject/ray:2.60.0")),
    )
    # the API server accepts a TTL without shutdownAfterJobFinishes; KubeRay's operator then sets ValidationFailed
    manifest["spec"]["shutdownAfterJobFinishes"] = False
    kube.create_rayjob(manifest)
    with _dag("sensor_validation_failed") as dag:
        RayJobSensor(task_id="wait", name=name, namespace=namespace, poke_interval=1, timeout=60)
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"wait": "failed"}
    out = capfd.readouterr().out
    assert "jobDeploymentStatus=ValidationFailed" in out and "KubeRay rejected the RayJob spec" in out
    kube.delete_rayjob(name, namespace)


def test_missing_connection_fails_before_anything_is_created(kube, local_stack, namespace):
    before = len(local_stack.server.external_requests())
    with _dag("lifecycle_missing_conn") as dag:
        _rayjob_op("train", namespace, PRINT_AND_SUCCEED, kubernetes_conn_id="no_such_connection")
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"train": "failed"}
    assert [r for r in local_stack.server.external_requests()[before:] if r.method == "POST"] == []


def test_shared_cluster_operators_and_janitor(kube, local_stack, namespace):
    from kuberay_provider.operators.janitor import RayJanitorOperator
    from kuberay_provider.operators.raycluster import RayClusterCreateOperator, RayClusterDeleteOperator

    with _dag("lifecycle_shared_cluster") as dag:
        create = RayClusterCreateOperator(task_id="create", name="shared", namespace=namespace,
                                          head={"cpu": 1, "memory": "1Gi"}, ready_timeout=240)
        job = _rayjob_op("on_shared", namespace, PRINT_AND_SUCCEED, cluster_selector="shared")
        delete = RayClusterDeleteOperator(task_id="delete", name="shared", namespace=namespace)
        sweep = RayJanitorOperator(task_id="janitor", namespaces=[namespace], trigger_rule="all_done")
        create >> job >> delete >> sweep
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"create": "success", "on_shared": "success", "delete": "success",
                                    "janitor": "success"}
    swept = xcom(dag_run, "janitor")
    # the finished task's RayJob record is swept because its task instance is done
    assert [s["name"] for s in swept] == [xcom(dag_run, "on_shared")["name"]]
    assert "task instance is success" in swept[0]["reason"]
    wait_until(lambda: _rayjobs(kube, namespace) == [], timeout=60)
    _no_cluster_left(local_stack, kube, namespace)


def test_zz_rbac_role_grants_exactly_what_the_provider_used(local_stack):
    """Runs last in this module: every request the provider made above must be allowed by deploy/rbac.yaml, and
    every rule there must have been needed."""
    from kuberay_provider.hooks.kuberay import USER_AGENT
    from tests.security.rbac import allowed_rules, requests_as_rbac

    used = requests_as_rbac(r for r in local_stack.server.requests if r.user_agent == USER_AGENT)
    if not used:
        pytest.skip("audits the requests of the lifecycle tests above; run it together with them")
    granted = allowed_rules()
    assert used - granted == set(), f"the provider needs rules deploy/rbac.yaml lacks: {sorted(used - granted)}"
    assert granted - used == set(), f"deploy/rbac.yaml grants rules the provider never used: {sorted(granted - used)}"
