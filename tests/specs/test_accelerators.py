"""GPUs and TPUs per node group: GKE's resource names, node selectors, tolerations and KubeRay's ``numOfHosts``,
checked against KubeRay's TPU samples; bad combinations refused naming the parameter, the value and the rule."""

from __future__ import annotations

import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.local import schema as local_schema
from kuberay_provider.local import validation as local_validation
from kuberay_provider.local.rayruntime import ray_start_flags
from kuberay_provider.naming import TaskInstanceIdentity
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.specs import building
from tests.specs.conftest import sample

IDENTITY = TaskInstanceIdentity(dag_id="dag", task_id="train", run_id="run")
TPU_SAMPLES = ["ray-job.tpu-jax.yaml", "ray-job.tpu-v6e-16-multihost.yaml", "ray-job.tpu-v6e-256-multihost.yaml",
               "ray-job.tpu-v6e-singlehost.yaml"]


def _build(**kwargs) -> dict:
    kwargs.setdefault("entrypoint", "python train.py")
    return RayJobOperator(task_id="train", **kwargs).build_manifest(IDENTITY)


def _workers(manifest: dict) -> list[dict]:
    return manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]


@pytest.mark.parametrize("name", TPU_SAMPLES)
def test_compact_tpu_groups_reproduce_kuberays_tpu_samples(name) -> None:
    """From the sample's own figures (chips per host, TPU type, topology, cpu, memory), the compact parameters build
    the same resources, node selector and numOfHosts; the sample itself is accepted as a manifest."""
    rayjob = sample(name)  # skips when ../shared/kuberay is absent
    [theirs] = [g for g in rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]
                if "google.com/tpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]]
    limits = theirs["template"]["spec"]["containers"][0]["resources"]["limits"]
    selector = theirs["template"]["spec"]["nodeSelector"]
    group = {"name": theirs["groupName"], "replicas": theirs["replicas"], "cpu": limits["cpu"],
             "memory": limits["memory"], "tpus": limits["google.com/tpu"],
             "tpu_accelerator": selector["cloud.google.com/gke-tpu-accelerator"],
             "tpu_topology": selector["cloud.google.com/gke-tpu-topology"]}
    [ours] = _workers(_build(worker_groups=[group], ray_version=rayjob["spec"]["rayClusterSpec"]["rayVersion"]))
    assert ours["numOfHosts"] == theirs["numOfHosts"]
    mine = ours["template"]["spec"]
    assert mine["containers"][0]["resources"]["limits"] == limits
    assert mine["containers"][0]["resources"]["requests"] == theirs["template"]["spec"]["containers"][0]["resources"][
        "requests"]
    assert mine["nodeSelector"] == selector
    assert {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"} in mine["tolerations"]
    # the sample as given is a valid manifest= for the product and the local double
    manifest = RayJobOperator(task_id="train", manifest=rayjob).build_manifest(IDENTITY)
    assert local_schema.admit("rayjobs", manifest) == [] and local_validation.validate_rayjob(manifest) is None


def test_gpus_with_an_accelerator_type() -> None:
    [group] = _workers(_build(worker_groups=[{"name": "gpu", "gpus": "2", "gpu_accelerator": "nvidia-l4"}]))
    spec = group["template"]["spec"]
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert spec["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "numOfHosts" not in group


def test_a_given_toleration_or_node_selector_is_kept_not_duplicated() -> None:
    mine = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    [group] = _workers(_build(worker_groups=[{"gpus": 1, "gpu_accelerator": "nvidia-l4", "tolerations": [mine],
                                              "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-a100-80gb"}}]))
    assert group["template"]["spec"]["tolerations"] == [mine]
    assert group["template"]["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-a100-80gb"}


def test_no_accelerator_no_change() -> None:
    [group] = _workers(_build(worker_groups=[{"name": "cpu"}]))
    assert "nodeSelector" not in group["template"]["spec"] and "tolerations" not in group["template"]["spec"]
    assert "numOfHosts" not in group


def test_single_host_tpu_head_is_accepted() -> None:
    manifest = _build(head={"tpus": 4, "tpu_topology": "2x2", "tpu_accelerator": "tpu-v6e-slice"})
    head = manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["resources"]["limits"]["google.com/tpu"] == "4"


TPU = {"tpu_accelerator": "tpu-v6e-slice"}


@pytest.mark.parametrize(("group", "parameter", "fragment"), [
    ({"gpus": -1}, "worker_groups[0].gpus", "≥ 0"),
    ({"gpus": 1.5}, "worker_groups[0].gpus", "integer"),
    ({"tpus": -4, **TPU, "tpu_topology": "2x2"}, "worker_groups[0].tpus", "≥ 0"),
    ({"tpus": 4, "tpu_topology": "2x2"}, "worker_groups[0].tpu_accelerator", "required with tpus"),
    ({"tpus": 4, **TPU}, "worker_groups[0].tpu_topology", "required with tpus"),
    ({"tpu_topology": "2x2", **TPU}, "worker_groups[0].tpus", "when tpu_topology is set"),
    ({"tpu_accelerator": "tpu-v6e-slice"}, "worker_groups[0].tpus", "when tpu_accelerator is set"),
    ({"tpus": 4, **TPU, "tpu_topology": "4by4"}, "worker_groups[0].tpu_topology", "chips per dimension"),
    ({"tpus": 4, **TPU, "tpu_topology": "2x2x1"}, "worker_groups[0].tpu_topology", "2 dimensions"),
    ({"tpus": 4, "tpu_accelerator": "tpu-v4-podslice", "tpu_topology": "2x2"}, "worker_groups[0].tpu_topology",
     "3 dimensions"),
    ({"tpus": 3, **TPU, "tpu_topology": "2x2"}, "worker_groups[0].tpu_topology", "has 4 chips"),
    ({"tpus": 8, **TPU, "tpu_topology": "2x2"}, "worker_groups[0].tpu_topology", "has 4 chips"),
    ({"tpus": 4, "tpu_accelerator": "TPU v6e!", "tpu_topology": "2x2"}, "worker_groups[0].tpu_accelerator",
     "label value"),
    ({"gpu_accelerator": "nvidia-l4"}, "worker_groups[0].gpus", "≥ 1 when gpu_accelerator"),
    ({"gpus": 1, "tpus": 4, **TPU, "tpu_topology": "2x2"}, "worker_groups[0].tpus", "either GPUs or TPUs"),
])
def test_bad_accelerator_values_are_refused_when_the_dag_is_parsed(group, parameter, fragment) -> None:
    with pytest.raises(InvalidParameterError) as err:
        RayJobOperator(task_id="train", entrypoint="python train.py", worker_groups=[group])
    assert err.value.parameter == parameter
    assert fragment in str(err.value)


def test_a_multi_host_slice_cannot_be_the_head() -> None:
    with pytest.raises(InvalidParameterError) as err:
        RayJobOperator(task_id="train", entrypoint="python train.py",
                       head={"tpus": 4, "tpu_topology": "4x4", "tpu_accelerator": "tpu-v6e-slice"})
    assert err.value.parameter == "head.tpu_topology" and "the head (one pod)" in str(err.value)


def test_a_hand_written_manifest_with_a_wrong_numofhosts_is_refused_under_its_path() -> None:
    rayjob = sample("ray-job.tpu-v6e-16-multihost.yaml")
    rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["numOfHosts"] = 2
    with pytest.raises(InvalidParameterError) as err:
        RayJobOperator(task_id="train", manifest=rayjob)
    assert "4x4 has 16 chips" in str(err.value) and "4 hosts would fit" in str(err.value)
    assert err.value.parameter.endswith("nodeSelector['cloud.google.com/gke-tpu-topology']")


@pytest.mark.parametrize(("topology", "chips"), [("2x2", 4), ("2x2x1", 4), ("4x4", 16), ("16x16", 256), ("2x2x4", 16)])
def test_tpu_chips(topology, chips) -> None:
    assert building.tpu_chips(topology) == chips


def test_the_local_double_tells_ray_about_tpus_as_kuberay_does() -> None:
    """KubeRay adds a ``TPU`` Ray resource for a ``google.com/tpu`` limit (and ``--num-gpus`` for GPUs); the local
    double, which schedules accelerator pods as if the node pool existed, starts Ray the same way."""
    template = {"spec": {"containers": [{"resources": {"limits": {"google.com/tpu": "4"}}}]}}
    assert ray_start_flags({}, template) == ['--resources={"TPU": 4}']
    assert ray_start_flags({"resources": '"{\\"TPU\\": 4}"'}, template) == ['--resources={"TPU": 4}']
    merged = ray_start_flags({"resources": '{"custom": 1}'}, template)
    assert merged == ['--resources={"custom": 1, "TPU": 4}']
    gpu = {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}]}}
    assert ray_start_flags({}, gpu) == ["--num-gpus=2"]
