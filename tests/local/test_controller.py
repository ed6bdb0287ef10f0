"""The local KubeRay controller: RayJob status sequences (rayjob-status-sequences.md) with real local Ray."""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch

from kuberay_provider.local.stack import LocalStack

GROUP, VERSION = "ray.io", "v1"
SIMULATE = "kuberay-local.dev/simulate"
# A Ray head takes ~10 s to start on an idle 2-core machine, 30-40 s when other Ray/Spark work shares it.
RAY_TIMEOUT = 240


@pytest.fixture
def api(local_stack: LocalStack) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(local_stack.kubeconfig_path))


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def crd(api: client.ApiClient) -> Iterator[client.CustomObjectsApi]:
    yield client.CustomObjectsApi(api)


@pytest.fixture(autouse=True)
def _no_cluster_left_behind(local_stack: LocalStack, namespace: str, api: client.ApiClient) -> Iterator[None]:
    """Delete the test's RayJobs/RayClusters afterwards and wait until their Ray processes are gone."""
    yield
    crd = client.CustomObjectsApi(api)
    for plural in ("rayjobs", "rayclusters"):
        for obj in crd.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
            try:
                crd.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, obj["metadata"]["name"])
            except client.ApiException as error:  # a RayCluster the deleted RayJob owned may be collected first
                if error.status != 404:
                    raise
    wait_for(lambda: not any(ns == namespace for ns, _ in local_stack.controller.running_clusters()), 60)


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def rayjob(name: str, entrypoint: str = "python -c \"print('hello from ray')\"", *,
           annotations: dict[str, str] | None = None, head_cpu: str = "1", **spec: Any) -> dict[str, Any]:
    head = {"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray:2.60.0", "resources": {"limits": {"cpu": head_cpu}}}]}}}
    return {"apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"name": name, "labels": {"team": "data"}, "annotations": annotations or {}},
            "spec": {"entrypoint": entrypoint, "rayClusterSpec": {"headGroupSpec": head}, **spec}}


class StatusRecorder:
    """Records each status write of one RayJob as ``(jobDeploymentStatus, jobStatus, reason)`` (None = absent)."""

    def __init__(self, core: client.CoreV1Api, crd: client.CustomObjectsApi, namespace: str, name: str) -> None:
        self.crd, self.namespace, self.name = crd, namespace, name
        self.writes: list[tuple[Any, Any, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self._stop = False
        rv = crd.list_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs")["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, args=(rv,), daemon=True)
        self._thread.start()

    def _run(self, rv: str) -> None:
        last: dict[str, Any] | None = None
        while not self._stop:
            try:  # each event is recorded as it arrives (not when the 2 s watch ends)
                for event in watch.Watch().stream(self.crd.list_namespaced_custom_object, GROUP, VERSION,
                                                  self.namespace, "rayjobs", resource_version=rv, timeout_seconds=2):
                    obj = event["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if obj["metadata"]["name"] != self.name or event["type"] == "DELETED":
                        continue
                    status = obj.get("status")
                    if status and status != last:
                        self.statuses.append(status)
                        triple = (status.get("jobDeploymentStatus"), status.get("jobStatus"), status.get("reason"))
                        if not self.writes or self.writes[-1] != triple:
                            self.writes.append(triple)
                    last = status
                    if self._stop:
                        return
            except Exception:
                return

    def wait_state(self, states: tuple[str, ...], timeout: float) -> dict[str, Any]:
        wait_for(lambda: self.statuses and self.statuses[-1].get("jobDeploymentStatus") in states, timeout)
        return self.statuses[-1]

    def stop(self) -> None:
        self._stop = True


def create(crd: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str, body: dict) -> StatusRecorder:
    recorder = StatusRecorder(core, crd, namespace, body["metadata"]["name"])
    crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", body)
    return recorder


def events(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=RayJob")
    return [e.reason for e in found.items]


def submitter_log(core: client.CoreV1Api, namespace: str, job: str) -> str:
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}").items
    assert pods, "no submitter pod"
    return core.read_namespaced_pod_log(pods[-1].metadata.name, namespace, container="ray-job-submitter",
                                        _preload_content=False).data.decode()


# ------------------------------------------------------------------- no Ray needed


def test_validation_failed_for_long_name(crd, core, namespace, local_stack) -> None:
    name = "a" * 60
    rec = create(crd, core, namespace, rayjob(name))
    status = rec.wait_state(("ValidationFailed",), 15)
    assert status["reason"] == "ValidationFailed"
    assert status["message"] == ("The RayJob metadata is invalid: RayJob name should be no more than 47 characters")
    obj = crd.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", name)
    assert not obj["metadata"].get("finalizers") and "startTime" not in obj["status"]
    assert "InvalidRayJobMetadata" in events(core, namespace, name)
    assert crd.list_namespaced_custom_object(GROUP, VERSION, namespace, "rayclusters")["items"] == []
    rec.stop()


@pytest.mark.parametrize(("spec", "fragment"), [
    ({"ttlSecondsAfterFinished": 30}, "cannot have TTLSecondsAfterFinished"),
    ({"suspend": True}, "not allowed to be suspended"),
    ({"runtimeEnvYAML": "- a\n- b\n"}, "RuntimeEnvYAML"),
    ({"backoffLimit": 1, "submissionMode": "InteractiveMode"}, "InteractiveMode"),
])
def test_operator_side_validation(crd, core, namespace, spec, fragment) -> None:
    rec = create(crd, core, namespace, rayjob("invalid", **spec))
    status = rec.wait_state(("ValidationFailed",), 15)
    assert fragment in status["message"] and status["message"].startswith("The RayJob spec is invalid: ")
    assert "InvalidRayJobSpec" in events(core, namespace, "invalid")
    rec.stop()


def test_pre_running_deadline_with_unschedulable_head_and_retry(crd, core, namespace) -> None:
    body = rayjob("stuck", annotations={SIMULATE: "unschedulable"}, preRunningDeadlineSeconds=2, backoffLimit=1)
    rec = create(crd, core, namespace, body)
    final = rec.wait_state(("Failed",), 30)
    assert final["reason"] == "PreRunningDeadlineExceeded" and final["failed"] == 2
    assert rec.writes[0] == ("Initializing", None, None)
    assert ("Retrying", None, "PreRunningDeadlineExceeded") in rec.writes
    assert rec.writes[-1] == ("Failed", None, "PreRunningDeadlineExceeded")
    names = {s.get("rayClusterName") for s in rec.statuses if s.get("rayClusterName")}
    assert len(names) == 2  # each attempt gets a new cluster name
    head = core.list_namespaced_pod(namespace, label_selector="ray.io/node-type=head").items
    for pod in head:
        assert pod.status.phase == "Pending"
        assert pod.status.conditions[0].reason == "Unschedulable"
    rec.stop()


def test_image_pull_error_keeps_initializing(crd, core, namespace) -> None:
    rec = create(crd, core, namespace, rayjob("pull", annotations={SIMULATE: "image-pull-error"},
                                                activeDeadlineSeconds=4))
    final = rec.wait_state(("Failed",), 30)
    assert final["reason"] == "DeadlineExceeded"
    assert set(rec.writes[:-1]) == {("Initializing", None, None)}
    pod = core.list_namespaced_pod(namespace, label_selector="ray.io/node-type=head").items[0]
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.reason in ("ErrImagePull", "ImagePullBackOff")
    rec.stop()


# ------------------------------------------------------------------- real Ray


@pytest.mark.slow
def test_success_sequence_children_log_and_ttl_cleanup(crd, core, namespace, local_stack) -> None:
    body = rayjob("ok", shutdownAfterJobFinishes=True, ttlSecondsAfterFinished=2, head_cpu="2")
    rec = create(crd, core, namespace, body)
    final = rec.wait_state(("Complete", "Failed"), RAY_TIMEOUT)
    assert (final["jobDeploymentStatus"], final["jobStatus"]) == ("Complete", "SUCCEEDED")
    assert final["succeeded"] == 1 and final["failed"] == 0 and final["endTime"]
    assert rec.writes[0] == ("Initializing", None, None)
    assert ("Running", None, None) in rec.writes
    assert rec.writes[-1] == ("Complete", "SUCCEEDED", None)
    rc_name, job_id = final["rayClusterName"], final["jobId"]
    for generated in (rc_name, job_id):
        prefix, suffix = generated.rsplit("-", 1)
        assert prefix == "ok" and len(suffix) == 5 and set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert final["dashboardURL"] == f"{rc_name}-head-svc.{namespace}.svc.cluster.local:8265"
    assert final["rayJobInfo"]["startTime"] and final["rayJobInfo"]["endTime"]

    rc = crd.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayclusters", rc_name)
    assert rc["metadata"]["labels"]["team"] == "data"
    assert rc["metadata"]["labels"]["ray.io/originated-from-cr-name"] == "ok"
    assert rc["metadata"]["ownerReferences"][0]["kind"] == "RayJob"
    assert rc["status"]["state"] == "ready"
    job = client.BatchV1Api(core.api_client).read_namespaced_job("ok", namespace)
    assert job.spec.template.spec.containers[0].name == "ray-job-submitter"
    assert any(c.type == "Complete" for c in job.status.conditions)
    assert "hello from ray" in submitter_log(core, namespace, "ok")
    assert local_stack.controller.running_clusters()

    wait_for(lambda: "DeletedRayCluster" in events(core, namespace, "ok"), 30)
    wait_for(lambda: not local_stack.controller.running_clusters(), 30)
    assert {"CreatedRayCluster", "CreatedRayJobSubmitter"} <= set(events(core, namespace, "ok"))
    # The submitter Job, its pod and the driver log survive the cluster's deletion; the status does not change.
    assert "hello from ray" in submitter_log(core, namespace, "ok")
    after = crd.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", "ok")["status"]
    assert after["rayClusterName"] == rc_name and after["jobDeploymentStatus"] == "Complete"
    rec.stop()


@pytest.mark.slow
def test_active_deadline_exceeded_while_running(crd, core, namespace, local_stack) -> None:
    body = rayjob("late", "python -c \"import time; print('working', flush=True); time.sleep(300)\"",
                  shutdownAfterJobFinishes=True, backoffLimit=2)
    rec = create(crd, core, namespace, body)
    running = wait_for(lambda: rec.statuses and rec.statuses[-1].get("jobStatus") == "RUNNING" and rec.statuses[-1],
                       RAY_TIMEOUT)
    started = calendar.timegm(time.strptime(running["startTime"], "%Y-%m-%dT%H:%M:%SZ"))
    # Deadlines are among the few edits KubeRay honours mid-run: expire it 2 s from now.
    crd.patch_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", "late",
                                       {"spec": {"activeDeadlineSeconds": int(time.time() - started) + 2}})
    final = rec.wait_state(("Failed", "Complete"), 30)
    assert (final["jobDeploymentStatus"], final["jobStatus"], final["reason"]) == ("Failed", "RUNNING",
                                                                                   "DeadlineExceeded")
    assert final["failed"] == 1  # never retried despite backoffLimit
    assert final["message"].startswith("The RayJob has passed the activeDeadlineSeconds.")
    wait_for(lambda: not local_stack.controller.running_clusters(), 30)  # cleanup kills the Ray job
    rec.stop()


@pytest.mark.slow
def test_submitter_failure(crd, core, namespace) -> None:
    body = rayjob("subfail", annotations={SIMULATE: "submitter-failure"}, shutdownAfterJobFinishes=True)
    rec = create(crd, core, namespace, body)
    final = rec.wait_state(("Failed", "Complete"), RAY_TIMEOUT)
    assert (final["jobDeploymentStatus"], final.get("jobStatus"), final["reason"]) == (
        "Failed", None, "SubmissionFailed")
    assert final["message"] == ("Job submission has failed. Reason: BackoffLimitExceeded. "
                                "Message: Job has reached the specified backoff limit")
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=subfail").items
    assert len(pods) == 3 and all(p.status.phase == "Failed" for p in pods)
    rec.stop()


@pytest.mark.slow
def test_standalone_raycluster(crd, core, namespace, local_stack) -> None:
    body = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "solo"},
            "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}}}}
    crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayclusters", body)
    wait_for(lambda: (crd.get_namespaced_custom_object(GROUP, VERSION, namespace, "rayclusters", "solo")
                      .get("status") or {}).get("state") == "ready", RAY_TIMEOUT)
    head = core.list_namespaced_pod(namespace, label_selector="ray.io/cluster=solo,ray.io/node-type=head").items
    assert head[0].status.phase == "Running"
    assert core.read_namespaced_service("solo-head-svc", namespace).spec.ports
    assert (namespace, "solo") in local_stack.controller.running_clusters()
    crd.delete_namespaced_custom_object(GROUP, VERSION, namespace, "rayclusters", "solo")
    wait_for(lambda: (namespace, "solo") not in local_stack.controller.running_clusters(), 30)
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, 30)


# ------------------------------------------------------------------- the local double as KubeRay's oracle (issue 9)


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda s: s["rayClusterSpec"]["headGroupSpec"]["rayStartParams"].update(labels="a=b"), "rayStartParams['labels']"),
    (lambda s: s["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(
        env=[{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]), "RAY_REDIS_ADDRESS"),
    (lambda s: s.update(shutdownAfterJobFinishes=False, deletionStrategy={"deletionRules": [
        {"policy": "DeleteSelf", "condition": {"jobStatus": "FAILED", "ttlSeconds": 10}},
        {"policy": "DeleteCluster", "condition": {"jobStatus": "FAILED", "ttlSeconds": 60}}]}),
     "DeleteSelf TTL (10) must be >= DeleteCluster TTL (60)"),
])
def test_more_of_validation_go_marks_validation_failed(crd, core, namespace, change, fragment) -> None:
    body = rayjob("invalid-more")
    change(body["spec"])
    rec = create(crd, core, namespace, body)
    status = rec.wait_state(("ValidationFailed",), 15)
    assert fragment in status["message"], status["message"]
    rec.stop()


def test_api_server_prunes_unknown_fields_like_kubernetes(crd, namespace) -> None:
    """A misspelt toleration key is dropped silently, leaving {operator: Exists}: what the product refuses."""
    body = rayjob("pruned", annotations={SIMULATE: "unschedulable"})
    body["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["tolerations"] = [
        {"keyy": "gpu", "operator": "Exists"}]
    body["spec"]["shutdownAfterJobFinish"] = True
    created = crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", body)
    assert created["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["tolerations"] == [
        {"operator": "Exists"}]
    assert "shutdownAfterJobFinish" not in created["spec"]


@pytest.mark.slow
def test_ray_start_params_size_the_local_head(crd, core, namespace) -> None:
    """rayStartParams num-gpus/resources reach `ray start`: a driver asking for a GPU and a custom resource runs."""
    body = rayjob("gpus", "python -c \"import ray; ray.init(); r = ray.cluster_resources(); "
                          "print('GPU', r.get('GPU'), 'TPU', r.get('TPU'))\"",
                  shutdownAfterJobFinishes=True, entrypointNumGpus=1, entrypointResources='{"TPU": 1}')
    body["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"] = {
        "num-cpus": "1", "num-gpus": "2", "resources": '"{\\"TPU\\": 4}"'}
    rec = create(crd, core, namespace, body)
    final = rec.wait_state(("Complete", "Failed"), RAY_TIMEOUT)
    assert (final["jobDeploymentStatus"], final["jobStatus"]) == ("Complete", "SUCCEEDED"), final
    assert "GPU 2.0 TPU 4.0" in submitter_log(core, namespace, "gpus")
    rec.stop()
