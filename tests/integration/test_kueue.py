"""Kueue end to end: RayJobOperator(queue_name=...) on the local stack, whose Kueue-like admission has quota for one
RayJob (``max_clusters=1``). A first queued RayJob holds the quota (its head unschedulable, so it starts no Ray);
the operator's RayJob is created suspended, reported as queued, admitted when the first one ends, then runs on
real Ray, and its ``pre_running_deadline_seconds`` (shorter than its time in the queue) counts from admission.

The same runs carry ``service_account`` (head, workers and the submitter pod run as it) and ``token_auth_secret``
(KubeRay token auth, the token in a Secret): the provider never requests a Secret, so the token can reach no XCom
and no log line. The local double passes ``authOptions`` through to the RayCluster but starts Ray without auth and
serves no Secrets (it models KubeRay's objects, not Ray's authentication)."""

from __future__ import annotations

import time

import pendulum
import pytest

from kuberay_provider import constants as c
from kuberay_provider.naming import TaskInstanceIdentity
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

START = pendulum.datetime(2026, 1, 1, tz="UTC")
QUEUE = "user-queue"
#: long enough for a local Ray head to start after admission, shorter than the time spent queued (sync case)
PRE_RUNNING_DEADLINE = 45
KSA = "ray-workload"
TOKEN_SECRET = "ray-auth"


def _all_xcoms(dag_run) -> list:
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(xcom_model()).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
        return [(row.key, xcom_value(row)) for row in rows]


def _blocker(kube, namespace: str) -> str:
    """A queued RayJob that takes the quota once admitted and never gets a cluster ready (no Ray started)."""
    from kuberay_provider.operators.rayjob import RayJobOperator

    op = RayJobOperator(task_id="blocker", namespace=namespace, entrypoint="python -c pass", queue_name=QUEUE,
                        annotations={"kuberay-local.dev/simulate": "unschedulable"},
                        pre_running_deadline_seconds=600, ttl_seconds_after_finished=0)
    manifest = op.build_manifest(TaskInstanceIdentity(dag_id="kueue", task_id="blocker", run_id="r"), namespace)
    kube.create_rayjob(manifest)
    name = manifest["metadata"]["name"]
    wait_until(lambda: not (kube.get_rayjob(name, namespace) or {}).get("spec", {}).get("suspend"), timeout=30)
    return name


def _queued_job(kube, namespace: str, blocker: str) -> dict:
    jobs = [j for j in kube.list_rayjobs(namespace) if j["metadata"]["name"] != blocker]
    return jobs[0] if jobs and (jobs[0].get("status") or {}).get("jobDeploymentStatus") == "Suspended" else None


@pytest.mark.parametrize(("deferrable", "queued_seconds"), [(False, PRE_RUNNING_DEADLINE + 5), (True, 10)],
                         ids=["sync", "deferrable"])
def test_queued_job_waits_for_quota_then_runs(kube, local_stack, namespace, capfd, deferrable, queued_seconds):
    from airflow.providers.common.compat.sdk import DAG

    from kuberay_provider.operators.rayjob import RayJobOperator

    assert local_stack.max_clusters == 1, "the scenario needs quota for exactly one RayJob"
    blocker = _blocker(kube, namespace)
    secret = TOKEN_SECRET
    since = time.time()
    seen: dict = {}

    def release_after_queued() -> None:
        job = wait_until(lambda: _queued_job(kube, namespace, blocker), timeout=120)
        seen["queued"] = job
        seen["queued_at"] = time.time()
        time.sleep(queued_seconds)
        now = kube.get_rayjob(job["metadata"]["name"], namespace)
        seen["still"] = (now.get("status") or {}).get("jobDeploymentStatus"), now["spec"].get("suspend")
        kube.delete_rayjob(blocker, namespace)  # the first job ends: its quota frees

    helper = in_background(release_after_queued)
    with DAG(dag_id=f"kueue_{int(deferrable)}", schedule=None, start_date=START, catchup=False) as dag:
        RayJobOperator(task_id="train", namespace=namespace, queue_name=QUEUE, priority_class="high",
                       entrypoint="python -c \"print('admitted-and-ran')\"", head={"cpu": 1, "memory": "1Gi"},
                       pre_running_deadline_seconds=PRE_RUNNING_DEADLINE, ttl_seconds_after_finished=0,
                       service_account=KSA, token_auth_secret=secret, deferrable=deferrable)
    dag_run = run_dag(dag)
    join_checked(helper)
    out = capfd.readouterr().out
    assert task_states(dag_run) == {"train": "success"}, out[-3000:]
    result = xcom(dag_run, "train")
    assert result["deployment_status"] == "Complete" and result["job_status"] == "SUCCEEDED"
    assert "[driver] admitted-and-ran" in out
    assert f"queued in LocalQueue '{QUEUE}'" in out
    # while the first job held the quota the second stayed suspended, without a cluster, for longer than its deadline
    queued = seen["queued"]
    assert queued["metadata"]["labels"][c.KUEUE_QUEUE_LABEL] == QUEUE and queued["spec"]["suspend"] is True
    assert not queued["status"].get("rayClusterName")
    assert seen["still"] == ("Suspended", True)
    job = kube.get_rayjob(result["name"], namespace)
    admitted = pendulum.parse(job["status"]["startTime"]).timestamp()
    created = pendulum.parse(job["metadata"]["creationTimestamp"]).timestamp()
    assert admitted - created >= queued_seconds - 1
    assert (job["status"].get("failed") or 0) == 0  # never PreRunningDeadlineExceeded
    # Workload Identity: the submitter pod (whose log the driver lines came from) ran as the KSA
    [submitter] = kube.list_pods(namespace, f"{c.JOB_NAME_LABEL}={result['name']}")
    assert submitter["spec"]["serviceAccountName"] == KSA
    assert job["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token", "secretName": secret}
    # the token cannot be anywhere Airflow writes: the provider never asked the API for a Secret, and its XComs
    # (return value, dashboard link, names) and the task log hold no token material
    from kuberay_provider.hooks.kuberay import USER_AGENT

    mine = [r for r in local_stack.server.requests if r.user_agent == USER_AGENT and r.time >= since]
    assert mine and not [r.path for r in mine if "/secrets" in r.path]
    xcoms = _all_xcoms(dag_run)
    assert {"return_value", "rayjob_name"} <= {key for key, _ in xcoms}
    for word in ("RAY_AUTH_TOKEN", "auth_token", "Bearer"):
        assert word not in repr(xcoms) and word not in out
    wait_until(lambda: kube.list_objects(c.RAYCLUSTER_KIND, namespace) == [], timeout=60)
