"""Manifest building, merging into user manifests, and KubeRay v1.7's validation rules (pure)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from kuberay_provider import constants as c
from kuberay_provider import specs
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.specs import JobSettings, NodeGroup, PodSettings


def cluster_spec(workers=({"name": "cpu", "replicas": 2},), **pod) -> dict:
    return specs.build_ray_cluster_spec(
        head=NodeGroup.parse({"cpu": 2, "memory": "4Gi"}, "head", worker=False),
        worker_groups=[NodeGroup.parse(g, f"worker_groups[{i}]", worker=True) for i, g in enumerate(workers)],
        pod=PodSettings(image=pod.pop("image", "rayproject/ray:2.60.0-py311"), **pod),
    )


def good(**job) -> dict:
    return specs.build_rayjob(
        name="train-1", namespace="ray", job=JobSettings(entrypoint=job.pop("entrypoint", "python train.py"), **job),
        cluster_spec=None if job.get("cluster_selector") else cluster_spec(), labels={"team": "ml"},
    )


def raises(fn, parameter: str, value=..., *args, **kwargs) -> InvalidParameterError:
    """Assert ``fn`` raises InvalidParameterError naming ``parameter`` (and ``value``) in its message."""
    with pytest.raises(InvalidParameterError) as err:
        fn(*args, **kwargs)
    assert err.value.parameter == parameter, str(err.value)
    assert f"Invalid {parameter}=" in str(err.value)
    if value is not ...:
        assert err.value.value == value
        assert repr(value)[:50] in str(err.value)
    return err.value


# -- quantities ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "text"),
    [("2", "2"), (2, "2"), (0.5, "0.5"), ("500m", "500m"), ("4Gi", "4Gi"), ("1.5Gi", "1.5Gi"), ("1e3", "1e3"),
     (" 8 ", "8"), ("+1", "+1"), (".5", ".5"), ("128974848", "128974848"), ("129M", "129M"), (0, "0")],
)
def test_quantity_accepts(value, text):
    assert specs.validate_quantity(value, "cpu") == text


@pytest.mark.parametrize("value", ["two", "-1Gi", "-1", "4 Gi", "4GB", "Gi", "", "1.2.3", "0x10", None, True, [], {}, "inf"])
def test_quantity_rejects(value):
    raises(specs.validate_quantity, "head.memory", value, value, "head.memory")


# -- node groups -----------------------------------------------------------------------------------------

def test_node_group_defaults():
    head = NodeGroup.parse(None, "head", worker=False)
    assert (head.name, head.cpu, head.memory, head.gpus, head.replicas) == ("headgroup", "1", "2Gi", 0, 0)
    assert head.min_replicas is None and head.max_replicas is None
    worker = NodeGroup.parse({}, "worker_groups[0]", worker=True)
    assert (worker.name, worker.replicas, worker.min_replicas, worker.max_replicas) == ("workers", 1, 1, 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"min_replicas": 2, "max_replicas": 5}, (2, 2, 5)),
        ({"min_replicas": 0, "max_replicas": 5}, (0, 0, 5)),
        ({"max_replicas": 4}, (1, 1, 4)),
        ({"max_replicas": 0}, (0, 0, 0)),
        ({"replicas": 3}, (3, 3, 3)),
        ({"replicas": 2, "max_replicas": 6}, (2, 2, 6)),
    ],
)
def test_worker_replicas_default_to_the_autoscaling_floor(raw, expected):
    g = NodeGroup.parse(raw, "worker_groups[0]", worker=True)
    assert (g.replicas, g.min_replicas, g.max_replicas) == expected


def test_node_group_autoscaling_bounds_and_resources():
    g = NodeGroup.parse(
        {"name": "gpu", "replicas": 1, "min_replicas": 0, "max_replicas": 4, "gpus": 2, "resources": {"TPU": 4},
         "cpu": 8, "memory": "32Gi", "env": {"A": 1}, "ray_start_params": {"num-cpus": 8}},
        "worker_groups[0]", worker=True,
    )
    assert (g.replicas, g.min_replicas, g.max_replicas) == (1, 0, 4)
    req = g.resource_requirements()
    assert req["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2", "TPU": "4"}
    assert req["requests"] == req["limits"]
    assert g.env == {"A": "1"} and g.ray_start_params == {"num-cpus": "8"}
    # A parsed group can be parsed again (the operator passes NodeGroup objects through).
    assert NodeGroup.parse(g, "worker_groups[0]", worker=True) == g


@pytest.mark.parametrize(
    ("raw", "parameter", "value"),
    [
        ("big", "worker_groups[0]", "big"),
        ({"cpus": 2}, "worker_groups[0].cpus", 2),
        ({"cpu": "two"}, "worker_groups[0].cpu", "two"),
        ({"memory": "-1Gi"}, "worker_groups[0].memory", "-1Gi"),
        ({"gpus": -1}, "worker_groups[0].gpus", -1),
        ({"gpus": 1.5}, "worker_groups[0].gpus", 1.5),
        ({"gpus": True}, "worker_groups[0].gpus", True),
        ({"resources": ["TPU"]}, "worker_groups[0].resources", ["TPU"]),
        ({"resources": {"TPU": "lots"}}, "worker_groups[0].resources['TPU']", "lots"),
        ({"name": ""}, "worker_groups[0].name", ""),
        ({"replicas": -1}, "worker_groups[0].replicas", -1),
        ({"replicas": "two"}, "worker_groups[0].replicas", "two"),
        ({"replicas": 2**31}, "worker_groups[0].replicas", 2**31),
        ({"tolerations": "all"}, "worker_groups[0].tolerations", "all"),
        ({"tolerations": ["x"]}, "worker_groups[0].tolerations", ["x"]),
        ({"node_selector": ["a"]}, "worker_groups[0].node_selector", ["a"]),
        ({"env": {1: "x"}}, "worker_groups[0].env", {1: "x"}),
    ],
)
def test_node_group_rejects(raw, parameter, value):
    raises(NodeGroup.parse, parameter, value, raw, "worker_groups[0]", worker=True)


def judged(workers=({"name": "cpu"},), head=None, **pod):
    """Build a cluster spec from compact parameters and judge it (how compact parameters are validated)."""
    spec = specs.build_ray_cluster_spec(
        head=NodeGroup.parse(head or {}, "head", worker=False),
        worker_groups=[NodeGroup.parse(g, f"worker_groups[{i}]", worker=True) for i, g in enumerate(workers)],
        pod=PodSettings(image=pod.pop("image", "rayproject/ray:2.60.0-py311"), secret_env=specs.parse_secret_env(
            pod.pop("secret_env", None)), **pod),
    )
    specs.validate_ray_cluster_spec(spec)
    return spec


@pytest.mark.parametrize(
    ("raw", "parameter", "value"),
    [
        ({"name": "cpu_group"}, "worker_groups[0].name", "cpu_group"),
        ({"name": "g" * 64}, "worker_groups[0].name", "g" * 64),
        ({"min_replicas": 3, "max_replicas": 1, "replicas": 1}, "worker_groups[0].min_replicas", 3),
        ({"image": "ray with space"}, "worker_groups[0].image", "ray with space"),
        ({"image": " "}, "worker_groups[0].image", " "),
        ({"image": 3}, "worker_groups[0].image", 3),
        ({"resources": {"TPU": 1}}, "worker_groups[0].resources['TPU']", "1"),
        ({"resources": {"nvidia.com/gpu": "0.5"}}, "worker_groups[0].resources['nvidia.com/gpu']", "0.5"),
        ({"tolerations": [{"keyy": "gpu", "operator": "Exists"}]}, "worker_groups[0].tolerations[0].keyy", "gpu"),
        ({"labels": {"bad key": "x"}}, "worker_groups[0].labels['bad key']", "x"),
        ({"annotations": {"a b": "x"}}, "worker_groups[0].annotations['a b']", "x"),
        ({"annotations": {"x": 3}}, "worker_groups[0].annotations['x']", 3),
        ({"node_selector": {"pool": "a b"}}, "worker_groups[0].node_selector['pool']", "a b"),
        ({"env": {"MY VAR": "1"}}, "worker_groups[0].env['MY VAR']", "MY VAR"),
        ({"ray_start_params": {"labels": "a=b"}}, "worker_groups[0].ray_start_params['labels']", "a=b"),
    ],
)
def test_compact_parameters_are_judged_on_the_built_manifest(raw, parameter, value):
    raises(judged, parameter, value, [raw])


@pytest.mark.parametrize("raw", [{"name": "CPU"}, {"replicas": "2"}, {"replicas": 5, "min_replicas": 1, "max_replicas": 3},
                                 {"name": "gpu.a100"}, {"min_replicas": "0", "max_replicas": "4"},
                                 {"resources": {"google.com/tpu": 4}}, {"gpus": "2"}])
def test_compact_parameters_kuberay_accepts(raw):
    """Upper-case group names (KubeRay lower-cases Pod names), integer strings (Jinja renders strings), replicas
    outside [min, max] (KubeRay clamps them) are valid."""
    judged([raw])


def test_head_name_is_not_a_worker_group_name():
    # The head group is always "headgroup" in KubeRay; its compact name is free text and not validated.
    assert NodeGroup.parse({"name": "Head"}, "head", worker=False).name == "Head"


# -- cluster spec ----------------------------------------------------------------------------------------

def test_cluster_spec_shape():
    spec = cluster_spec(
        workers=({"name": "cpu", "replicas": 2, "node_selector": {"pool": "cpu"}, "labels": {"x": "y"}},),
        service_account="ray-sa", node_selector={"zone": "a"}, tolerations=[{"key": "k", "operator": "Exists"}],
        image_pull_secrets=["regcred"],
    )
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    container = head["template"]["spec"]["containers"][0]
    assert container["name"] == "ray-head" and container["image"] == "rayproject/ray:2.60.0-py311"
    assert {p["containerPort"] for p in container["ports"]} == {6379, 8265, 10001}
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    [worker] = spec["workerGroupSpecs"]
    assert (worker["groupName"], worker["replicas"], worker["minReplicas"], worker["maxReplicas"]) == ("cpu", 2, 2, 2)
    wpod = worker["template"]["spec"]
    assert wpod["serviceAccountName"] == "ray-sa"
    assert wpod["nodeSelector"] == {"zone": "a", "pool": "cpu"}
    assert wpod["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert wpod["imagePullSecrets"] == [{"name": "regcred"}]
    assert worker["template"]["metadata"] == {"labels": {"x": "y"}}
    assert "enableInTreeAutoscaling" not in spec and "rayVersion" not in spec
    specs.validate_ray_cluster_spec(spec)


def test_cluster_spec_autoscaling_gpu_and_ray_version():
    spec = specs.build_ray_cluster_spec(
        head=NodeGroup.parse({}, "head", worker=False),
        worker_groups=[NodeGroup.parse({"name": "gpu", "min_replicas": 0, "max_replicas": 8, "replicas": 0, "gpus": 1,
                                        "image": "rayproject/ray:2.60.0-py311-gpu"}, "w", worker=True)],
        pod=PodSettings(image="rayproject/ray:2.60.0-py311"), ray_version="2.60.0",
    )
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["rayVersion"] == "2.60.0"
    container = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert container["image"].endswith("-gpu")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


# -- runtime env -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("empty", [None, {}, ""])
def test_runtime_env_empty(empty):
    assert specs.runtime_env_yaml(empty) is None


def test_runtime_env_mapping_and_strings():
    text = specs.runtime_env_yaml({"pip": ["xgboost"], "env_vars": {"A": "1"}})
    assert yaml.safe_load(text) == {"pip": ["xgboost"], "env_vars": {"A": "1"}}
    assert specs.runtime_env_yaml("pip: [xgboost]\n") == "pip: [xgboost]\n"
    assert specs.runtime_env_yaml('{"pip": ["x"]}') == '{"pip": ["x"]}'


@pytest.mark.parametrize("bad", [["pip"], "- a\n- b\n", "just text", "a: [", 3, ("pip",)])
def test_runtime_env_rejects(bad):
    raises(specs.runtime_env_yaml, "runtime_env", bad, bad)


# -- building --------------------------------------------------------------------------------------------

def test_build_rayjob_safe_defaults():
    m = good()
    assert m["apiVersion"] == "ray.io/v1" and m["kind"] == "RayJob"
    assert m["metadata"] == {"name": "train-1", "namespace": "ray", "labels": {"team": "ml"}}
    spec = m["spec"]
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] == 60
    assert spec["backoffLimit"] == 0
    assert spec["preRunningDeadlineSeconds"] == 900
    assert "activeDeadlineSeconds" not in spec
    assert spec["entrypoint"] == "python train.py"
    for absent in ("runtimeEnvYAML", "jobId", "entrypointNumCpus", "entrypointNumGpus", "metadata", "clusterSelector"):
        assert absent not in spec
    specs.validate_rayjob(m)


def test_build_rayjob_optional_fields():
    m = good(runtime_env={"pip": ["x"]}, active_deadline_seconds=3600, job_id="my-job", entrypoint_num_cpus=1,
             entrypoint_num_gpus=0.5, metadata={"owner": "me"}, pre_running_deadline_seconds=None)
    spec = m["spec"]
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"pip": ["x"]}
    assert spec["activeDeadlineSeconds"] == 3600
    assert (spec["jobId"], spec["entrypointNumCpus"], spec["entrypointNumGpus"]) == ("my-job", 1, 0.5)
    assert spec["metadata"] == {"owner": "me"}
    assert "preRunningDeadlineSeconds" not in spec
    specs.validate_rayjob(m)


def test_build_rayjob_with_cluster_selector():
    m = good(cluster_selector={c.RAY_CLUSTER_LABEL: "shared"})
    assert m["spec"]["clusterSelector"] == {c.RAY_CLUSTER_LABEL: "shared"}
    assert "rayClusterSpec" not in m["spec"]
    specs.validate_rayjob(m)


def test_build_rayjob_copies_its_inputs():
    cs = cluster_spec()
    m = specs.build_rayjob(name="a", namespace="b", job=JobSettings(entrypoint="x"), cluster_spec=cs)
    m["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["x"] = "changed"
    assert "x" not in cs["headGroupSpec"]["rayStartParams"]


def test_build_raycluster():
    cs = cluster_spec()
    rc = specs.build_raycluster(name="shared", namespace="ray", cluster_spec=cs, labels={"a": "b"}, annotations={"n": "x"})
    assert rc["kind"] == "RayCluster" and rc["apiVersion"] == "ray.io/v1"
    assert rc["metadata"] == {"name": "shared", "namespace": "ray", "labels": {"a": "b"}, "annotations": {"n": "x"}}
    assert rc["spec"] == cs and rc["spec"] is not cs


# -- user manifests --------------------------------------------------------------------------------------

USER_YAML = """
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: ignored
  labels: {team: ml, app.kubernetes.io/managed-by: someone-else}
  annotations: {note: keep}
  resourceVersion: "12"
  uid: abc
  creationTimestamp: "2026-01-01T00:00:00Z"
spec:
  entrypoint: python user.py
  ttlSecondsAfterFinished: 5
  runtimeEnvYAML: |
    pip: [numpy]
  rayClusterSpec:
    headGroupSpec:
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.60.0
            volumeMounts: [{name: data, mountPath: /data}]
          volumes: [{name: data, emptyDir: {}}]
status:
  jobDeploymentStatus: Complete
"""

DEFAULTS = JobSettings(entrypoint="x").to_spec()
IDENTITY_LABELS = {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE, c.TASK_INSTANCE_LABEL: "0123456789"}


def merge(manifest, **kw):
    loaded = specs.load_manifest(manifest)
    return specs.merge_required_fields(
        loaded, name=kw.get("name", "train-1"), namespace="ray", labels=IDENTITY_LABELS,
        annotations={"kuberay.airflow.apache.org/dag-id": "etl"}, defaults=kw.get("defaults", DEFAULTS),
    )


def test_merge_keeps_user_fields_adds_identity_and_fills_defaults():
    m = merge(USER_YAML)
    meta = m["metadata"]
    assert (meta["name"], meta["namespace"]) == ("train-1", "ray")
    assert meta["labels"] == {"team": "ml", **IDENTITY_LABELS}  # the provider's labels win
    assert meta["annotations"] == {"note": "keep", "kuberay.airflow.apache.org/dag-id": "etl"}
    for dropped in ("resourceVersion", "uid", "creationTimestamp"):
        assert dropped not in meta
    assert "status" not in m
    spec = m["spec"]
    assert spec["entrypoint"] == "python user.py"
    assert spec["ttlSecondsAfterFinished"] == 5  # user value kept
    assert spec["runtimeEnvYAML"] == "pip: [numpy]\n"
    head_pod = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head_pod["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert head_pod["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert spec["submissionMode"] == "K8sJobMode" and spec["shutdownAfterJobFinishes"] is True
    assert spec["backoffLimit"] == 0 and spec["preRunningDeadlineSeconds"] == 900
    specs.validate_rayjob(m)


def test_merge_does_not_mutate_the_input():
    loaded = specs.load_manifest(USER_YAML)
    before = copy.deepcopy(loaded)
    specs.merge_required_fields(loaded, name="a", namespace="b", labels={"x": "y"}, annotations={}, defaults=DEFAULTS)
    assert loaded == before


def test_merge_json_string_and_dict_equal_yaml():
    as_dict = yaml.safe_load(USER_YAML)
    assert merge(as_dict) == merge(USER_YAML) == merge(json.dumps(as_dict))


def test_merge_respects_shutdown_false_without_adding_a_ttl():
    user = yaml.safe_load(USER_YAML)
    del user["spec"]["ttlSecondsAfterFinished"]
    user["spec"]["shutdownAfterJobFinishes"] = False
    m = merge(user)
    assert m["spec"]["shutdownAfterJobFinishes"] is False
    assert "ttlSecondsAfterFinished" not in m["spec"]
    specs.validate_rayjob(m)


def test_merge_with_deletion_rules_keeps_shutdown_unset_and_no_ttl():
    user = yaml.safe_load(USER_YAML)
    del user["spec"]["ttlSecondsAfterFinished"]
    user["spec"]["deletionStrategy"] = {"deletionRules": [
        {"policy": "DeleteCluster", "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 30}},
        {"policy": "DeleteSelf", "condition": {"jobStatus": "FAILED", "ttlSeconds": 600}},
    ]}
    m = merge(user)
    assert "ttlSecondsAfterFinished" not in m["spec"]
    assert "shutdownAfterJobFinishes" not in m["spec"]
    specs.validate_rayjob(m)


@pytest.mark.parametrize("on_success", ["DeleteCluster", "DeleteNone"])
def test_merge_with_legacy_deletion_strategy_lets_the_strategy_decide(on_success):
    """A deletionStrategy decides the cleanup: the provider injects neither shutdownAfterJobFinishes (which KubeRay
    refuses next to a DeleteNone policy) nor a TTL (which needs it)."""
    user = yaml.safe_load(USER_YAML)
    del user["spec"]["ttlSecondsAfterFinished"]
    user["spec"]["deletionStrategy"] = {"onSuccess": {"policy": on_success}, "onFailure": {"policy": "DeleteSelf"}}
    m = merge(user)
    assert "shutdownAfterJobFinishes" not in m["spec"]
    assert "ttlSecondsAfterFinished" not in m["spec"]
    specs.validate_rayjob(m)


def test_merge_without_metadata():
    m = specs.merge_required_fields({"spec": {}}, name="a", namespace="b", labels={"x": "y"}, annotations={}, defaults={})
    assert m["metadata"] == {"name": "a", "namespace": "b", "labels": {"x": "y"}, "annotations": {}}


def test_load_manifest_upgrades_v1alpha1():
    user = yaml.safe_load(USER_YAML)
    user["apiVersion"] = "ray.io/v1alpha1"
    assert specs.load_manifest(user)["apiVersion"] == "ray.io/v1"


@pytest.mark.parametrize(
    ("manifest", "parameter"),
    [
        ({"apiVersion": "v1", "kind": "Pod", "spec": {}}, "manifest.kind"),
        ("kind: Pod\napiVersion: v1\nspec: {}\n", "manifest.kind"),
        ({"apiVersion": "ray.io/v1", "kind": "RayCluster", "spec": {}}, "manifest.kind"),
        ({"apiVersion": "batch/v1", "kind": "RayJob", "spec": {}}, "manifest.apiVersion"),
        ({"kind": "RayJob", "spec": {}}, "manifest.apiVersion"),
        ({"apiVersion": "ray.io/v1", "kind": "RayJob"}, "manifest.spec"),
        ({"apiVersion": "ray.io/v1", "kind": "RayJob", "spec": "x"}, "manifest.spec"),
        ("kind: RayJob\nspec: [\n", "manifest"),
        ("- a\n- b\n", "manifest"),
        ("", "manifest"),
        ([1, 2], "manifest"),
        (42, "manifest"),
    ],
)
def test_load_manifest_rejects(manifest, parameter):
    raises(specs.load_manifest, parameter, ..., manifest)


# -- validation ------------------------------------------------------------------------------------------

def mutated(change) -> dict:
    m = copy.deepcopy(good())  # a plain manifest (as a user writes it): problems are reported by manifest path
    change(m)
    return m


def _set(path: str, value):
    def change(m):
        *parents, last = path.split(".")
        node = m
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value
    return change


def _del(path: str):
    def change(m):
        *parents, last = path.split(".")
        node = m
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]
    return change


def _both(*changes):
    def change(m):
        for ch in changes:
            ch(m)
    return change


HEAD = "spec.rayClusterSpec.headGroupSpec"
WORKER = "spec.rayClusterSpec.workerGroupSpecs.0"
RULES = "spec.deletionStrategy"
NO_SHUTDOWN = _both(_set("spec.shutdownAfterJobFinishes", False), _set("spec.ttlSecondsAfterFinished", 0))
SELECTOR = _both(_del("spec.rayClusterSpec"), _set("spec.clusterSelector", {c.RAY_CLUSTER_LABEL: "shared"}))


def rule(policy="DeleteCluster", **cond):
    return {"policy": policy, "condition": cond or {"jobStatus": "SUCCEEDED"}}


INVALID = [
    # (id, change, parameter, value)
    ("name-48", _set("metadata.name", "x" * 48), "metadata.name", "x" * 48),
    ("name-upper", _set("metadata.name", "Train"), "metadata.name", "Train"),
    ("name-digit", _set("metadata.name", "1train"), "metadata.name", "1train"),
    ("name-missing", _del("metadata.name"), "metadata.name", None),
    ("namespace", _set("metadata.namespace", "Bad_NS"), "metadata.namespace", "Bad_NS"),
    ("label-value", _set("metadata.labels", {"run": "scheduled__2026-11-22T00:00:00+00:00"}), "metadata.labels['run']",
     "scheduled__2026-11-22T00:00:00+00:00"),
    ("spec-not-mapping", _set("spec", []), "spec", []),
    ("mode-typo", _set("spec.submissionMode", "K8sJob"), "spec.submissionMode", "K8sJob"),
    ("mode-lower", _set("spec.submissionMode", "k8sjobmode"), "spec.submissionMode", "k8sjobmode"),
    ("shutdown-string", _set("spec.shutdownAfterJobFinishes", "true"), "spec.shutdownAfterJobFinishes", "true"),
    ("ttl-negative", _set("spec.ttlSecondsAfterFinished", -1), "spec.ttlSecondsAfterFinished", -1),
    ("ttl-string", _set("spec.ttlSecondsAfterFinished", "60"), "spec.ttlSecondsAfterFinished", "60"),
    ("ttl-too-big", _set("spec.ttlSecondsAfterFinished", 2**31), "spec.ttlSecondsAfterFinished", 2**31),
    ("ttl-without-shutdown", _set("spec.shutdownAfterJobFinishes", False), "spec.ttlSecondsAfterFinished", 60),
    ("ttl-shutdown-absent", _del("spec.shutdownAfterJobFinishes"), "spec.ttlSecondsAfterFinished", 60),
    ("suspend-without-shutdown", _both(NO_SHUTDOWN, _set("spec.suspend", True)), "spec.suspend", True),
    ("suspend-with-selector", _both(SELECTOR, _set("spec.suspend", True)), "spec.suspend", True),
    ("backoff-negative", _set("spec.backoffLimit", -1), "spec.backoffLimit", -1),
    ("backoff-float", _set("spec.backoffLimit", 1.5), "spec.backoffLimit", 1.5),
    ("active-deadline-0", _set("spec.activeDeadlineSeconds", 0), "spec.activeDeadlineSeconds", 0),
    ("active-deadline-bool", _set("spec.activeDeadlineSeconds", True), "spec.activeDeadlineSeconds", True),
    ("prerunning-0", _set("spec.preRunningDeadlineSeconds", 0), "spec.preRunningDeadlineSeconds", 0),
    ("no-cluster", _del("spec.rayClusterSpec"), "spec.rayClusterSpec", None),
    ("selector-empty", _both(_del("spec.rayClusterSpec"), _set("spec.clusterSelector", {c.RAY_CLUSTER_LABEL: ""})),
     "spec.clusterSelector", {c.RAY_CLUSTER_LABEL: ""}),
    ("selector-wrong-key", _both(_del("spec.rayClusterSpec"), _set("spec.clusterSelector", {"cluster": "x"})),
     "spec.clusterSelector", {"cluster": "x"}),
    ("selector-sidecar", _both(SELECTOR, _set("spec.submissionMode", "SidecarMode")), "spec.submissionMode", "SidecarMode"),
    ("backoff-selector", _both(SELECTOR, _set("spec.backoffLimit", 2)), "spec.backoffLimit", 2),
    ("backoff-interactive", _both(_set("spec.submissionMode", "InteractiveMode"), _set("spec.backoffLimit", 1)),
     "spec.backoffLimit", 1),
    ("sidecar-submitter-template", _both(_set("spec.submissionMode", "SidecarMode"),
                                         _set("spec.submitterPodTemplate", {"spec": {"containers": [
                                             {"name": "s", "image": "i"}]}})), "spec.submitterPodTemplate", ...),
    ("sidecar-submitter-config", _both(_set("spec.submissionMode", "SidecarMode"),
                                       _set("spec.submitterConfig", {"backoffLimit": 1})), "spec.submitterConfig",
     {"backoffLimit": 1}),
    ("entrypoint-missing", _del("spec.entrypoint"), "spec.entrypoint", None),
    ("entrypoint-blank", _set("spec.entrypoint", "  "), "spec.entrypoint", "  "),
    ("runtime-env-list", _set("spec.runtimeEnvYAML", "- a\n"), "spec.runtimeEnvYAML", "- a\n"),
    ("runtime-env-mapping", _set("spec.runtimeEnvYAML", {"pip": ["x"]}), "spec.runtimeEnvYAML", {"pip": ["x"]}),
    ("runtime-env-bad-yaml", _set("spec.runtimeEnvYAML", "a: ["), "spec.runtimeEnvYAML", "a: ["),
    ("entrypoint-resources-not-json", _set("spec.entrypointResources", "{TPU: 1}"), "spec.entrypointResources", "{TPU: 1}"),
    ("entrypoint-resources-dict", _set("spec.entrypointResources", {"TPU": 1}), "spec.entrypointResources", {"TPU": 1}),
    ("entrypoint-resources-str-value", _set("spec.entrypointResources", '{"TPU": "1"}'), "spec.entrypointResources",
     '{"TPU": "1"}'),
    ("managed-by", _set("spec.managedBy", "foo"), "spec.managedBy", "foo"),
    ("deletion-not-mapping", _set(RULES, "DeleteCluster"), "spec.deletionStrategy", "DeleteCluster"),
    ("deletion-empty", _set(RULES, {}), "spec.deletionStrategy", {}),
    ("deletion-only-on-success", _set(RULES, {"onSuccess": {"policy": "DeleteCluster"}}), "spec.deletionStrategy", ...),
    ("deletion-both-modes", _both(NO_SHUTDOWN, _set(RULES, {"onSuccess": {"policy": "DeleteCluster"},
                                                             "onFailure": {"policy": "DeleteCluster"},
                                                             "deletionRules": [rule()]})), "spec.deletionStrategy", ...),
    ("deletion-legacy-bad-policy", _set(RULES, {"onSuccess": {"policy": "Nuke"}, "onFailure": {"policy": "DeleteCluster"}}),
     "spec.deletionStrategy.onSuccess.policy", "Nuke"),
    ("deletion-legacy-not-mapping", _set(RULES, {"onSuccess": "DeleteCluster", "onFailure": {"policy": "DeleteCluster"}}),
     "spec.deletionStrategy.onSuccess", "DeleteCluster"),
    ("deletion-legacy-deletenone-with-shutdown",
     _set(RULES, {"onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteNone"}}),
     "spec.shutdownAfterJobFinishes", True),
    ("ttl-without-shutdown-with-rules", _both(_set("spec.shutdownAfterJobFinishes", False),
                                              _set(RULES, {"deletionRules": [rule("DeleteSelf")]})),
     "spec.ttlSecondsAfterFinished", 60),
    ("ttl-without-shutdown-legacy", _both(_set("spec.shutdownAfterJobFinishes", False), _set(RULES, {
        "onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteNone"}})), "spec.ttlSecondsAfterFinished",
     60),
    ("deletion-rules-with-shutdown", _set(RULES, {"deletionRules": [rule()]}), "spec.shutdownAfterJobFinishes", True),
    ("deletion-rule-bad-policy", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [rule("Nuke")]})),
     "spec.deletionStrategy.deletionRules[0].policy", "Nuke"),
    ("deletion-rule-not-mapping", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": ["DeleteSelf"]})),
     "spec.deletionStrategy.deletionRules[0]", "DeleteSelf"),
    ("deletion-rule-two-conditions", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [
        rule(jobStatus="FAILED", jobDeploymentStatus="Failed")]})), "spec.deletionStrategy.deletionRules[0].condition", ...),
    ("deletion-rule-no-condition", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [{"policy": "DeleteSelf"}]})),
     "spec.deletionStrategy.deletionRules[0].condition", None),
    ("deletion-rule-job-status", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [rule(jobStatus="STOPPED")]})),
     "spec.deletionStrategy.deletionRules[0].condition.jobStatus", "STOPPED"),
    ("deletion-rule-deployment-status", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [
        rule(jobDeploymentStatus="Complete")]})), "spec.deletionStrategy.deletionRules[0].condition.jobDeploymentStatus",
     "Complete"),
    ("deletion-rule-negative-ttl", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [
        rule(jobStatus="FAILED", ttlSeconds=-5)]})), "spec.deletionStrategy.deletionRules[0].condition.ttlSeconds", -5),
    ("deletion-rule-duplicate", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [rule(), rule()]})),
     "spec.deletionStrategy.deletionRules[1]", ...),
    ("deletion-rule-cluster-with-selector", _both(NO_SHUTDOWN, SELECTOR, _set(RULES, {"deletionRules": [rule()]})),
     "spec.deletionStrategy.deletionRules[0].policy", "DeleteCluster"),
    ("deletion-rule-workers-with-autoscaling", _both(NO_SHUTDOWN, _set("spec.rayClusterSpec.enableInTreeAutoscaling", True),
                                                     _set(RULES, {"deletionRules": [rule("DeleteWorkers")]})),
     "spec.deletionStrategy.deletionRules[0].policy", "DeleteWorkers"),
    ("cluster-spec-not-mapping", _set("spec.rayClusterSpec", ["x"]), "spec.rayClusterSpec", ["x"]),
    ("no-head", _del(f"{HEAD}"), "spec.rayClusterSpec.headGroupSpec", None),
    ("head-no-template", _del(f"{HEAD}.template"), "spec.rayClusterSpec.headGroupSpec.template", None),
    ("head-no-containers", _set(f"{HEAD}.template.spec.containers", []),
     "spec.rayClusterSpec.headGroupSpec.template.spec.containers", []),
    ("head-container-no-name", _del(f"{HEAD}.template.spec.containers.0.name"),
     "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].name", None),
    ("head-container-not-mapping", _set(f"{HEAD}.template.spec.containers", ["ray-head"]),
     "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0]", "ray-head"),
    ("head-container-no-image", _set(f"{HEAD}.template.spec.containers.0.image", ""),
     "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].image", ""),
    ("head-bad-quantity", _set(f"{HEAD}.template.spec.containers.0.resources.limits.memory", "lots"),
     "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].resources.limits['memory']", "lots"),
    ("worker-no-group-name", _del(f"{WORKER}.groupName"), "spec.rayClusterSpec.workerGroupSpecs[0].groupName", None),
    ("worker-min-gt-max", _both(_set(f"{WORKER}.minReplicas", 5), _set(f"{WORKER}.maxReplicas", 2)),
     "spec.rayClusterSpec.workerGroupSpecs[0].minReplicas", 5),
    ("worker-negative-min", _set(f"{WORKER}.minReplicas", -1), "spec.rayClusterSpec.workerGroupSpecs[0].minReplicas", -1),
    ("worker-max-string", _set(f"{WORKER}.maxReplicas", "3"), "spec.rayClusterSpec.workerGroupSpecs[0].maxReplicas", "3"),
    ("worker-no-template", _del(f"{WORKER}.template"), "spec.rayClusterSpec.workerGroupSpecs[0].template", None),
]


@pytest.mark.parametrize(("change", "parameter", "value"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID])
def test_validate_rayjob_rejects(change, parameter, value):
    raises(specs.validate_rayjob, parameter, value, mutated(change))


def test_duplicate_worker_group_names_rejected():
    m = good()
    groups = m["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    groups.append(copy.deepcopy(groups[0]))
    raises(specs.validate_rayjob, "spec.rayClusterSpec.workerGroupSpecs[1].groupName", "cpu", m)


VALID = [
    ("defaults", lambda m: None),
    ("shutdown-false-ttl-0", NO_SHUTDOWN),
    ("ttl-null", _set("spec.ttlSecondsAfterFinished", None)),
    ("selector", SELECTOR),
    ("selector-with-zero-backoff", _both(SELECTOR, _set("spec.backoffLimit", 0))),
    ("http", _set("spec.submissionMode", "HTTPMode")),
    ("sidecar", _set("spec.submissionMode", "SidecarMode")),
    ("interactive-no-entrypoint", _both(_set("spec.submissionMode", "InteractiveMode"), _del("spec.entrypoint"))),
    ("backoff-3", _set("spec.backoffLimit", 3)),
    ("suspend", _set("spec.suspend", True)),
    ("deadlines", _both(_set("spec.activeDeadlineSeconds", 1), _set("spec.preRunningDeadlineSeconds", 1))),
    ("entrypoint-resources", _set("spec.entrypointResources", '{"TPU": 1, "custom": 0.5}')),
    ("managed-by-kueue", _set("spec.managedBy", "kueue.x-k8s.io/multikueue")),
    ("no-namespace", _del("metadata.namespace")),
    ("no-workers", _set("spec.rayClusterSpec.workerGroupSpecs", [])),
    ("worker-defaults-missing", _both(_del(f"{WORKER}.minReplicas"), _del(f"{WORKER}.maxReplicas"))),
    ("legacy-deletion", _set(RULES, {"onSuccess": {"policy": "DeleteCluster"}, "onFailure": {"policy": "DeleteSelf"}})),
    ("deletion-rules", _both(NO_SHUTDOWN, _set(RULES, {"deletionRules": [
        rule("DeleteWorkers", jobStatus="SUCCEEDED", ttlSeconds=0),
        rule("DeleteCluster", jobStatus="SUCCEEDED", ttlSeconds=60),
        rule("DeleteSelf", jobDeploymentStatus="Failed", ttlSeconds=600),
    ]}))),
]


@pytest.mark.parametrize("change", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_validate_rayjob_accepts(change):
    specs.validate_rayjob(mutated(change))


def test_validate_ray_cluster_spec_alone():
    specs.validate_ray_cluster_spec(cluster_spec(), "spec")
    raises(specs.validate_ray_cluster_spec, "spec", "x", "x", "spec")


def test_env_and_secret_env_may_not_share_a_name():
    raises(judged, "secret_env['DB_PASSWORD']", "DB_PASSWORD", [{"name": "cpu"}],
           head={"env": {"DB_PASSWORD": "from-env"}}, secret_env={"DB_PASSWORD": "db:password"})


def test_duplicate_image_pull_secrets_are_refused():
    raises(judged, "image_pull_secrets[1]", ..., [{"name": "cpu"}], image_pull_secrets=["regcred", "regcred"])


def test_secret_references_dns_subdomain_names_and_config_map_keys():
    assert specs.parse_secret_env({"DB_PASSWORD": "db.creds-prod:pass_word.v1"}) == {
        "DB_PASSWORD": ("db.creds-prod", "pass_word.v1")}
    judged(secret_env={"DB_PASSWORD": "db.creds-prod:pass_word.v1"})
    for ref in ("db:pass word", "Db_Creds:pw", "db:", ":pw", "db..x:pw"):
        raises(specs.parse_secret_env, "secret_env['X']", ref, {"X": ref})


def test_compact_integer_strings_render_like_jinja():
    g = NodeGroup.parse({"replicas": "3", "min_replicas": "1", "max_replicas": "5", "gpus": "1"}, "w", worker=True)
    assert (g.replicas, g.min_replicas, g.max_replicas, g.gpus) == (3, 1, 5, 1)
