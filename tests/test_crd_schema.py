"""Manifests the provider builds must pass the RayJob CRD's OpenAPI schema (KubeRay v1.7, version v1).

The API server answers a schema violation with HTTP 422 (``rayjob-status-sequences.md`` §8a); checking here
catches it without a cluster. Objects that declare ``properties`` are treated as closed
(``additionalProperties: false``) because the API server silently *prunes* unknown fields - a misspelt field
would be dropped without an error, which is worse.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuberay_provider import constants as c
from kuberay_provider import specs
from kuberay_provider.naming import TaskInstanceIdentity
from kuberay_provider.specs import crd_schema

jsonschema = pytest.importorskip("jsonschema")

SHARED = Path(os.environ.get("KUBERAY_SHARED") or Path(__file__).resolve().parents[1].parent / "shared" / "kuberay")
IDENT = TaskInstanceIdentity("etl", "train", "scheduled__2026-11-22T00:00:00+00:00", map_index=3, try_number=1)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _structural_to_jsonschema(node: Any) -> Any:
    """Kubernetes structural-schema extensions → plain JSON Schema."""
    if isinstance(node, list):
        return [_structural_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural_to_jsonschema(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if "required" in out and "properties" in out:
        # The API server applies defaults before validating: a required field with a default may be omitted.
        out["required"] = [r for r in out["required"] if "default" not in out["properties"].get(r, {})]
        if not out["required"]:
            del out["required"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if out.get("type") == "object" and "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _crd_text(filename: str) -> bytes:
    """The upstream CRD from ../shared/kuberay, else the verbatim copy vendored with the local double."""
    path = SHARED / filename
    if path.is_file():
        return path.read_bytes()
    with gzip.open(Path(crd_schema.__file__).parents[1] / "local" / "crds" / f"{filename}.gz") as fh:
        return fh.read()


def _load_validator(filename: str):
    crd = yaml.load(_crd_text(filename), Loader=_Loader)  # a safe loader (C or pure Python)
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == c.RAY_VERSION]
    schema = _structural_to_jsonschema(version["schema"]["openAPIV3Schema"])
    # metadata is validated by the API server itself, not by the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def rayjob_schema():
    return _load_validator("ray.io_rayjobs.yaml")


@pytest.fixture(scope="module")
def raycluster_schema():
    return _load_validator("ray.io_rayclusters.yaml")


def schema_errors(validator, manifest) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest)]


def _operator(**kw):
    from kuberay_provider.operators.rayjob import RayJobOperator

    kw.setdefault("task_id", "train")
    if "manifest" not in kw:
        kw.setdefault("entrypoint", "python train.py")
    return RayJobOperator(**kw)


USER_MANIFEST = """
apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: from-user
  labels: {team: ml}
spec:
  entrypoint: python user.py
  runtimeEnvYAML: |
    pip: [numpy]
  submitterPodTemplate:
    spec:
      restartPolicy: Never
      containers:
      - name: ray-job-submitter
        image: rayproject/ray:2.60.0-py311
        resources: {limits: {cpu: "1", memory: 1Gi}}
  rayClusterSpec:
    rayVersion: "2.60.0"
    headGroupSpec:
      rayStartParams: {dashboard-host: 0.0.0.0}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray:2.60.0-py311
            resources: {limits: {cpu: 2, memory: 4Gi}, requests: {cpu: 500m, memory: 4Gi}}
            volumeMounts: [{name: data, mountPath: /data}]
          volumes: [{name: data, emptyDir: {}}]
    workerGroupSpecs:
    - groupName: cpu
      replicas: 1
      minReplicas: 1
      maxReplicas: 3
      rayStartParams: {}
      template:
        spec:
          containers:
          - name: ray-worker
            image: rayproject/ray:2.60.0-py311
"""

SHAPES = {
    "minimal": lambda: _operator().build_manifest(IDENT),
    "gpus": lambda: _operator(
        head={"cpu": 4, "memory": "16Gi"},
        worker_groups=[{"name": "gpu", "gpus": 2, "replicas": 2, "resources": {"google.com/tpu": 1},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                        "image": "rayproject/ray:2.60.0-py311-gpu", "env": {"NCCL_DEBUG": "INFO"}}],
    ).build_manifest(IDENT),
    "autoscaling": lambda: _operator(
        worker_groups=[{"name": "cpu", "min_replicas": 0, "max_replicas": 10, "replicas": 0, "cpu": "500m"},
                       {"name": "big", "min_replicas": 1, "max_replicas": 2, "replicas": 1, "memory": "64Gi",
                        "labels": {"tier": "big"}, "annotations": {"note": "x"}}],
        ray_version="2.60.0", service_account="ray", image_pull_secrets=["regcred"],
        execution_timeout=__import__("datetime").timedelta(hours=1), runtime_env={"pip": ["xgboost"]},
        job_id="train-job", entrypoint_num_cpus=1, entrypoint_num_gpus=0.5, backoff_limit=2,
    ).build_manifest(IDENT),
    "cluster-selector": lambda: _operator(cluster_selector="shared", timeout=600).build_manifest(IDENT),
    "http-mode": lambda: _operator(submission_mode="HTTPMode", pre_running_deadline_seconds=None).build_manifest(IDENT),
    "user-manifest-merge": lambda: _operator(manifest=USER_MANIFEST, entrypoint=None, namespace="ray",
                                             labels={"team": "ml"}).build_manifest(IDENT),
    "build-rayjob-direct": lambda: specs.build_rayjob(
        name="direct", namespace="ray",
        job=specs.JobSettings(entrypoint="python x.py", metadata={"owner": "me"}, active_deadline_seconds=60),
        cluster_spec=specs.build_ray_cluster_spec(
            head=specs.NodeGroup.parse({"ray_start_params": {"num-cpus": "0"}}, "head", worker=False),
            worker_groups=[specs.NodeGroup.parse({"name": "w"}, "w", worker=True)],
            pod=specs.PodSettings(image="rayproject/ray:2.60.0", node_selector={"a": "b"},
                                  tolerations=[{"key": "k", "operator": "Equal", "value": "v"}]),
        ),
        labels=IDENT.labels(), annotations=IDENT.annotations(),
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_provider_manifests_pass_the_crd_schema(rayjob_schema, shape):
    manifest = SHAPES[shape]()
    specs.validate_rayjob(manifest)  # and the provider's own (operator-side) rules
    assert schema_errors(rayjob_schema, manifest) == []


def test_raycluster_manifest_passes_the_raycluster_crd(raycluster_schema):
    cluster_spec = yaml.safe_load(USER_MANIFEST)["spec"]["rayClusterSpec"]
    rc = specs.build_raycluster(name="shared", namespace="ray", cluster_spec=cluster_spec, labels={"a": "b"})
    assert schema_errors(raycluster_schema, rc) == []


def _minimal() -> dict:
    return SHAPES["minimal"]()


def _head_container(m: dict) -> dict:
    return m["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


BROKEN = {
    "container-without-name": (lambda m: _head_container(m).pop("name"), "name"),
    "ttl-as-string": (lambda m: m["spec"].update(ttlSecondsAfterFinished="60"), "ttlSecondsAfterFinished"),
    "pre-running-deadline-0": (lambda m: m["spec"].update(preRunningDeadlineSeconds=0), "preRunningDeadlineSeconds"),
    "no-head-group": (lambda m: m["spec"]["rayClusterSpec"].pop("headGroupSpec"), "headGroupSpec"),
    "misspelt-field": (lambda m: m["spec"].update(shutdownAfterJobFinish=True), "shutdownAfterJobFinish"),
    "cpu-as-list": (lambda m: _head_container(m)["resources"]["limits"].update(cpu=["2"]), "cpu"),
    "worker-without-group-name": (
        lambda m: m["spec"]["rayClusterSpec"]["workerGroupSpecs"].append(
            {"minReplicas": 0, "maxReplicas": 1, "template": {"spec": {"containers": [{"name": "w", "image": "i"}]}}}
        ),
        "groupName",
    ),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_broken_manifests_fail_the_crd_schema(rayjob_schema, broken):
    """The check can fail: typical 422 causes are caught."""
    manifest = _minimal()
    change, word = BROKEN[broken]
    change(manifest)
    errors = schema_errors(rayjob_schema, manifest)
    assert errors, broken
    assert any(word in e for e in errors), errors


def test_int_or_string_quantities_accept_both(rayjob_schema):
    manifest = _minimal()
    limits = _head_container(manifest)["resources"]["limits"]
    for value in (2, "2", "500m"):
        m = copy.deepcopy(manifest)
        _head_container(m)["resources"]["limits"]["cpu"] = value
        assert schema_errors(rayjob_schema, m) == [], value
    assert limits["cpu"] == "1"
    # A float is neither: the provider turns compact quantities into strings first.
    m = copy.deepcopy(manifest)
    _head_container(m)["resources"]["limits"]["cpu"] = 1.5
    assert schema_errors(rayjob_schema, m)
    assert _head_container(_operator(head={"cpu": 1.5}).build_manifest(IDENT))["resources"]["limits"]["cpu"] == "1.5"


def test_vendored_crds_are_kuberay_v1_7():
    """The local double's gzip copies are byte-identical to v1.7.0 (sha256 in its PROVENANCE.md, and ../shared if
    present); the product's JSON schemas are exactly their ``v1`` openAPIV3Schema."""
    local_dir = Path(crd_schema.__file__).parents[1] / "local" / "crds"
    expected = {name: digest for digest, name in re.findall(
        r"^([0-9a-f]{64})  (\S+)$", (local_dir / "PROVENANCE.md").read_text(), re.M)}
    assert set(expected) == {"ray.io_rayjobs.yaml", "ray.io_rayclusters.yaml"}
    for name, digest in expected.items():
        with gzip.open(local_dir / f"{name}.gz") as fh:
            text = fh.read()
        assert hashlib.sha256(text).hexdigest() == digest, name
        if (SHARED / name).is_file():
            assert (SHARED / name).read_bytes() == text
        crd = yaml.load(text, Loader=_Loader)
        [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        kind = crd["spec"]["names"]["kind"]
        assert crd_schema.openapi_schema(kind) == v1["schema"]["openAPIV3Schema"], name


def test_judge_defaults_a_copy_like_the_api_server():
    manifest = _minimal()
    manifest["spec"].pop("submissionMode")
    defaulted, problems = crd_schema.judge(manifest)
    assert problems == []
    assert defaulted["spec"]["submissionMode"] == "K8sJobMode" and "submissionMode" not in manifest["spec"]
    worker = {"groupName": "w", "template": {"spec": {"containers": [{"name": "w", "image": "i"}]}}}
    manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"] = [worker]
    defaulted, _ = crd_schema.judge(manifest)
    assert (defaulted["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["minReplicas"],
            defaulted["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplicas"]) == (0, 2**31 - 1)


@pytest.mark.parametrize(("change", "path", "words"), [
    (lambda m: _head_container(m).update(imagePullPolcy="Always"),
     "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].imagePullPolcy", "silently drop"),
    (lambda m: m["spec"]["rayClusterSpec"]["headGroupSpec"]["template"].setdefault("metadata", {}).update(
        generateName="x"), "spec.rayClusterSpec.headGroupSpec.template.metadata.generateName", "silently drop"),
    (lambda m: m["spec"]["rayClusterSpec"].update(gcsFaultToleranceOptions={"backend": "etcd"}),
     "spec.rayClusterSpec.gcsFaultToleranceOptions.backend", "must be one of"),
    (lambda m: m["spec"].update(backoffLimit=2**31), "spec.backoffLimit", "int32"),
    (lambda m: _head_container(m)["resources"]["limits"].update(cpu=1.5), None, "integer or a string"),
    (lambda m: _head_container(m)["resources"]["limits"].update(cpu="1.5 cores"), None, "quantity"),
    (lambda m: m["spec"].update(entrypointNumCpus="1"), "spec.entrypointNumCpus", "a number"),
    (lambda m: m["spec"]["rayClusterSpec"].update(autoscalerOptions={"upscalingMode": "Fast"}), None, "one of"),
])
def test_judge_refuses_what_the_api_server_refuses_or_prunes(change, path, words):
    manifest = _minimal()
    change(manifest)
    _, problems = crd_schema.judge(manifest)
    assert problems, manifest
    assert any(words in rule and (path is None or where == path) for where, rule in problems), problems


def test_every_manifest_the_provider_accepts_passes_the_crd_schema(rayjob_schema):
    """Cross-check: the provider's own validation never accepts what the API server would refuse."""
    from tests.test_specs import VALID, mutated

    for name, change in VALID:
        manifest = mutated(change)
        if manifest["spec"].get("ttlSecondsAfterFinished", 0) is None:
            continue  # null means "unset" to the provider; the API server drops it
        specs.validate_rayjob(manifest)
        assert schema_errors(rayjob_schema, manifest) == [], name
