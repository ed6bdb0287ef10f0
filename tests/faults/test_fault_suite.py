"""The fault suite: every scenario converges to the right task state and leaves no RayJob (unless the policy keeps
it), no RayCluster and no Ray process. Real Airflow (dag.test), the emulated API over HTTP, real local Ray."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kuberay_provider import constants as c
from tests.integration.airflow_support import in_background, join_checked, run_dag, task_states, wait_until, xcom

pytestmark = pytest.mark.slow

SIMULATE = "kuberay-local.dev/simulate"
SLEEP = "python -c \"import time; print('sleeping', flush=True); time.sleep(300)\""


def _dag(dag_id):
    import pendulum
    from airflow.providers.common.compat.sdk import DAG

    return DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)


def _op(namespace, entrypoint, task_id="train", **kwargs):
    from kuberay_provider.operators.rayjob import RayJobOperator

    kwargs.setdefault("ttl_seconds_after_finished", 0)
    kwargs.setdefault("head", {"cpu": 1, "memory": "1Gi"})
    kwargs.setdefault("pre_running_deadline_seconds", 240)
    return RayJobOperator(task_id=task_id, namespace=namespace, entrypoint=entrypoint, **kwargs)


def _running(kube, namespace):
    jobs = [j for j in kube.list_rayjobs(namespace) if (j.get("status") or {}).get("jobStatus") == "RUNNING"]
    return jobs[0] if jobs else None


def _run_one(dag_id, namespace, entrypoint, **kwargs):
    with _dag(dag_id) as dag:
        _op(namespace, entrypoint, **kwargs)
    return run_dag(dag)


# -- cluster-side faults -------------------------------------------------------------------------------------
def test_submitter_failure(kube, namespace, capfd, assert_nothing_left):
    run = _run_one("fault_submitter", namespace, "python -V", annotations={SIMULATE: "submitter-failure"})
    assert task_states(run) == {"train": "failed"}
    assert "reason=SubmissionFailed" in capfd.readouterr().out
    assert_nothing_left()


# The evidence comes from the head pod's status or, once KubeRay removed the cluster, from its Warning events.
@pytest.mark.parametrize(("knob", "evidence"), [("image-pull-error", "ImagePull"), ("unschedulable", "Unschedulable")])
def test_cluster_never_ready_hits_pre_running_deadline(kube, namespace, capfd, assert_nothing_left, knob, evidence):
    run = _run_one(f"fault_{knob.replace('-', '_')}", namespace, "python -V", annotations={SIMULATE: knob},
                   pre_running_deadline_seconds=8)
    assert task_states(run) == {"train": "failed"}
    out = capfd.readouterr().out
    relevant = "\n".join(line for line in out.splitlines() if "RayJob" in line or "pod " in line or "rror" in line)
    assert "reason=PreRunningDeadlineExceeded" in out, relevant
    assert evidence in out, relevant  # the head pod's reason is surfaced
    assert_nothing_left()


def test_raycluster_deleted_mid_run_is_recreated_and_the_task_succeeds(kube, namespace, assert_nothing_left):
    """KubeRay's usual K8sJobMode path (rayjob-status-sequences.md §7): the operator re-creates the RayCluster under
    the same name, the submitter's next pod re-submits the same job id, the job re-runs from scratch and succeeds.
    The task just keeps waiting: it ends in success, and nothing leaks."""
    seen: dict = {}

    def delete_cluster():
        job = wait_until(lambda: _running(kube, namespace), timeout=180)
        seen.update(name=job["metadata"]["name"], cluster=job["status"]["rayClusterName"],
                    job_id=job["status"]["jobId"], started=job["status"]["rayJobInfo"]["startTime"])
        kube.delete_object(c.RAYCLUSTER_KIND, seen["cluster"], namespace)

    helper = in_background(delete_cluster)
    run = _run_one("fault_cluster_deleted", namespace, "python -c \"import time; time.sleep(8); print('ok')\"",
                   timeout=420)
    join_checked(helper)
    assert task_states(run) == {"train": "success"}
    final = kube.get_rayjob(seen["name"], namespace)["status"]
    assert (final["jobDeploymentStatus"], final["jobStatus"]) == ("Complete", "SUCCEEDED")
    assert (final["rayClusterName"], final["jobId"]) == (seen["cluster"], seen["job_id"])  # same names, re-submitted
    assert final["rayJobInfo"]["startTime"] != seen["started"]  # the job re-ran from scratch
    events = kube.list_events(namespace, f"involvedObject.name={seen['name']},involvedObject.kind=RayJob")
    assert [e["reason"] for e in events].count("CreatedRayCluster") == 2
    assert_nothing_left(rayjobs_kept=1)


def test_ray_head_killed_mid_run_converges(kube, local_stack, namespace, assert_nothing_left, record_property):
    def kill_head():
        wait_until(lambda: _running(kube, namespace), timeout=180)
        pids = wait_until(lambda: local_stack.ray_pids(), timeout=30)
        os.killpg(os.getpgid(min(pids)), signal.SIGKILL)

    helper = in_background(kill_head)
    run = _run_one("fault_head_killed", namespace, "python -c \"import time; time.sleep(15); print('ok')\"", timeout=420)
    join_checked(helper)
    # Timing decides (the job may finish on a restarted head, or fail with it): the outcome is recorded in the
    # report (junit property "outcome"); either way the task ends, the failure path deletes the RayJob, and no
    # RayCluster or Ray process is left.
    state = task_states(run)["train"]
    record_property("outcome", state)
    print(f"head killed mid-run: the task ended in {state}")
    assert state in ("success", "failed")
    assert_nothing_left(rayjobs_kept=1 if state == "success" else 0)


# -- Airflow-side faults -------------------------------------------------------------------------------------
def test_deferral_deadline_deletes_the_job(kube, namespace, capfd, assert_nothing_left):
    # activeDeadlineSeconds (derived from timeout by default) is set well beyond the wait, so the trigger's own
    # deadline is what ends this wait; the operator must then delete the still-running RayJob.
    run = _run_one("fault_deferral_timeout", namespace, SLEEP, deferrable=True, timeout=20, active_deadline_seconds=600)
    assert task_states(run) == {"train": "failed"}
    assert "did not finish before the task's deadline" in capfd.readouterr().out
    assert_nothing_left()


WORKER = textwrap.dedent('''
    import os, sys, pendulum
    sys.path.insert(0, os.getcwd())
    from airflow.providers.common.compat.sdk import DAG
    from kuberay_provider.operators.rayjob import RayJobOperator
    from tests.integration.airflow_support import run_dag
    with DAG("fault_worker_sigkill", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        RayJobOperator(task_id="train", namespace=sys.argv[1], entrypoint=sys.argv[2], ttl_seconds_after_finished=0,
                       head={"cpu": 1, "memory": "1Gi"})
    when = pendulum.datetime(2026, 3, 1, tz="UTC")
    run = run_dag(dag, run_after=when, logical_date=when)
    print("FINAL", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}, flush=True)
''')


def test_worker_sigkill_then_rerun_submits_exactly_one_ray_job(kube, local_stack, namespace, tmp_path, assert_nothing_left):
    marker = tmp_path / "starts.txt"
    entrypoint = (f"python -c \"open('{marker}', 'a').write('start\\n'); import time; time.sleep(20); print('trained')\"")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, **local_stack.env}
    first = subprocess.Popen([sys.executable, str(script), namespace, entrypoint], env=env, cwd=os.getcwd(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: _running(kube, namespace), timeout=180)
        time.sleep(2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the worker dies mid-wait: no on_kill, no cleanup
        first.wait()
    assert _running(kube, namespace) is not None  # the job outlives the worker
    second = subprocess.run([sys.executable, str(script), namespace, entrypoint], env=env, cwd=os.getcwd(),
                            capture_output=True, text=True, timeout=400)
    assert "FINAL {'train': 'success'}" in second.stdout, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Re-attaching to RayJob" in second.stdout + second.stderr or "Found existing RayJob" in second.stdout + second.stderr
    assert marker.read_text().count("start") == 1  # exactly one Ray job ever ran
    creates = [r for r in local_stack.server.external_requests()
               if r.method == "POST" and r.path.endswith(f"/namespaces/{namespace}/rayjobs") and r.status == 201]
    assert len(creates) == 1
    assert_nothing_left(rayjobs_kept=1)


# -- API-side faults -----------------------------------------------------------------------------------------
def test_bursts_of_429_500_503_are_retried(kube, local_stack, namespace, assert_nothing_left):
    """The provider meets each burst itself: 429s on its first list, 500s on the create, 503s on the watch it must
    re-open mid-wait. The in-process checks below keep the test's own HTTP calls from eating the faults."""
    from kuberay_provider.hooks.kuberay import USER_AGENT

    faults = local_stack.server.faults
    rayjobs = f"/namespaces/{namespace}/rayjobs"

    def burst_mid_wait():
        wait_until(lambda: local_stack.controller.running_clusters(), timeout=180)  # no HTTP: cannot eat a fault
        faults.fail_next(3, 503, path_contains=rayjobs)
        faults.drop_watches()  # the wait has to reconnect through the 503s

    faults.fail_next(3, 429, method="GET", path_contains=rayjobs)  # the list of earlier tries
    faults.fail_next(2, 500, method="POST", path_contains=rayjobs)  # the create
    helper = in_background(burst_mid_wait)
    run = _run_one("fault_bursts", namespace, "python -c \"import time; time.sleep(10); print('ok')\"")
    join_checked(helper)
    faults.clear()
    assert task_states(run) == {"train": "success"}
    met = [r.status for r in local_stack.server.requests if r.user_agent == USER_AGENT and rayjobs in r.path]
    assert {429, 500, 503} <= set(met), met  # the provider was answered with each kind of error, and recovered
    assert met.count(201) == 1  # one RayJob created despite the failed POSTs
    assert_nothing_left(rayjobs_kept=1)


def test_api_outage_of_60s_mid_wait_is_survived_without_busy_loop(kube, local_stack, namespace, assert_nothing_left):
    faults = local_stack.server.faults
    window: dict[str, float] = {}

    def outage():
        wait_until(lambda: _running(kube, namespace), timeout=180)
        window["start"] = time.monotonic()
        window["index"] = len(local_stack.server.requests)
        faults.outage(60)

    helper = in_background(outage)
    run = _run_one("fault_outage", namespace, "python -c \"import time; time.sleep(30); print('ok')\"",
                   deferrable=True)
    join_checked(helper)
    assert task_states(run) == {"train": "success"}
    during = [r for r in local_stack.server.requests[window["index"]:] if r.external and r.status == 503]
    print(f"requests answered 503 during the 60 s outage: {len(during)}")
    assert 0 < len(during) < 60, len(during)  # backed off: well under one request per second
    assert_nothing_left(rayjobs_kept=1)


def test_responses_slower_than_the_client_timeout_are_retried(kube, local_stack, namespace, monkeypatch,
                                                              assert_nothing_left):
    import json

    conn = json.loads(local_stack.env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
    conn["extra"]["request_timeout"] = 5  # the connection's per-request timeout (default 30 s)
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(conn))
    local_stack.server.faults.delay(8, method="POST", path_contains="/rayjobs")  # beyond the request timeout
    run = _run_one("fault_slow", namespace, "python -c \"print('ok')\"")
    assert task_states(run) == {"train": "success"}
    assert xcom(run, "train")["job_status"] == "SUCCEEDED"
    assert_nothing_left(rayjobs_kept=1)


def test_keep_failed_policy_keeps_the_rayjob_but_not_the_cluster(kube, namespace, assert_nothing_left):
    run = _run_one("fault_keep_failed", namespace, "python -c \"import sys; sys.exit(2)\"", cleanup_policy="keep_failed")
    assert task_states(run) == {"train": "failed"}
    [job] = kube.list_rayjobs(namespace)
    status = job["status"]
    # KubeRay's record of an application failure, as the local double writes it (also its own check of the double).
    assert (status["jobDeploymentStatus"], status["jobStatus"], status["reason"]) == ("Failed", "FAILED", "AppFailed")
    assert (status["failed"], status.get("succeeded", 0)) == (1, 0)
    assert_nothing_left(rayjobs_kept=1)


def test_execution_timeout_in_deferrable_mode_deletes_the_job(kube, namespace, assert_nothing_left):
    run = _run_one("fault_exec_timeout_deferred", namespace, SLEEP, deferrable=True,
                   execution_timeout=dt.timedelta(seconds=25))
    assert task_states(run) == {"train": "failed"}
    assert_nothing_left()
