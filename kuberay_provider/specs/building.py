"""Compact operator parameters → KubeRay v1.7 manifests (pure: dicts in, dicts out, no I/O).

The builder only *parses* what it needs to build (mapping shapes, integers, quantities as strings, the
``secret-name:key`` form); whether the result is valid is decided by judging the manifest
(:mod:`kuberay_provider.specs.kuberay_rules`). Every built object remembers which compact parameter produced
which manifest path (:func:`origins_of`), so a problem is reported under the name the user wrote
(``head.annotations['a b']``, ``secret_env['X']``, ``tolerations[0].key``) rather than a manifest path.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.params import as_int
from kuberay_provider.specs import pod_rules

SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
DEFAULT_SUBMISSION_MODE = "K8sJobMode"
DEFAULT_TTL_SECONDS_AFTER_FINISHED = 60
DEFAULT_PRE_RUNNING_DEADLINE_SECONDS = 900
DEFAULT_BACKOFF_LIMIT = 0
INT32_MAX = 2**31 - 1
#: A Ray submission id that survives being a shell argument and a URL path segment.
SUBMISSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_NODE_GROUP_KEYS = frozenset(
    {"name", "cpu", "memory", "gpus", "gpu_accelerator", "tpus", "tpu_topology", "tpu_accelerator", "resources",
     "replicas", "min_replicas", "max_replicas", "image", "ray_start_params", "node_selector", "tolerations", "labels",
     "annotations", "env"}
)
#: GKE's accelerator resources, node labels and the taints of its accelerator node pools.
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
#: ``{chips}x{chips}[x{chips}]``: the chips of a TPU slice along each of its 2 or 3 dimensions.
TPU_TOPOLOGY = re.compile(r"^[1-9][0-9]*(x[1-9][0-9]*){1,2}$")
#: Dimensions of the topology of the TPU types whose topology shape GKE documents (others are not judged).
TPU_TOPOLOGY_DIMENSIONS = {"tpu-v4-podslice": 3, "tpu-v5p-slice": 3, "tpu-v5-lite-podslice": 2,
                           "tpu-v5-lite-device": 2, "tpu-v6e-slice": 2}


def tpu_chips(topology: str) -> int:
    """The number of chips in a TPU slice of ``topology`` (``"4x4"`` → 16, ``"2x2x1"`` → 4)."""
    chips = 1
    for dimension in topology.split("x"):
        chips *= int(dimension)
    return chips


def accelerator_toleration(resource: str) -> dict[str, str]:
    """The toleration for the taint GKE puts on GPU (``nvidia.com/gpu``) and TPU (``google.com/tpu``) node pools."""
    return {"key": resource, "operator": "Exists", "effect": "NoSchedule"}


def _accelerator_name(value: Any, parameter: str, example: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pod_rules.LABEL_VALUE.match(value) or len(value) > 63:
        raise InvalidParameterError(parameter, value, f"must be a GKE node label value such as {example!r}")
    return value
#: One origin: (manifest path prefix, compact parameter, collapse). ``collapse`` reports any path under the
#: prefix as the parameter itself (an env entry is ``secret_env['X']`` whatever part of it is wrong).
Origin = tuple[str, str, bool]
_ORIGINS: OrderedDict[int, tuple[Any, list[Origin]]] = OrderedDict()
_ORIGINS_KEPT = 64


def remember_origins(obj: Any, origins: list[Origin]) -> None:
    """Record which compact parameters produced ``obj`` (the last few built objects are kept)."""
    _ORIGINS[id(obj)] = (obj, origins)
    _ORIGINS.move_to_end(id(obj))
    while len(_ORIGINS) > _ORIGINS_KEPT:
        _ORIGINS.popitem(last=False)


def origins_of(obj: Any) -> list[Origin]:
    """The origins recorded for this very object by the builder (empty for anything else, e.g. a user manifest)."""
    entry = _ORIGINS.get(id(obj))
    return entry[1] if entry is not None and entry[0] is obj else []


def to_parameter(path: str, origins: Sequence[Origin]) -> str:
    """Translate a manifest ``path`` to the compact parameter that produced it (longest recorded prefix)."""
    best: Origin | None = None
    for origin in origins:
        prefix = origin[0]
        if (path == prefix or path.startswith((prefix + ".", prefix + "["))) and (best is None or len(prefix) > len(best[0])):
            best = origin
    if best is None:
        return path
    return best[1] if best[2] else best[1] + path[len(best[0]):]


def validate_quantity(value: Any, parameter: str) -> str:
    """Return ``value`` as a Kubernetes quantity string (≥ 0), or raise naming the parameter."""
    number = pod_rules.parse_quantity(str(value).strip()) if isinstance(value, (str, int, float)) and not isinstance(
        value, bool) else None
    if number is None or number < 0:
        raise InvalidParameterError(parameter, value, "must be a Kubernetes quantity such as '2', '500m' or '4Gi'")
    return str(value).strip()


def _mapping(raw: Any, parameter: str) -> dict[str, Any]:
    value = raw or {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidParameterError(parameter, value, "must be a mapping with string keys")
    return dict(value)


def _tolerations(tolerations: Any, parameter: str) -> list[dict[str, Any]]:
    """A list of toleration mappings (a single string or mapping is refused rather than misread)."""
    if tolerations is None:
        return []
    if not isinstance(tolerations, Sequence) or isinstance(tolerations, str) or not all(
        isinstance(t, Mapping) for t in tolerations
    ):
        raise InvalidParameterError(parameter, tolerations, "must be a list of toleration mappings")
    return [dict(t) for t in tolerations]


@dataclass(frozen=True)
class NodeGroup:
    """Compact description of the head or one worker group."""

    name: str = "headgroup"
    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0
    gpu_accelerator: str | None = None
    tpus: int = 0
    tpu_topology: str | None = None
    tpu_accelerator: str | None = None
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
    parameter: str = field(default="head", compare=False)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | NodeGroup | None, parameter: str, *, worker: bool) -> NodeGroup:
        """Parse a dict such as ``{"cpu": 2, "memory": "4Gi", "replicas": "2"}`` (integers may be strings)."""
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
        if worker and (not isinstance(name, str) or not name):
            raise InvalidParameterError(f"{parameter}.name", name, "must be a non-empty group name")
        gpus = as_int(raw.get("gpus", 0), f"{parameter}.gpus", minimum=0, maximum=INT32_MAX)
        accelerators = _parse_accelerators(raw, parameter, gpus or 0)
        resources = raw.get("resources") or {}
        if not isinstance(resources, Mapping):
            raise InvalidParameterError(f"{parameter}.resources", resources, "must be a mapping of resource name to quantity")
        replicas = min_r = max_r = 0
        if worker:
            bounds = {k: as_int(raw.get(k), f"{parameter}.{k}", minimum=0, maximum=INT32_MAX, allow_none=True)
                      for k in ("replicas", "min_replicas", "max_replicas")}
            # Without an explicit replica count start at the autoscaling floor (1 if no bounds are given).
            default_replicas = 1
            if bounds["min_replicas"] is not None:
                default_replicas = bounds["min_replicas"]
            elif bounds["max_replicas"] is not None:
                default_replicas = min(1, bounds["max_replicas"])
            replicas = default_replicas if bounds["replicas"] is None else bounds["replicas"]
            min_r = replicas if bounds["min_replicas"] is None else bounds["min_replicas"]
            max_r = max(replicas, min_r) if bounds["max_replicas"] is None else bounds["max_replicas"]
        mappings = {k: _mapping(raw.get(k), f"{parameter}.{k}")
                    for k in ("ray_start_params", "node_selector", "labels", "annotations", "env")}
        return cls(
            name=name,
            cpu=validate_quantity(raw.get("cpu", "1"), f"{parameter}.cpu"),
            memory=validate_quantity(raw.get("memory", "2Gi"), f"{parameter}.memory"),
            gpus=gpus or 0,
            **accelerators,
            resources={k: validate_quantity(v, f"{parameter}.resources[{k!r}]") for k, v in resources.items()},
            replicas=replicas or 0,
            min_replicas=min_r if worker else None,
            max_replicas=max_r if worker else None,
            image=raw.get("image"),
            ray_start_params={k: str(v) for k, v in mappings["ray_start_params"].items()},
            node_selector=mappings["node_selector"],
            tolerations=_tolerations(raw.get("tolerations") or (), f"{parameter}.tolerations"),
            labels=mappings["labels"],
            annotations=mappings["annotations"],
            env={k: v if isinstance(v, str) else str(v) for k, v in mappings["env"].items()},
            parameter=parameter,
        )

    @property
    def num_of_hosts(self) -> int:
        """Pods per replica: the hosts of a multi-host TPU slice (its chips / ``tpus`` per host), else 1."""
        if not self.tpus or not self.tpu_topology:
            return 1
        return max(1, tpu_chips(self.tpu_topology) // self.tpus)

    def accelerator_node_selector(self) -> dict[str, str]:
        """The GKE node labels the group's accelerators need (``gke-accelerator`` / ``gke-tpu-*``)."""
        selector: dict[str, str] = {}
        if self.gpu_accelerator:
            selector[GKE_ACCELERATOR_LABEL] = self.gpu_accelerator
        if self.tpus:
            selector[GKE_TPU_ACCELERATOR_LABEL] = self.tpu_accelerator or ""
            selector[GKE_TPU_TOPOLOGY_LABEL] = self.tpu_topology or ""
        return selector

    def accelerator_tolerations(self) -> list[dict[str, str]]:
        """Tolerations for the taints of GKE's GPU/TPU node pools."""
        return [accelerator_toleration(r) for r, n in ((GPU_RESOURCE, self.gpus), (TPU_RESOURCE, self.tpus)) if n]

    def resource_requirements(self) -> dict[str, dict[str, str]]:
        """Requests equal limits for CPU and memory (what Ray recommends); GPUs and extras likewise."""
        requests = {"cpu": self.cpu, "memory": self.memory}
        limits = dict(requests)
        for resource, count in ((GPU_RESOURCE, self.gpus), (TPU_RESOURCE, self.tpus)):
            if count:
                limits[resource] = requests[resource] = str(count)
        for key, value in self.resources.items():
            limits[key] = value
            requests[key] = value
        return {"requests": requests, "limits": limits}


def _parse_accelerators(raw: Mapping[str, Any], parameter: str, gpus: int) -> dict[str, Any]:
    """``gpu_accelerator``, ``tpus``, ``tpu_topology`` and ``tpu_accelerator`` of a node group, each checked alone
    and against the others; whether the topology fits the chips is judged with the manifest
    (:func:`kuberay_provider.specs.kuberay_rules.validate_gke_tpu`)."""
    tpus = as_int(raw.get("tpus", 0), f"{parameter}.tpus", minimum=0, maximum=INT32_MAX) or 0
    gpu_accelerator = _accelerator_name(raw.get("gpu_accelerator"), f"{parameter}.gpu_accelerator", "nvidia-l4")
    tpu_accelerator = _accelerator_name(raw.get("tpu_accelerator"), f"{parameter}.tpu_accelerator", "tpu-v6e-slice")
    topology = raw.get("tpu_topology")
    topology = None if topology in (None, "") else topology
    if gpu_accelerator and not gpus:
        raise InvalidParameterError(f"{parameter}.gpus", raw.get("gpus", 0),
                                    f"must be ≥ 1 when gpu_accelerator={gpu_accelerator!r} is set")
    if tpus and gpus:
        raise InvalidParameterError(f"{parameter}.tpus", tpus, "cannot be combined with gpus in one group: a GKE node "
                                    "has either GPUs or TPUs; use two groups")
    if not tpus and (topology or tpu_accelerator):
        which = "tpu_topology" if topology else "tpu_accelerator"
        raise InvalidParameterError(f"{parameter}.tpus", raw.get("tpus", 0),
                                    f"must be ≥ 1 (TPU chips per host) when {which} is set")
    if tpus and not tpu_accelerator:
        raise InvalidParameterError(f"{parameter}.tpu_accelerator", raw.get("tpu_accelerator"),
                                    "is required with tpus: the GKE TPU type, e.g. 'tpu-v6e-slice' or 'tpu-v4-podslice'")
    if tpus and topology is None:
        raise InvalidParameterError(f"{parameter}.tpu_topology", None,
                                    "is required with tpus: the slice's chips per dimension, e.g. '2x2' or '2x2x1'")
    if topology is not None:
        if not isinstance(topology, str) or not TPU_TOPOLOGY.match(topology):
            raise InvalidParameterError(f"{parameter}.tpu_topology", topology,
                                        "must be the chips per dimension such as '2x2', '4x4' or '2x2x1'")
        dimensions = TPU_TOPOLOGY_DIMENSIONS.get(tpu_accelerator or "")
        if dimensions and topology.count("x") + 1 != dimensions:
            raise InvalidParameterError(f"{parameter}.tpu_topology", topology,
                                        f"must have {dimensions} dimensions for {tpu_accelerator} (e.g. "
                                        f"{'2x2x1' if dimensions == 3 else '2x2'})")
    return {"gpu_accelerator": gpu_accelerator, "tpus": tpus, "tpu_topology": topology,
            "tpu_accelerator": tpu_accelerator}


def parse_secret_env(secret_env: Mapping[str, Any] | None, parameter: str = "secret_env") -> dict[str, tuple[str, str]]:
    """``{"ENV": "secret-name:key"}`` (or ``{"ENV": {"secret": ..., "key": ...}}``) → ``{"ENV": (secret, key)}``.

    Secret names are DNS-1123 subdomains (dots allowed); keys are ``[-._a-zA-Z0-9]+``.
    """
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
        if not isinstance(env_name, str) or not pod_rules.ENV_NAME.match(env_name):
            raise InvalidParameterError(
                f"{parameter}[{env_name!r}]", env_name, "must be an environment variable name: letters, digits, '_', "
                "'-', '.', not starting with a digit")
        problems = list(pod_rules.validate_secret_ref(secret, key, "ref"))
        if problems:
            raise InvalidParameterError(
                f"{parameter}[{env_name!r}]", ref, f"must be 'secret-name:key' naming a Kubernetes Secret and one of its "
                f"keys: the {problems[0][0][4:]} {problems[0][1]}")
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
        if not isinstance(self.node_selector, Mapping):
            raise InvalidParameterError("node_selector", self.node_selector, "must be a mapping of label names to values")
        _tolerations(self.tolerations, "tolerations")
        if isinstance(self.image_pull_secrets, str) or not isinstance(self.image_pull_secrets, Sequence):
            raise InvalidParameterError("image_pull_secrets", self.image_pull_secrets, "must be a list of Secret names")


def _pod_template(group: NodeGroup, pod: PodSettings, container_name: str, ports: list[dict], base: str,
                  origins: list[Origin]) -> dict:
    gp = group.parameter
    container_path = f"{base}.spec.containers[0]"
    container: dict[str, Any] = {
        "name": container_name,
        "image": group.image or pod.image,
        "resources": group.resource_requirements(),
    }
    origins.append((f"{container_path}.image", f"{gp}.image" if group.image else "image", True))
    for kind in ("limits", "requests"):
        for res in container["resources"][kind]:
            what = {"cpu": f"{gp}.cpu", "memory": f"{gp}.memory"}.get(res) or (
                f"{gp}.gpus" if res == GPU_RESOURCE and group.gpus else
                f"{gp}.tpus" if res == TPU_RESOURCE and group.tpus else f"{gp}.resources[{res!r}]")
            origins.append((f"{container_path}.resources.{kind}[{res!r}]", what, True))
    if ports:
        container["ports"] = ports
    env = [{"name": k, "value": v} for k, v in group.env.items()]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for k, (secret, key) in pod.secret_env.items()]
    names = [*(f"{gp}.env[{k!r}]" for k in group.env), *(f"secret_env[{k!r}]" for k in pod.secret_env)]
    origins += [(f"{container_path}.env[{i}]", name, True) for i, name in enumerate(names)]
    if env:
        container["env"] = env
    spec: dict[str, Any] = {"containers": [container]}
    if pod.service_account:
        spec["serviceAccountName"] = pod.service_account
        origins.append((f"{base}.spec.serviceAccountName", "service_account", True))
    derived = group.accelerator_node_selector()
    node_selector = {**pod.node_selector, **derived, **group.node_selector}
    derived_from = {GKE_ACCELERATOR_LABEL: f"{gp}.gpu_accelerator", GKE_TPU_ACCELERATOR_LABEL: f"{gp}.tpu_accelerator",
                    GKE_TPU_TOPOLOGY_LABEL: f"{gp}.tpu_topology"}
    if node_selector:
        spec["nodeSelector"] = node_selector
        origins += [(f"{base}.spec.nodeSelector[{k!r}]",
                     f"{gp}.node_selector[{k!r}]" if k in group.node_selector else derived_from[k] if k in derived
                     else f"node_selector[{k!r}]", True)
                    for k in node_selector]
    given = [*pod.tolerations, *group.tolerations]
    added = [t for t in group.accelerator_tolerations() if not any(g.get("key") == t["key"] for g in given)]
    tolerations = [*given, *added]
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
        origins += [(f"{base}.spec.tolerations[{i}]", f"tolerations[{i}]", False) for i in range(len(pod.tolerations))]
        origins += [(f"{base}.spec.tolerations[{len(pod.tolerations) + i}]", f"{gp}.tolerations[{i}]", False)
                    for i in range(len(group.tolerations))]
        origins += [(f"{base}.spec.tolerations[{len(given) + i}]", f"{gp}.{'gpus' if t['key'] == GPU_RESOURCE else 'tpus'}",
                     True) for i, t in enumerate(added)]
    if pod.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in pod.image_pull_secrets]
        origins += [(f"{base}.spec.imagePullSecrets[{i}]", f"image_pull_secrets[{i}]", True)
                    for i in range(len(pod.image_pull_secrets))]
    template: dict[str, Any] = {"spec": spec}
    meta = {k: dict(v) for k, v in (("labels", group.labels), ("annotations", group.annotations)) if v}
    if meta:
        template["metadata"] = meta
    origins += [(f"{base}.metadata.labels", f"{gp}.labels", False),
                (f"{base}.metadata.annotations", f"{gp}.annotations", False)]
    return template


#: ``rayproject/ray:2.60.0-py311`` → ``2.60.0``: the Ray version an image tag names.
_IMAGE_RAY_VERSION = re.compile(r":v?(\d+\.\d+\.\d+)(?:[-.@]|$)")


def ray_version_of_image(image: str) -> str | None:
    """The Ray version in an image tag such as ``rayproject/ray:2.60.0-py311`` (None if the tag names none)."""
    match = _IMAGE_RAY_VERSION.search(image.rsplit("/", 1)[-1]) if isinstance(image, str) else None
    return match[1] if match else None


def ray_version_for_auth(ray_version: str | None, image: str, auth: Mapping[str, str] | None) -> str | None:
    """``rayVersion`` for a cluster: as given, else (token auth needs one, KubeRay refuses it without) the version
    the image tag names; refused naming ``ray_version`` when neither exists."""
    if ray_version or not auth:
        return ray_version
    found = ray_version_of_image(image)
    if found is None:
        raise InvalidParameterError("ray_version", None, f"is required with token auth (KubeRay needs rayVersion "
                                    f"≥ 2.52.0) and the image tag {image!r} names no Ray version")
    return found


def auth_options(enable_token_auth: Any, token_auth_secret: Any) -> dict[str, str] | None:
    """KubeRay's ``authOptions`` for Ray token authentication (KubeRay ≥ 1.5.1, Ray ≥ 2.52.0), or None.

    ``mode: token`` makes KubeRay require a bearer token on the GCS, the dashboard and the job API, create a Secret
    with a random token (or use ``secretName``) and inject it into every Ray container and the submitter through a
    ``secretKeyRef``: the token never passes through Airflow. ``token_auth_secret`` implies token auth."""
    if not isinstance(enable_token_auth, bool):
        # the value is not echoed: a token passed here by mistake must not reach a log
        raise InvalidParameterError("enable_token_auth", "<hidden>", "must be True or False (never the token "
                                    "itself: KubeRay generates it, or name its Secret with token_auth_secret)")
    if token_auth_secret in (None, ""):
        return {"mode": "token"} if enable_token_auth else None
    if not isinstance(token_auth_secret, str):
        raise InvalidParameterError("token_auth_secret", token_auth_secret, "must be the name of a Kubernetes Secret")
    return {"mode": "token", "secretName": token_auth_secret}


def build_ray_cluster_spec(
    *,
    head: NodeGroup,
    worker_groups: Sequence[NodeGroup],
    pod: PodSettings,
    ray_version: str | None = None,
    auth: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``rayClusterSpec`` of a RayJob (also the ``spec`` of a standalone RayCluster); ``auth`` is its
    ``authOptions`` (:func:`auth_options`)."""
    head_ports = [
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265},
        {"name": "client", "containerPort": 10001},
    ]
    origins: list[Origin] = [("headGroupSpec.rayStartParams", f"{head.parameter}.ray_start_params", False),
                             ("rayVersion", "ray_version", True)]
    workers = []
    for i, group in enumerate(worker_groups):
        wp = f"workerGroupSpecs[{i}]"
        workers.append({
            "groupName": group.name,
            "replicas": group.replicas,
            "minReplicas": group.min_replicas,
            "maxReplicas": group.max_replicas,
            "rayStartParams": dict(group.ray_start_params),
            "template": _pod_template(group, pod, "ray-worker", [], f"{wp}.template", origins),
        })
        if group.tpus:
            workers[-1]["numOfHosts"] = group.num_of_hosts  # pods per replica: the hosts of one TPU slice
            origins.append((f"{wp}.numOfHosts", f"{group.parameter}.tpu_topology", True))
        origins += [(f"{wp}.groupName", f"{group.parameter}.name", True),
                    (f"{wp}.replicas", f"{group.parameter}.replicas", True),
                    (f"{wp}.minReplicas", f"{group.parameter}.min_replicas", True),
                    (f"{wp}.maxReplicas", f"{group.parameter}.max_replicas", True),
                    (f"{wp}.rayStartParams", f"{group.parameter}.ray_start_params", False),
                    (wp, group.parameter, False)]
    spec: dict[str, Any] = {
        "headGroupSpec": {
            "rayStartParams": {"dashboard-host": "0.0.0.0", **head.ray_start_params},
            "template": _pod_template(head, pod, "ray-head", head_ports, "headGroupSpec.template", origins),
        },
        "workerGroupSpecs": workers,
    }
    if any(g.min_replicas != g.max_replicas for g in worker_groups):
        spec["enableInTreeAutoscaling"] = True
    if ray_version:
        spec["rayVersion"] = ray_version
    if auth:
        spec["authOptions"] = dict(auth)
        origins += [("authOptions", "enable_token_auth", True), ("authOptions.secretName", "token_auth_secret", True)]
    remember_origins(spec, origins)
    return spec


def runtime_env_yaml(runtime_env: Mapping[str, Any] | str | None, parameter: str = "runtime_env") -> str | None:
    """Serialise a runtime_env mapping (or check a YAML/JSON string) into ``runtimeEnvYAML``.

    Its ``env_vars`` are judged with the manifest (the secret policy), not here."""
    if runtime_env is None or runtime_env == {} or runtime_env == "":
        return None
    if isinstance(runtime_env, str):
        try:
            parsed = yaml.safe_load(runtime_env)
        except yaml.YAMLError as exc:
            raise InvalidParameterError(parameter, runtime_env, f"is not valid YAML: {exc}") from None
        if not isinstance(parsed, dict):
            raise InvalidParameterError(parameter, runtime_env, "must be a mapping (KubeRay requires runtimeEnvYAML to be a map)")
        return runtime_env
    if not isinstance(runtime_env, Mapping):
        raise InvalidParameterError(parameter, runtime_env, "must be a mapping such as {'pip': ['xgboost']}")
    env_vars = runtime_env.get("env_vars") or {}
    if not isinstance(env_vars, Mapping):
        raise InvalidParameterError(f"{parameter}.env_vars", env_vars, "must be a mapping of names to values")
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
    submitter_pod_template: Mapping[str, Any] | None = None

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
        """The RayJob ``spec`` without ``rayClusterSpec``."""
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
        if self.submitter_pod_template:
            spec["submitterPodTemplate"] = copy.deepcopy(dict(self.submitter_pod_template))
        return spec


#: RayJob spec fields → the RayJobOperator parameter that sets them.
JOB_ORIGINS: list[Origin] = [(f"spec.{k}", v, False) for k, v in (
    ("entrypoint", "entrypoint"), ("runtimeEnvYAML", "runtime_env"), ("submissionMode", "submission_mode"),
    ("shutdownAfterJobFinishes", "shutdown_after_job_finishes"), ("ttlSecondsAfterFinished", "ttl_seconds_after_finished"),
    ("backoffLimit", "backoff_limit"), ("preRunningDeadlineSeconds", "pre_running_deadline_seconds"),
    ("activeDeadlineSeconds", "active_deadline_seconds"), ("jobId", "job_id"), ("entrypointNumCpus", "entrypoint_num_cpus"),
    ("entrypointNumGpus", "entrypoint_num_gpus"), ("clusterSelector", "cluster_selector"), ("metadata", "metadata"),
)] + [(f"metadata.labels[{c.KUEUE_QUEUE_LABEL!r}]", "queue_name", True),
      (f"metadata.labels[{c.KUEUE_PRIORITY_LABEL!r}]", "priority_class", True),
      ("spec.suspend", "queue_name", True),
      ("spec.submitterPodTemplate.spec.serviceAccountName", "service_account", True),
      ("spec.submitterPodTemplate.spec.containers[0].image", "image", True)]
#: KubeRay's default submitter container resources (``GetDefaultSubmitterContainer``).
SUBMITTER_RESOURCES = {"requests": {"cpu": "500m", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


def submitter_pod_template(image: str, service_account: str) -> dict[str, Any]:
    """KubeRay's default K8sJobMode submitter pod (``ray-job-submitter``, the head's image, KubeRay's resources,
    ``restartPolicy: Never``) running as ``service_account``. KubeRay still fills in the ``ray job submit``
    command and its environment, since the container has no command."""
    return {"spec": {"serviceAccountName": service_account, "restartPolicy": "Never", "containers": [
        {"name": c.SUBMITTER_CONTAINER, "image": image, "resources": copy.deepcopy(SUBMITTER_RESOURCES)}]}}


def kueue_labels(queue_name: Any, priority_class: Any) -> dict[str, str]:
    """The Kueue labels of a RayJob sent to ``queue_name`` (a LocalQueue) with ``priority_class`` (a
    WorkloadPriorityClass); empty when not queued. Whether the names are valid is judged with the manifest."""
    labels: dict[str, str] = {}
    for parameter, value, label in (("queue_name", queue_name, c.KUEUE_QUEUE_LABEL),
                                    ("priority_class", priority_class, c.KUEUE_PRIORITY_LABEL)):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InvalidParameterError(parameter, value, "must be a string naming a Kueue "
                                        + ("LocalQueue" if parameter == "queue_name" else "WorkloadPriorityClass"))
        labels[label] = value
    if c.KUEUE_PRIORITY_LABEL in labels and c.KUEUE_QUEUE_LABEL not in labels:
        raise InvalidParameterError("priority_class", priority_class,
                                    "needs queue_name: Kueue only admits (and orders by priority) a queued RayJob")
    return labels


def is_queued(manifest: Mapping[str, Any]) -> bool:
    """Whether a RayJob is sent to a Kueue queue (it carries ``kueue.x-k8s.io/queue-name``)."""
    return bool(((manifest.get("metadata") or {}).get("labels") or {}).get(c.KUEUE_QUEUE_LABEL))


def apply_queue(manifest: dict[str, Any]) -> dict[str, Any]:
    """A queued RayJob is created with ``spec.suspend: true``, as KubeRay and Kueue require: Kueue admits it by
    setting ``suspend: false`` once its LocalQueue has quota, and only then does KubeRay create the cluster (and
    start counting ``preRunningDeadlineSeconds`` and ``activeDeadlineSeconds``, from the new ``startTime``)."""
    if is_queued(manifest) and isinstance(manifest.get("spec"), dict):
        manifest["spec"]["suspend"] = True
    return manifest


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
    origins = list(JOB_ORIGINS)
    if cluster_spec is not None:
        spec["rayClusterSpec"] = copy.deepcopy(dict(cluster_spec))
        origins += [(f"spec.rayClusterSpec.{p}", param, collapse) for p, param, collapse in origins_of(cluster_spec)]
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    manifest = {"apiVersion": c.RAY_API_VERSION, "kind": c.RAYJOB_KIND, "metadata": metadata, "spec": spec}
    remember_origins(manifest, origins)
    return manifest


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
    manifest = {
        "apiVersion": c.RAY_API_VERSION,
        "kind": c.RAYCLUSTER_KIND,
        "metadata": metadata,
        "spec": copy.deepcopy(dict(cluster_spec)),
    }
    remember_origins(manifest, [(f"spec.{p}", param, collapse) for p, param, collapse in origins_of(cluster_spec)]
                     )
    return manifest
