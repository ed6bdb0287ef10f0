"""Building and validating RayJob manifests (pure: dicts in, dicts out, no I/O).

:func:`build_rayjob` turns compact operator parameters into a KubeRay v1.7 ``RayJob`` manifest;
:func:`merge_required_fields` puts the provider's identity and safe defaults into a user-supplied manifest;
:func:`validate_rayjob` checks everything KubeRay's operator would later reject with ``ValidationFailed``
(and a few things it silently accepts but never finishes, such as an unknown ``submissionMode``), so bad
input fails before any cluster is created.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.naming import (
    validate_dns_subdomain,
    validate_labels,
    validate_namespace,
    validate_rayjob_name,
)

SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
DEFAULT_SUBMISSION_MODE = "K8sJobMode"
DEFAULT_TTL_SECONDS_AFTER_FINISHED = 60
DEFAULT_PRE_RUNNING_DEADLINE_SECONDS = 900
DEFAULT_BACKOFF_LIMIT = 0
MANAGED_BY_VALUES = ("ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue")
DELETION_POLICIES = ("DeleteCluster", "DeleteWorkers", "DeleteSelf", "DeleteNone")
INT32_MAX = 2**31 - 1

# A Kubernetes resource quantity (k8s.io/apimachinery resource.Quantity), non-negative.
_QUANTITY = re.compile(r"^\+?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
#: Environment variable names that look like credentials: their values must come from a Kubernetes Secret.
SECRET_LIKE_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)
_GROUP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Environment variable names Kubernetes accepts (C_IDENTIFIER plus '-' and '.').
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
#: A Ray submission id that survives being a shell argument and a URL path segment.
SUBMISSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RAY_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
_NODE_GROUP_KEYS = frozenset(
    {"name", "cpu", "memory", "gpus", "resources", "replicas", "min_replicas", "max_replicas", "image",
     "ray_start_params", "node_selector", "tolerations", "labels", "annotations", "env"}
)


def _plain_env(env: Mapping[str, Any], parameter: str) -> dict[str, str]:
    validate_env_names(env, parameter)
    reject_inline_secrets(env, parameter)
    return {k: str(v) for k, v in env.items()}


def validate_env_names(env: Mapping[str, Any], parameter: str) -> None:
    """Raise unless every key is an environment variable name Kubernetes accepts."""
    for name in env:
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise InvalidParameterError(
                f"{parameter}[{name!r}]", name, "must be an environment variable name: letters, digits, '_', '-', '.', "
                "not starting with a digit"
            )


def validate_annotations(annotations: Mapping[str, Any], parameter: str) -> dict[str, str]:
    """Annotation keys follow the label-name rules; values may be any string."""
    validate_labels({k: "" for k in annotations}, parameter)  # the key rules (an empty value is a valid label value)
    for key, value in annotations.items():
        if not isinstance(value, str):
            raise InvalidParameterError(f"{parameter}[{key!r}]", value, "must be a string")
    return dict(annotations)


def validate_tolerations(tolerations: Any, parameter: str) -> list[dict[str, Any]]:
    """A list of toleration mappings (a single string or mapping is refused rather than misread)."""
    if tolerations is None:
        return []
    if not isinstance(tolerations, Sequence) or isinstance(tolerations, str) or not all(
        isinstance(t, Mapping) for t in tolerations
    ):
        raise InvalidParameterError(parameter, tolerations, "must be a list of toleration mappings")
    return [dict(t) for t in tolerations]


def validate_quantity(value: Any, parameter: str) -> str:
    """Return ``value`` as a Kubernetes quantity string, or raise naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidParameterError(parameter, value, "must be a Kubernetes quantity such as '2', '500m' or '4Gi'")
    text = str(value).strip()
    if not _QUANTITY.match(text):
        raise InvalidParameterError(parameter, value, "must be a Kubernetes quantity such as '2', '500m' or '4Gi'")
    return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_param(value: Any, parameter: str, *, minimum: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(parameter, value, f"must be an integer ≥ {minimum}")
    if value < minimum or value > INT32_MAX:
        raise InvalidParameterError(parameter, value, f"must be an integer ≥ {minimum} (and fit in int32)")
    return value


@dataclass(frozen=True)
class NodeGroup:
    """Compact description of the head or one worker group."""

    name: str = "headgroup"
    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0
    resources: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    image: str | None = None
    ray_start_params: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | NodeGroup | None, parameter: str, *, worker: bool) -> NodeGroup:
        """Validate a dict such as ``{"cpu": 2, "memory": "4Gi", "replicas": 2}``."""
        if isinstance(raw, NodeGroup):
            raw = {k: getattr(raw, k) for k in _NODE_GROUP_KEYS}
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise InvalidParameterError(parameter, raw, "must be a mapping such as {'cpu': 2, 'memory': '4Gi'}")
        unknown = sorted(set(raw) - _NODE_GROUP_KEYS)
        if unknown:
            raise InvalidParameterError(
                f"{parameter}.{unknown[0]}", raw[unknown[0]], f"is not a known key; use one of {sorted(_NODE_GROUP_KEYS)}"
            )
        name = raw.get("name", "workers" if worker else "headgroup")
        if worker and (not isinstance(name, str) or len(name) > 63 or not _GROUP_NAME.match(name)):
            raise InvalidParameterError(f"{parameter}.name", name, "must be a DNS-1123 label (lower-case, ≤ 63)")
        gpus = _int_param(raw.get("gpus", 0), f"{parameter}.gpus", minimum=0)
        resources = raw.get("resources") or {}
        if not isinstance(resources, Mapping):
            raise InvalidParameterError(f"{parameter}.resources", resources, "must be a mapping of resource name to quantity")
        replicas = min_r = max_r = 0
        if worker:
            # Without an explicit replica count start at the autoscaling floor (1 if no bounds are given).
            default_replicas = 1
            if _is_int(raw.get("min_replicas")):
                default_replicas = raw["min_replicas"]
            elif _is_int(raw.get("max_replicas")):
                default_replicas = min(1, raw["max_replicas"])
            replicas = _int_param(raw.get("replicas", default_replicas), f"{parameter}.replicas", minimum=0)
            min_r = _int_param(raw.get("min_replicas", replicas), f"{parameter}.min_replicas", minimum=0)
            max_r = _int_param(raw.get("max_replicas", max(replicas, min_r)), f"{parameter}.max_replicas", minimum=0)
            if min_r > max_r:
                raise InvalidParameterError(
                    f"{parameter}.min_replicas", min_r, f"must not exceed max_replicas ({max_r})"
                )
            if not min_r <= replicas <= max_r:
                raise InvalidParameterError(
                    f"{parameter}.replicas", replicas, f"must lie between min_replicas ({min_r}) and max_replicas ({max_r})"
                )
        for key in ("ray_start_params", "node_selector", "labels", "annotations", "env"):
            value = raw.get(key) or {}
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise InvalidParameterError(f"{parameter}.{key}", value, "must be a mapping with string keys")
        for key in ("node_selector", "labels"):
            validate_labels(dict(raw.get(key) or {}), f"{parameter}.{key}")
        validate_annotations(raw.get("annotations") or {}, f"{parameter}.annotations")
        tolerations = validate_tolerations(raw.get("tolerations") or (), f"{parameter}.tolerations")
        image = raw.get("image")
        if image is not None and (not isinstance(image, str) or not image.strip() or any(ch.isspace() for ch in image)):
            raise InvalidParameterError(f"{parameter}.image", image, "must be a container image reference without spaces")
        return cls(
            name=name,
            cpu=validate_quantity(raw.get("cpu", "1"), f"{parameter}.cpu"),
            memory=validate_quantity(raw.get("memory", "2Gi"), f"{parameter}.memory"),
            gpus=gpus,
            resources={k: validate_quantity(v, f"{parameter}.resources[{k!r}]") for k, v in resources.items()},
            replicas=replicas,
            min_replicas=min_r if worker else None,
            max_replicas=max_r if worker else None,
            image=image,
            ray_start_params={k: str(v) for k, v in (raw.get("ray_start_params") or {}).items()},
            node_selector=dict(raw.get("node_selector") or {}),
            tolerations=tolerations,
            labels=dict(raw.get("labels") or {}),
            annotations=dict(raw.get("annotations") or {}),
            env=_plain_env(raw.get("env") or {}, f"{parameter}.env"),
        )

    def resource_requirements(self) -> dict[str, dict[str, str]]:
        """Requests equal limits for CPU and memory (what Ray recommends); GPUs and extras as limits."""
        requests = {"cpu": self.cpu, "memory": self.memory}
        limits = dict(requests)
        if self.gpus:
            limits["nvidia.com/gpu"] = str(self.gpus)
            requests["nvidia.com/gpu"] = str(self.gpus)
        for key, value in self.resources.items():
            limits[key] = value
            requests[key] = value
        return {"requests": requests, "limits": limits}


def reject_inline_secrets(env: Mapping[str, Any], parameter: str) -> None:
    """Refuse credential-looking variables with literal values: they would be stored in the RayJob spec in clear."""
    for name in env:
        if SECRET_LIKE_NAME.search(str(name)):
            raise InvalidParameterError(
                f"{parameter}[{name!r}]", "***",
                "looks like a credential; pass it with secret_env={'NAME': 'k8s-secret-name:key'} (a Kubernetes "
                "Secret reference) or use Workload Identity, so it never appears in the RayJob spec",
            )


def parse_secret_env(secret_env: Mapping[str, Any] | None, parameter: str = "secret_env") -> dict[str, tuple[str, str]]:
    """``{"ENV": "secret-name:key"}`` (or ``{"ENV": {"secret": ..., "key": ...}}``) → ``{"ENV": (secret, key)}``."""
    if not secret_env:
        return {}
    if not isinstance(secret_env, Mapping):
        raise InvalidParameterError(parameter, secret_env, "must map environment variable names to 'secret-name:key'")
    parsed: dict[str, tuple[str, str]] = {}
    for env_name, ref in secret_env.items():
        if isinstance(ref, Mapping):
            secret, key = ref.get("secret"), ref.get("key")
        elif isinstance(ref, str) and ref.count(":") == 1:
            secret, key = ref.split(":")
        else:
            secret = key = None
        validate_env_names({env_name: None}, parameter)
        if not (isinstance(env_name, str) and env_name and secret and key and _GROUP_NAME.match(secret)):
            raise InvalidParameterError(
                f"{parameter}[{env_name!r}]", ref, "must be 'secret-name:key' naming a Kubernetes Secret and one of its keys"
            )
        parsed[env_name] = (secret, key)
    return parsed


@dataclass(frozen=True)
class PodSettings:
    """Pod-level settings shared by all groups."""

    image: str
    service_account: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    image_pull_secrets: Sequence[str] = ()
    secret_env: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.service_account is not None:
            validate_dns_subdomain(self.service_account, "service_account")
        if not isinstance(self.node_selector, Mapping):
            raise InvalidParameterError("node_selector", self.node_selector, "must be a mapping of label names to values")
        validate_labels(dict(self.node_selector), "node_selector")
        validate_tolerations(self.tolerations, "tolerations")
        if isinstance(self.image_pull_secrets, str) or not isinstance(self.image_pull_secrets, Sequence):
            raise InvalidParameterError("image_pull_secrets", self.image_pull_secrets, "must be a list of Secret names")
        for i, secret in enumerate(self.image_pull_secrets):
            validate_dns_subdomain(secret, f"image_pull_secrets[{i}]")


def _pod_template(group: NodeGroup, pod: PodSettings, container_name: str, ports: list[dict]) -> dict:
    container: dict[str, Any] = {
        "name": container_name,
        "image": group.image or pod.image,
        "resources": group.resource_requirements(),
    }
    if ports:
        container["ports"] = ports
    env = [{"name": k, "value": v} for k, v in group.env.items()]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for k, (secret, key) in pod.secret_env.items()]
    if env:
        container["env"] = env
    spec: dict[str, Any] = {"containers": [container]}
    if pod.service_account:
        spec["serviceAccountName"] = pod.service_account
    node_selector = {**pod.node_selector, **group.node_selector}
    if node_selector:
        spec["nodeSelector"] = node_selector
    tolerations = [*pod.tolerations, *group.tolerations]
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if pod.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in pod.image_pull_secrets]
    template: dict[str, Any] = {"spec": spec}
    meta = {k: dict(v) for k, v in (("labels", group.labels), ("annotations", group.annotations)) if v}
    if meta:
        template["metadata"] = meta
    return template


def build_ray_cluster_spec(
    *,
    head: NodeGroup,
    worker_groups: Sequence[NodeGroup],
    pod: PodSettings,
    ray_version: str | None = None,
) -> dict[str, Any]:
    """The ``rayClusterSpec`` of a RayJob (also the ``spec`` of a standalone RayCluster)."""
    head_ports = [
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265},
        {"name": "client", "containerPort": 10001},
    ]
    spec: dict[str, Any] = {
        "headGroupSpec": {
            "rayStartParams": {"dashboard-host": "0.0.0.0", **head.ray_start_params},
            "template": _pod_template(head, pod, "ray-head", head_ports),
        },
        "workerGroupSpecs": [
            {
                "groupName": group.name,
                "replicas": group.replicas,
                "minReplicas": group.min_replicas,
                "maxReplicas": group.max_replicas,
                "rayStartParams": dict(group.ray_start_params),
                "template": _pod_template(group, pod, "ray-worker", []),
            }
            for group in worker_groups
        ],
    }
    if any(g.min_replicas != g.max_replicas for g in worker_groups):
        spec["enableInTreeAutoscaling"] = True
    if ray_version:
        if not isinstance(ray_version, str) or not RAY_VERSION.match(ray_version):
            raise InvalidParameterError("ray_version", ray_version, "must be a Ray version such as '2.60.0'")
        spec["rayVersion"] = ray_version
    return spec


def runtime_env_yaml(runtime_env: Mapping[str, Any] | str | None, parameter: str = "runtime_env") -> str | None:
    """Serialise a runtime_env mapping (or check a YAML/JSON string) into ``runtimeEnvYAML``."""
    if runtime_env is None or runtime_env == {} or runtime_env == "":
        return None
    if isinstance(runtime_env, str):
        try:
            parsed = yaml.safe_load(runtime_env)
        except yaml.YAMLError as exc:
            raise InvalidParameterError(parameter, runtime_env, f"is not valid YAML: {exc}") from None
        if not isinstance(parsed, dict):
            raise InvalidParameterError(parameter, runtime_env, "must be a mapping (KubeRay requires runtimeEnvYAML to be a map)")
        if isinstance(parsed.get("env_vars"), Mapping):
            reject_inline_secrets(parsed["env_vars"], f"{parameter}.env_vars")
        return runtime_env
    if not isinstance(runtime_env, Mapping):
        raise InvalidParameterError(parameter, runtime_env, "must be a mapping such as {'pip': ['xgboost']}")
    env_vars = runtime_env.get("env_vars") or {}
    if not isinstance(env_vars, Mapping):
        raise InvalidParameterError(f"{parameter}.env_vars", env_vars, "must be a mapping of names to values")
    reject_inline_secrets(env_vars, f"{parameter}.env_vars")
    return yaml.safe_dump(dict(runtime_env), sort_keys=True)


@dataclass(frozen=True)
class JobSettings:
    """RayJob-level settings with the provider's safe defaults."""

    entrypoint: str | None = None
    runtime_env: Mapping[str, Any] | str | None = None
    submission_mode: str = DEFAULT_SUBMISSION_MODE
    shutdown_after_job_finishes: bool = True
    ttl_seconds_after_finished: int = DEFAULT_TTL_SECONDS_AFTER_FINISHED
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    pre_running_deadline_seconds: int | None = DEFAULT_PRE_RUNNING_DEADLINE_SECONDS
    active_deadline_seconds: int | None = None
    job_id: str | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    cluster_selector: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        for parameter in ("entrypoint_num_cpus", "entrypoint_num_gpus"):
            value = getattr(self, parameter)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise InvalidParameterError(parameter, value, "must be a number ≥ 0 (CPUs/GPUs reserved for the driver)")
        if self.job_id is not None and (not isinstance(self.job_id, str) or not SUBMISSION_ID.match(self.job_id)):
            raise InvalidParameterError(
                "job_id", self.job_id, "must be 1-128 characters of letters, digits, '_', '.' and '-' (a Ray submission id)"
            )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "submissionMode": self.submission_mode,
            "shutdownAfterJobFinishes": self.shutdown_after_job_finishes,
            "ttlSecondsAfterFinished": self.ttl_seconds_after_finished,
            "backoffLimit": self.backoff_limit,
        }
        if self.entrypoint is not None:
            spec["entrypoint"] = self.entrypoint
        env_yaml = runtime_env_yaml(self.runtime_env)
        if env_yaml:
            spec["runtimeEnvYAML"] = env_yaml
        if self.pre_running_deadline_seconds is not None:
            spec["preRunningDeadlineSeconds"] = self.pre_running_deadline_seconds
        if self.active_deadline_seconds is not None:
            spec["activeDeadlineSeconds"] = self.active_deadline_seconds
        if self.job_id:
            spec["jobId"] = self.job_id
        if self.entrypoint_num_cpus:
            spec["entrypointNumCpus"] = self.entrypoint_num_cpus
        if self.entrypoint_num_gpus:
            spec["entrypointNumGpus"] = self.entrypoint_num_gpus
        if self.metadata:
            spec["metadata"] = dict(self.metadata)
        if self.cluster_selector:
            spec["clusterSelector"] = dict(self.cluster_selector)
        return spec


def build_rayjob(
    *,
    name: str,
    namespace: str,
    job: JobSettings,
    cluster_spec: Mapping[str, Any] | None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A complete RayJob manifest. ``cluster_spec`` is ``None`` when ``job.cluster_selector`` names a cluster."""
    spec = job.to_spec()
    if cluster_spec is not None:
        spec["rayClusterSpec"] = copy.deepcopy(dict(cluster_spec))
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": c.RAY_API_VERSION, "kind": c.RAYJOB_KIND, "metadata": metadata, "spec": spec}


def build_raycluster(
    *,
    name: str,
    namespace: str,
    cluster_spec: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A standalone RayCluster manifest (for a cluster shared by several tasks)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": c.RAY_API_VERSION,
        "kind": c.RAYCLUSTER_KIND,
        "metadata": metadata,
        "spec": copy.deepcopy(dict(cluster_spec)),
    }


def load_manifest(manifest: Mapping[str, Any] | str, parameter: str = "manifest") -> dict[str, Any]:
    """Accept a dict or a YAML/JSON string (a rendered ``.yaml`` template) and return a dict copy."""
    if isinstance(manifest, str):
        try:
            loaded = yaml.safe_load(manifest)
        except yaml.YAMLError as exc:
            raise InvalidParameterError(parameter, manifest, f"is not valid YAML: {exc}") from None
    else:
        loaded = manifest
    if not isinstance(loaded, Mapping):
        raise InvalidParameterError(parameter, manifest, "must be a RayJob manifest (a mapping or YAML document)")
    loaded = copy.deepcopy(dict(loaded))
    if loaded.get("kind") != c.RAYJOB_KIND:
        raise InvalidParameterError(f"{parameter}.kind", loaded.get("kind"), "must be 'RayJob'")
    api_version = loaded.get("apiVersion")
    if api_version not in (c.RAY_API_VERSION, f"{c.RAY_GROUP}/v1alpha1"):
        raise InvalidParameterError(f"{parameter}.apiVersion", api_version, f"must be '{c.RAY_API_VERSION}'")
    loaded["apiVersion"] = c.RAY_API_VERSION
    if not isinstance(loaded.get("spec"), Mapping):
        raise InvalidParameterError(f"{parameter}.spec", loaded.get("spec"), "must be a mapping")
    return loaded


def merge_required_fields(
    manifest: Mapping[str, Any],
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """Put the provider's identity into a user manifest; fill safe defaults only where the user set nothing."""
    merged = copy.deepcopy(dict(manifest))
    meta = merged.setdefault("metadata", {})
    meta["name"] = name
    meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    for drop in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "generateName"):
        meta.pop(drop, None)
    merged.pop("status", None)
    spec = merged["spec"]
    strategy = spec.get("deletionStrategy")
    rules_mode = isinstance(strategy, Mapping) and bool(strategy.get("deletionRules"))
    for key, value in defaults.items():
        # A TTL needs shutdownAfterJobFinishes=true, and deletionRules need it false: never inject a default
        # that turns a valid user manifest into one KubeRay rejects.
        if key == "ttlSecondsAfterFinished" and (strategy or spec.get("shutdownAfterJobFinishes") is False):
            continue
        if key == "shutdownAfterJobFinishes" and rules_mode:
            continue
        spec.setdefault(key, value)
    return merged


def _check_positive_int(spec: Mapping[str, Any], key: str, minimum: int) -> None:
    if key in spec and spec[key] is not None:
        _int_param(spec[key], f"spec.{key}", minimum=minimum)


def validate_rayjob(manifest: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterError` for anything KubeRay v1.7 rejects or never finishes.

    Covers the operator-side rules of ``rayjob-semantics.md`` §2 and §8b plus structural checks the API
    server would answer with HTTP 422.
    """
    meta = manifest.get("metadata") or {}
    validate_rayjob_name(meta.get("name", ""), "metadata.name")
    validate_namespace(meta.get("namespace") or c.DEFAULT_NAMESPACE, "metadata.namespace")
    validate_labels(dict(meta.get("labels") or {}), "metadata.labels")
    spec = manifest.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidParameterError("spec", spec, "must be a mapping")
    mode = spec.get("submissionMode", DEFAULT_SUBMISSION_MODE)
    if mode not in SUBMISSION_MODES:
        raise InvalidParameterError(
            "submission_mode", mode, f"must be one of {list(SUBMISSION_MODES)} (KubeRay accepts typos and then never finishes)"
        )
    shutdown = spec.get("shutdownAfterJobFinishes", False)
    if not isinstance(shutdown, bool):
        raise InvalidParameterError("shutdown_after_job_finishes", shutdown, "must be true or false")
    _check_positive_int(spec, "ttlSecondsAfterFinished", 0)
    if (spec.get("ttlSecondsAfterFinished") or 0) > 0 and not shutdown:  # checked by KubeRay whatever the deletionStrategy
        raise InvalidParameterError(
            "ttl_seconds_after_finished",
            spec["ttlSecondsAfterFinished"],
            "requires shutdown_after_job_finishes=True (KubeRay ignores or rejects a TTL without it)",
        )
    if spec.get("suspend") and not shutdown:
        raise InvalidParameterError("spec.suspend", True, "requires shutdownAfterJobFinishes=true")
    _check_positive_int(spec, "backoffLimit", 0)
    _check_positive_int(spec, "activeDeadlineSeconds", 1)
    _check_positive_int(spec, "preRunningDeadlineSeconds", 1)
    selector = spec.get("clusterSelector")
    cluster_spec = spec.get("rayClusterSpec")
    if not selector and not cluster_spec:
        raise InvalidParameterError("spec.rayClusterSpec", cluster_spec, "one of rayClusterSpec or clusterSelector must be set")
    if selector:
        if not isinstance(selector, Mapping) or not selector.get(c.RAY_CLUSTER_LABEL):
            raise InvalidParameterError(
                "cluster_selector", selector, f"must name the cluster with a non-empty '{c.RAY_CLUSTER_LABEL}' key"
            )
        if mode == "SidecarMode":
            raise InvalidParameterError("submission_mode", mode, "SidecarMode cannot be used with clusterSelector")
        if spec.get("suspend"):
            raise InvalidParameterError("spec.suspend", True, "is not allowed with clusterSelector")
    if spec.get("backoffLimit", 0) and (selector or mode == "InteractiveMode"):
        raise InvalidParameterError(
            "backoff_limit", spec["backoffLimit"], "must be 0 with clusterSelector or InteractiveMode"
        )
    if mode == "SidecarMode" and (spec.get("submitterPodTemplate") or spec.get("submitterConfig")):
        raise InvalidParameterError(
            "submission_mode", mode, "SidecarMode does not allow submitterPodTemplate or submitterConfig"
        )
    if mode != "InteractiveMode" and not (isinstance(spec.get("entrypoint"), str) and spec["entrypoint"].strip()):
        raise InvalidParameterError("entrypoint", spec.get("entrypoint"), "must be a non-empty shell command")
    if "runtimeEnvYAML" in spec:
        if not isinstance(spec["runtimeEnvYAML"], str):  # the CRD field is a string (HTTP 422 otherwise)
            raise InvalidParameterError("spec.runtimeEnvYAML", spec["runtimeEnvYAML"], "must be a YAML string, not a mapping")
        runtime_env_yaml(spec["runtimeEnvYAML"], "runtime_env")
    if "entrypointResources" in spec:
        _validate_entrypoint_resources(spec["entrypointResources"])
    if "managedBy" in spec and spec["managedBy"] not in MANAGED_BY_VALUES:
        raise InvalidParameterError("spec.managedBy", spec["managedBy"], f"must be one of {list(MANAGED_BY_VALUES)}")
    if spec.get("deletionStrategy") is not None:
        _validate_deletion_strategy(
            spec["deletionStrategy"], shutdown=shutdown, selector=bool(selector),
            autoscaling=isinstance(cluster_spec, Mapping) and bool(cluster_spec.get("enableInTreeAutoscaling")),
        )
    if cluster_spec:
        validate_ray_cluster_spec(cluster_spec, "spec.rayClusterSpec")
    submitter = spec.get("submitterPodTemplate")
    if isinstance(submitter, Mapping):
        for i, container in enumerate((submitter.get("spec") or {}).get("containers") or []):
            if isinstance(container, Mapping):
                _reject_literal_secret_env(container.get("env"), f"spec.submitterPodTemplate.spec.containers[{i}].env")


def _validate_entrypoint_resources(value: Any) -> None:
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed.values()
    ):
        raise InvalidParameterError(
            "spec.entrypointResources", value, "must be a JSON object of resource name to number, e.g. '{\"TPU\": 1}'"
        )


def _validate_deletion_strategy(strategy: Any, *, shutdown: bool, selector: bool = False, autoscaling: bool = False) -> None:
    param = "spec.deletionStrategy"
    if not isinstance(strategy, Mapping):
        raise InvalidParameterError(param, strategy, "must be a mapping")
    rules = strategy.get("deletionRules")
    legacy = [k for k in ("onSuccess", "onFailure") if k in strategy]
    if rules and legacy:
        raise InvalidParameterError(param, strategy, "use either onSuccess/onFailure or deletionRules, not both")
    if legacy and len(legacy) != 2:
        raise InvalidParameterError(param, strategy, "legacy mode needs both onSuccess and onFailure")
    if not rules and not legacy:
        raise InvalidParameterError(param, strategy, "needs onSuccess and onFailure, or a non-empty deletionRules")
    if rules:
        if shutdown:
            raise InvalidParameterError(
                "shutdown_after_job_finishes", True, "must be False when deletionStrategy.deletionRules is used"
            )
        seen = set()
        for i, rule in enumerate(rules):
            p = f"{param}.deletionRules[{i}]"
            if not isinstance(rule, Mapping) or rule.get("policy") not in DELETION_POLICIES:
                policy = rule.get("policy") if isinstance(rule, Mapping) else None
                raise InvalidParameterError(f"{p}.policy", policy, f"must be one of {list(DELETION_POLICIES)}")
            if selector and rule["policy"] in ("DeleteCluster", "DeleteWorkers"):
                raise InvalidParameterError(f"{p}.policy", rule["policy"], "is not allowed with clusterSelector")
            if autoscaling and rule["policy"] == "DeleteWorkers":
                raise InvalidParameterError(f"{p}.policy", rule["policy"], "is not allowed when autoscaling is enabled")
            cond = rule.get("condition") or {}
            if not isinstance(cond, Mapping):
                raise InvalidParameterError(f"{p}.condition", cond, "must be a mapping")
            has_job, has_dep = "jobStatus" in cond, "jobDeploymentStatus" in cond
            if has_job == has_dep:
                raise InvalidParameterError(f"{p}.condition", cond, "needs exactly one of jobStatus or jobDeploymentStatus")
            if has_job and cond["jobStatus"] not in ("SUCCEEDED", "FAILED"):
                raise InvalidParameterError(f"{p}.condition.jobStatus", cond["jobStatus"], "must be SUCCEEDED or FAILED")
            if has_dep and cond["jobDeploymentStatus"] != "Failed":
                raise InvalidParameterError(
                    f"{p}.condition.jobDeploymentStatus", cond["jobDeploymentStatus"], "must be Failed"
                )
            _int_param(cond.get("ttlSeconds", 0), f"{p}.condition.ttlSeconds", minimum=0)
            key = (json.dumps(dict(cond), sort_keys=True), rule["policy"])
            if key in seen:
                raise InvalidParameterError(p, rule, "each (condition, policy) pair may appear only once")
            seen.add(key)
    else:
        for k in legacy:
            entry = strategy[k]
            policy = entry.get("policy") if isinstance(entry, Mapping) else None
            if policy not in DELETION_POLICIES:
                raise InvalidParameterError(f"{param}.{k}.policy", policy, f"must be one of {list(DELETION_POLICIES)}")
            if shutdown and policy == "DeleteNone":
                raise InvalidParameterError(
                    f"{param}.{k}.policy", policy, "DeleteNone cannot be combined with shutdownAfterJobFinishes=true"
                )


def _validate_containers(template: Any, parameter: str) -> None:
    containers = ((template or {}).get("spec") or {}).get("containers") if isinstance(template, Mapping) else None
    if not containers:
        raise InvalidParameterError(f"{parameter}.spec.containers", containers, "needs at least one container")
    for i, container in enumerate(containers):
        p = f"{parameter}.spec.containers[{i}]"
        if not isinstance(container, Mapping) or not container.get("name"):
            shown = container.get("name") if isinstance(container, Mapping) else container
            raise InvalidParameterError(f"{p}.name", shown, "every container needs a name")
        if not container.get("image"):
            raise InvalidParameterError(f"{p}.image", container.get("image"), "every container needs an image")
        for kind in ("requests", "limits"):
            for res, qty in ((container.get("resources") or {}).get(kind) or {}).items():
                validate_quantity(qty, f"{p}.resources.{kind}[{res!r}]")
        _reject_literal_secret_env(container.get("env"), f"{p}.env")


def _reject_literal_secret_env(env: Any, parameter: str) -> None:
    """A container's ``env`` list must not carry credential-looking variables as literal ``value``s."""
    literal = {e.get("name"): e.get("value") for e in env or [] if isinstance(e, Mapping) and "value" in e}
    reject_inline_secrets(literal, parameter)


def pod_templates(cluster_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod templates of a ``rayClusterSpec``: the head's, then each worker group's."""
    groups = [cluster_spec.get("headGroupSpec") or {}, *(cluster_spec.get("workerGroupSpecs") or [])]
    return [g["template"] for g in groups if isinstance(g, Mapping) and isinstance(g.get("template"), dict)]


def add_secret_env(cluster_spec: dict[str, Any], secret_env: Mapping[str, tuple[str, str]],
                   parameter: str = "secret_env") -> dict[str, Any]:
    """A copy of ``cluster_spec`` whose every Ray container gets ``secret_env`` as ``secretKeyRef`` variables (pure).

    Used for a user manifest, so ``secret_env`` means the same with compact parameters and with a manifest.
    """
    result = copy.deepcopy(cluster_spec)
    for template in pod_templates(result):
        for container in (template.get("spec") or {}).get("containers") or []:
            env = container.setdefault("env", [])
            taken = {e.get("name") for e in env if isinstance(e, Mapping)}
            for name, (secret, key) in secret_env.items():
                if name in taken:
                    raise InvalidParameterError(
                        f"{parameter}[{name!r}]", f"{secret}:{key}",
                        f"container {container.get('name')!r} of the manifest already sets {name}",
                    )
                env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return result


def validate_ray_cluster_spec(cluster_spec: Any, parameter: str = "rayClusterSpec") -> None:
    """The RayCluster rules KubeRay applies to a RayJob's ``rayClusterSpec`` or a RayCluster's ``spec``."""
    if not isinstance(cluster_spec, Mapping):
        raise InvalidParameterError(parameter, cluster_spec, "must be a mapping")
    head = cluster_spec.get("headGroupSpec")
    if not isinstance(head, Mapping) or "template" not in head:
        raise InvalidParameterError(f"{parameter}.headGroupSpec", head, "must contain a pod template")
    _validate_containers(head["template"], f"{parameter}.headGroupSpec.template")
    names = set()
    for i, group in enumerate(cluster_spec.get("workerGroupSpecs") or []):
        p = f"{parameter}.workerGroupSpecs[{i}]"
        name = group.get("groupName") if isinstance(group, Mapping) else None
        if not name:
            raise InvalidParameterError(f"{p}.groupName", name, "every worker group needs a groupName")
        if name in names:
            raise InvalidParameterError(f"{p}.groupName", name, "worker group names must be unique")
        names.add(name)
        lo, hi = group.get("minReplicas", 0), group.get("maxReplicas", INT32_MAX)
        _int_param(lo, f"{p}.minReplicas", minimum=0)
        _int_param(hi, f"{p}.maxReplicas", minimum=0)
        if lo > hi:
            raise InvalidParameterError(f"{p}.minReplicas", lo, f"must not exceed maxReplicas ({hi})")
        if "replicas" in group and group["replicas"] is not None:
            _int_param(group["replicas"], f"{p}.replicas", minimum=0)
        _validate_containers(group.get("template"), f"{p}.template")
