"""Every KubeRay v1.7.0 sample (``../shared/kuberay/samples``) is a valid ``manifest=`` after the provider's merge,
for the product and for the local double; a representative few that need no network run on the local stack."""

from __future__ import annotations

import copy
import time

import pytest

from kuberay_provider import specs
from kuberay_provider.local import schema as local_schema
from kuberay_provider.local import validation as local_validation
from kuberay_provider.naming import TaskInstanceIdentity
from kuberay_provider.operators.rayjob import RayJobOperator
from tests.specs.conftest import SAMPLE_FILES, SKIP_REASON, sample, sample_ids

IDENT = TaskInstanceIdentity("samples", "run", "manual__2026-12-01T00:00:00+00:00")
# Samples whose entrypoint needs no network, mounted ConfigMap, TPU or sandbox image: run for real, with what
# each must show (the Kueue toy job prints cluster resources for 10 minutes: it must be Running and printing).
OFFLINE = {"ray-job.deletion-rules.yaml": ("Complete", "SUCCEEDED", "ray.cluster_resources()"),
           "ray-job.kueue-toy-sample.yaml": ("Running", "RUNNING", "iter: 1, ray.cluster_resources()")}


def merged(name: str, namespace: str = "default") -> dict:
    """The RayJob the provider would create for ``RayJobOperator(manifest=<sample>)``."""
    operator = RayJobOperator(task_id="run", manifest=sample(name), namespace=namespace)
    return operator.build_manifest(IDENT)


@pytest.mark.parametrize("name", sample_ids())
def test_every_sample_is_accepted_as_manifest(name):
    if not SAMPLE_FILES:
        pytest.skip(SKIP_REASON)
    manifest = merged(name)  # judged by the product while building
    specs.validate_rayjob(manifest)
    stored = copy.deepcopy(manifest)
    assert local_schema.admit("rayjobs", stored) == []  # the local double's API server admits it
    assert local_validation.validate_rayjob(stored) is None  # and its operator does not mark it ValidationFailed


def test_the_samples_exercise_what_was_refused_before():
    if not SAMPLE_FILES:
        pytest.skip(SKIP_REASON)
    light = merged("ray-job.light-weight-submitter.yaml")
    assert "entrypoint" not in light["spec"] and light["spec"]["submitterPodTemplate"]
    rules = merged("ray-job.deletion-rules.yaml")
    assert "shutdownAfterJobFinishes" not in rules["spec"] and "ttlSecondsAfterFinished" not in rules["spec"]
    assert len(SAMPLE_FILES) >= 19


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_samples_run_on_the_local_stack(name, local_stack, namespace):
    from kubernetes import client, config

    if not SAMPLE_FILES:
        pytest.skip(SKIP_REASON)
    api = config.new_client_from_config(config_file=str(local_stack.kubeconfig_path))
    crd, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    manifest = merged(name, namespace)
    job = manifest["metadata"]["name"]
    deployment, job_status, printed = OFFLINE[name]
    crd.create_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs", manifest)

    def driver_log() -> str:
        pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}").items
        if not pods:
            return ""
        return core.read_namespaced_pod_log(pods[-1].metadata.name, namespace, container="ray-job-submitter",
                                            _preload_content=False).data.decode()

    try:
        deadline = time.monotonic() + 300
        status: dict = {}
        while time.monotonic() < deadline:
            status = crd.get_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs", job).get("status") or {}
            state = (status.get("jobDeploymentStatus"), status.get("jobStatus"))
            if state[0] in ("Complete", "Failed", "ValidationFailed") or (state == (deployment, job_status)
                                                                          and printed in driver_log()):
                break
            time.sleep(1)
        assert (status.get("jobDeploymentStatus"), status.get("jobStatus")) == (deployment, job_status), status
        assert printed in driver_log()
    finally:
        crd.delete_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs", job)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(ns == namespace for ns, _ in local_stack.controller.running_clusters()):
            time.sleep(0.5)


def test_samples_times_mutations_product_and_local_double_never_disagree():
    """Every conformance mutation applied to every sample: whatever the local double (its own schema, pruning and
    validation.go port) refuses, the product refuses too; and the product never accepts what the double refuses."""
    from tests.specs.test_conformance import CASES, local_double, product_refuses

    if not SAMPLE_FILES:
        pytest.skip(SKIP_REASON)
    disagreements, judged = [], 0
    for name in SAMPLE_FILES:
        base = specs.merge_required_fields(specs.load_manifest(sample(name)), name="sample-job", namespace="default",
                                           labels={}, annotations={}, defaults={})
        if not (base["spec"].get("rayClusterSpec") or {}).get("workerGroupSpecs"):
            continue
        for case_id, label, change in CASES:
            manifest = copy.deepcopy(base)
            try:
                change(manifest)
            except (KeyError, IndexError):
                continue  # the mutation does not apply to this sample (e.g. no entrypoint to remove)
            observed, refused = local_double(manifest), product_refuses(manifest)
            judged += 1
            if observed and not refused:
                disagreements.append((name, case_id, label, sorted(observed)))
    assert judged >= 1000 and disagreements == []
