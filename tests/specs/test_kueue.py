"""Kueue: ``queue_name``/``priority_class`` become KubeRay's Kueue labels, a queued RayJob is created suspended,
Kueue's webhook rules refuse bad input up front, and a suspended RayJob reads as *queued* everywhere."""

from __future__ import annotations

import pytest

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.hooks.informer import _trim_status_object
from kuberay_provider.naming import TaskInstanceIdentity
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.status import RayJobStatus
from tests.specs.conftest import sample

IDENTITY = TaskInstanceIdentity(dag_id="dag", task_id="train", run_id="run")


def _op(**kwargs) -> RayJobOperator:
    kwargs.setdefault("entrypoint", "python train.py")
    return RayJobOperator(task_id="train", **kwargs)


def test_queue_name_and_priority_class_become_labels_and_the_rayjob_is_created_suspended() -> None:
    manifest = _op(queue_name="team-a", priority_class="high-priority").build_manifest(IDENTITY)
    labels = manifest["metadata"]["labels"]
    assert labels[c.KUEUE_QUEUE_LABEL] == "team-a"
    assert labels[c.KUEUE_PRIORITY_LABEL] == "high-priority"
    assert manifest["spec"]["suspend"] is True
    assert manifest["spec"]["shutdownAfterJobFinishes"] is True


def test_without_a_queue_nothing_changes() -> None:
    manifest = _op().build_manifest(IDENTITY)
    assert c.KUEUE_QUEUE_LABEL not in manifest["metadata"]["labels"]
    assert "suspend" not in manifest["spec"]


def test_templated_queue_is_checked_when_rendered() -> None:
    op = _op(queue_name="{{ params.queue }}")  # unknown at parse time: accepted
    op.queue_name = "Not_A_Queue"
    with pytest.raises(InvalidParameterError) as err:
        op.build_manifest(IDENTITY)
    assert err.value.parameter == "queue_name" and err.value.value == "Not_A_Queue"


def test_kueue_toy_sample_is_accepted_as_a_manifest_and_gets_suspended() -> None:
    toy = sample("ray-job.kueue-toy-sample.yaml")  # skips when ../shared/kuberay is absent
    manifest = _op(entrypoint=None, manifest=toy, queue_name="user-queue").build_manifest(IDENTITY)
    assert manifest["spec"]["suspend"] is True
    assert manifest["metadata"]["labels"][c.KUEUE_QUEUE_LABEL] == "user-queue"


def test_a_manifest_that_already_carries_the_queue_label_is_suspended_too() -> None:
    sample = {"apiVersion": "ray.io/v1", "kind": "RayJob",
              "metadata": {"name": "x", "labels": {c.KUEUE_QUEUE_LABEL: "user-queue"}},
              "spec": {"entrypoint": "python x.py", "shutdownAfterJobFinishes": True, "rayClusterSpec": {
                  "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                      {"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}}}}}
    manifest = _op(entrypoint=None, manifest=sample).build_manifest(IDENTITY)
    assert manifest["spec"]["suspend"] is True


@pytest.mark.parametrize(("kwargs", "parameter", "fragment"), [
    ({"queue_name": "Team_A"}, "queue_name", "LocalQueue"),
    ({"queue_name": "a" * 64}, "queue_name", "≤ 63"),
    ({"queue_name": 7}, "queue_name", "must be a string"),
    ({"queue_name": "q", "priority_class": "High"}, "priority_class", "WorkloadPriorityClass"),
    ({"priority_class": "high"}, "priority_class", "needs queue_name"),
    ({"queue_name": "q", "cluster_selector": "shared"}, "queue_name", "clusterSelector"),
    ({"queue_name": "q", "shutdown_after_job_finishes": False, "ttl_seconds_after_finished": 0}, "queue_name",
     "shutdown_after_job_finishes=True"),
    ({"queue_name": "q", "worker_groups": [{"min_replicas": 1, "max_replicas": 4}]}, "queue_name", "autoscaling"),
    ({"queue_name": "q", "worker_groups": [{"name": f"g{i}"} for i in range(8)]}, "queue_name", "at most 7"),
    ({"queue_name": "q", "worker_groups": [{"name": "head"}]}, "worker_groups[0].name", "'head'"),
])
def test_what_kueue_refuses_is_refused_when_the_dag_is_parsed(kwargs, parameter, fragment) -> None:
    with pytest.raises(InvalidParameterError) as err:
        _op(**kwargs)
    assert err.value.parameter == parameter
    assert fragment in str(err.value)


def test_seven_worker_groups_and_fixed_sizes_are_accepted() -> None:
    groups = [{"name": f"g{i}", "replicas": 2} for i in range(7)]
    manifest = _op(queue_name="q", priority_class="low", worker_groups=groups).build_manifest(IDENTITY)
    assert len(manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]) == 7


def _rayjob(status: dict, *, suspend: bool | None = None, queue: str | None = "team-a") -> dict:
    meta = {"name": "rj", "namespace": "ns", "resourceVersion": "7"}
    if queue:
        meta["labels"] = {c.KUEUE_QUEUE_LABEL: queue, "other": "dropped"}
    spec = {"entrypoint": "python x.py", "rayClusterSpec": {"headGroupSpec": {}}}
    if suspend is not None:
        spec["suspend"] = suspend
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize(("status", "suspend", "queued"), [
    ({}, True, True),  # created suspended, not yet reconciled
    ({"jobDeploymentStatus": "Initializing"}, True, True),
    ({"jobDeploymentStatus": "Suspending"}, True, True),
    ({"jobDeploymentStatus": "Suspended"}, True, True),
    ({"jobDeploymentStatus": "Suspended"}, False, True),  # admitted, KubeRay has not reacted yet
    ({}, False, False),  # admitted: New
    ({"jobDeploymentStatus": "Initializing"}, False, False),
    ({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, None, False),
    ({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}, True, False),
    ({"jobDeploymentStatus": "ValidationFailed", "reason": "ValidationFailed"}, True, False),
])
def test_queued_means_suspended_and_not_done(status, suspend, queued) -> None:
    s = RayJobStatus.from_object(_rayjob(status, suspend=suspend))
    assert s.is_queued is queued
    assert ("queued in LocalQueue 'team-a'" in s.describe()) is queued
    # the informer's trimmed copy reads the same
    assert RayJobStatus.from_object(_trim_status_object(_rayjob(status, suspend=suspend))).is_queued is queued
    # and so does the copy that travels in trigger events
    assert RayJobStatus.from_dict(s.to_dict()).is_queued is queued


def test_queued_then_admitted_is_a_reported_change() -> None:
    queued = RayJobStatus.from_object(_rayjob({"jobDeploymentStatus": "Suspended"}, suspend=True))
    admitted = RayJobStatus.from_object(_rayjob({}, suspend=False))
    assert queued.change_key != admitted.change_key
    assert "queued" not in admitted.describe()


def test_informer_keeps_only_the_queue_label() -> None:
    trimmed = _trim_status_object(_rayjob({}, suspend=True))
    assert trimmed["metadata"]["labels"] == {c.KUEUE_QUEUE_LABEL: "team-a"}
    assert trimmed["spec"] == {"suspend": True}
    assert "labels" not in _trim_status_object(_rayjob({}, queue=None))["metadata"]


def test_the_decorator_takes_the_queue_parameters() -> None:
    from kuberay_provider.decorators.ray_job import RayJobDecoratedOperator

    def train() -> int:
        return 1

    op = RayJobDecoratedOperator(task_id="t", python_callable=train, queue_name="team-a", priority_class="high")
    manifest = op.build_manifest(IDENTITY)
    assert manifest["spec"]["suspend"] is True
    assert manifest["metadata"]["labels"][c.KUEUE_PRIORITY_LABEL] == "high"
