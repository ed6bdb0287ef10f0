"""KubeRay ``authOptions`` token auth: passed through to the RayCluster spec, judged by KubeRay's rules, and no token
material anywhere the provider writes (the end-to-end check of XComs and logs is in tests/integration/test_kueue.py)."""

from __future__ import annotations

import json

import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.local import validation as local_validation
from kuberay_provider.naming import TaskInstanceIdentity
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.specs import ray_version_of_image

IDENTITY = TaskInstanceIdentity(dag_id="dag", task_id="train", run_id="run")


def _build(**kwargs) -> dict:
    kwargs.setdefault("entrypoint", "python train.py")
    return RayJobOperator(task_id="train", **kwargs).build_manifest(IDENTITY)


def test_enabled_token_auth_is_passed_through_with_the_image_ray_version() -> None:
    cluster = _build(enable_token_auth=True)["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    assert cluster["rayVersion"] == "2.60.0"  # from rayproject/ray:2.60.0-py311: KubeRay needs it for token auth


def test_a_named_secret_implies_token_auth_and_an_explicit_ray_version_wins() -> None:
    cluster = _build(token_auth_secret="ray-token", ray_version="2.55.0")["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token", "secretName": "ray-token"}
    assert cluster["rayVersion"] == "2.55.0"


def test_off_by_default() -> None:
    assert "authOptions" not in _build()["spec"]["rayClusterSpec"]


def test_the_local_double_accepts_it() -> None:
    assert local_validation.validate_rayjob(_build(token_auth_secret="ray-token")) is None


def test_a_user_manifest_gets_auth_options_too() -> None:
    manifest = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "x"},
                "spec": {"entrypoint": "python x.py", "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {},
                         "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.57.0"}]}}}}}}
    cluster = RayJobOperator(task_id="t", manifest=manifest, enable_token_auth=True).build_manifest(IDENTITY)[
        "spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"} and cluster["rayVersion"] == "2.57.0"


@pytest.mark.parametrize(("kwargs", "parameter", "fragment"), [
    ({"enable_token_auth": True, "image": "my/ray:latest"}, "ray_version", "names no Ray version"),
    ({"enable_token_auth": True, "ray_version": "2.51.0"}, "ray_version", "2.52.0 or later"),
    ({"token_auth_secret": "Not_A_Secret"}, "token_auth_secret", "DNS-1123"),
    ({"token_auth_secret": 5}, "token_auth_secret", "name of a Kubernetes Secret"),
    ({"enable_token_auth": True, "cluster_selector": "shared"}, "enable_token_auth", "cluster_selector"),
])
def test_bad_auth_settings_are_refused(kwargs, parameter, fragment) -> None:
    with pytest.raises(InvalidParameterError) as err:
        RayJobOperator(task_id="t", entrypoint="python x.py", **kwargs)
    assert err.value.parameter == parameter and fragment in str(err.value)


def test_a_token_passed_as_the_flag_is_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidParameterError) as err:
        RayJobOperator(task_id="t", entrypoint="python x.py", enable_token_auth="s3cr3t-t0ken-value")
    assert err.value.parameter == "enable_token_auth"
    assert "s3cr3t" not in str(err.value) and "s3cr3t" not in repr(err.value.value)


def test_the_manifest_references_the_secret_by_name_only() -> None:
    text = json.dumps(_build(token_auth_secret="ray-token"))
    assert text.count("ray-token") == 1  # authOptions.secretName, nothing copied anywhere else
    assert "RAY_AUTH_TOKEN" not in text  # KubeRay injects it; the provider never sets it


@pytest.mark.parametrize(("image", "version"), [
    ("rayproject/ray:2.60.0-py311", "2.60.0"), ("rayproject/ray:2.52.0", "2.52.0"),
    ("us-docker.pkg.dev/p/r/ray:2.55.1-gpu", "2.55.1"), ("localhost:5000/ray:2.60.0", "2.60.0"),
    ("rayproject/ray:latest", None), ("rayproject/ray", None), ("my/ray@sha256:abc", None),
])
def test_ray_version_of_image(image, version) -> None:
    assert ray_version_of_image(image) == version


def test_a_standalone_raycluster_gets_token_auth_and_accelerators_too() -> None:
    from kuberay_provider.operators.raycluster import RayClusterCreateOperator

    op = RayClusterCreateOperator(task_id="c", name="shared", enable_token_auth=True, worker_groups=[
        {"name": "tpu", "tpus": 4, "tpu_topology": "4x4", "tpu_accelerator": "tpu-v6e-slice"}])
    spec = op.build_manifest()["spec"]
    assert spec["authOptions"] == {"mode": "token"} and spec["rayVersion"] == "2.60.0"
    assert spec["workerGroupSpecs"][0]["numOfHosts"] == 4
    with pytest.raises(InvalidParameterError) as err:
        RayClusterCreateOperator(task_id="c", name="shared", token_auth_secret="Bad_Name")
    assert err.value.parameter == "token_auth_secret"
