"""The one judgement of a RayJob / RayCluster manifest, as KubeRay v1.7.0 and Kubernetes make it (pure).

A manifest is judged once, in this order, and the first problem raises :class:`InvalidParameterError` naming the
manifest path, the value and the rule (the message also counts the other problems):

1. the API server's metadata rules and KubeRay's name rules (``ValidateRayJobMetadata`` / ``ValidateRayClusterMetadata``);
2. the vendored CRD's structural schema with defaulting (:mod:`.crd_schema`): types, formats, enums, patterns,
   int-or-string quantities, list-map keys, the CEL rules - and every field the API server would prune;
3. every rule of KubeRay's ``validation.go`` that a manifest decides (on the defaulted copy, as the operator sees
   it), each function below naming its Go original;
4. Kubernetes' Pod rules for every pod template (:mod:`.pod_rules`): what makes KubeRay's Pod creation fail;
5. the secret policy (:mod:`.secret_policy`) on every literal environment variable.

The few rules that are the provider's own (KubeRay accepts the input but the job can never finish) say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import yaml

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.naming import DNS_1035_LABEL, DNS_1123_LABEL, DNS_1123_SUBDOMAIN, MAX_RAYCLUSTER_NAME_LENGTH
from kuberay_provider.specs import building, crd_schema, pod_rules, secret_policy

Problems = Iterator[tuple[str, str]]
JSON = dict[str, Any]
MAX_RAYJOB_NAME_LENGTH = c.MAX_RAYJOB_NAME_LENGTH
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
#: KubeRay v1.7.0's default feature gates (``ray-operator/pkg/features``); only ``RayJobDeletionPolicy`` is on.
FEATURE_GATES = {"RayJobDeletionPolicy": True, "RayClusterHistoryServer": False, "RayClusterNetworkPolicy": False,
                 "RayClusterMTLS": False, "GCSFaultToleranceEmbeddedStorage": False}
RAY_FT_ENABLED_ANNOTATION = "ray.io/ft-enabled"
RAY_EXTERNAL_STORAGE_NS_ANNOTATION = "ray.io/external-storage-namespace"
AUTOSCALER_V2_ENV = "RAY_enable_autoscaler_v2"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


# -- helpers mirroring KubeRay's utils ----------------------------------------------------------------------
def _containers(template: Any) -> list[Any]:
    spec = template.get("spec") if isinstance(template, Mapping) else None
    return list((spec or {}).get("containers") or []) if isinstance(spec, Mapping) else []


def _ray_container(group: Any) -> JSON:
    """``Containers[RayContainerIndex]`` (index 0) of a group's template."""
    containers = _containers(group.get("template") if isinstance(group, Mapping) else None)
    return containers[0] if containers and isinstance(containers[0], Mapping) else {}


def _env(container: Mapping[str, Any]) -> dict[str, Any]:
    """``EnvVarByName`` over a container's env (name → literal value or None)."""
    return {e.get("name"): e.get("value") for e in container.get("env") or () if isinstance(e, Mapping)}


def _autoscaling(spec: Mapping[str, Any]) -> bool:
    """``IsAutoscalingEnabled``."""
    return spec.get("enableInTreeAutoscaling") is True


def _autoscaling_v2(spec: Mapping[str, Any]) -> bool:
    """``IsAutoscalingV2Enabled``: in-tree autoscaling with ``autoscalerOptions.version: v2``."""
    return _autoscaling(spec) and (spec.get("autoscalerOptions") or {}).get("version") == "v2"


def _v2_env(spec: Mapping[str, Any]) -> bool:
    return _env(_ray_container(spec.get("headGroupSpec") or {})).get(AUTOSCALER_V2_ENV) in ("1", "true")


def _version(text: Any) -> tuple[int, int, int] | None:
    """``version.ParseGeneric``."""
    match = _VERSION.match(text) if isinstance(text, str) else None
    return (int(match[1]), int(match[2]), int(match[3] or 0)) if match else None


# -- validation.go, function by function -------------------------------------------------------------------
def validate_ray_group_resources(group: str, params: Mapping[str, Any], resources: Any, path: str) -> Problems:
    """``validateRayGroupResources``: resources in rayStartParams or in the group's ``resources``, not both."""
    if any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")) and resources:
        yield f"{path}.resources", (f"resource fields should not be set in both rayStartParams and resources for "
                                    f"{group} group; use only one")


def validate_ray_group_labels(group: str, params: Mapping[str, Any], labels: Any, path: str) -> Problems:
    """``validateRayGroupLabels``: no ``rayStartParams['labels']``; ``labels`` follow Kubernetes label syntax."""
    if "labels" in params:
        yield f"{path}.rayStartParams['labels']", (f"is not supported for {group} group; use the group's top-level "
                                                   "labels field instead")
    yield from pod_rules.validate_labels(labels, f"{path}.labels")


def validate_worker_group_idle_timeout(group: Mapping[str, Any], spec: Mapping[str, Any], path: str) -> Problems:
    """``validateWorkerGroupIdleTimeout``: non-negative, and only with autoscaler v2."""
    seconds = group.get("idleTimeoutSeconds")
    if seconds is None:
        return
    if seconds < 0:
        yield f"{path}.idleTimeoutSeconds", "must be non-negative"
    elif not (_autoscaling_v2(spec) or _v2_env(spec)):
        yield f"{path}.idleTimeoutSeconds", ("is set, but autoscaler v2 is not enabled: set enableInTreeAutoscaling "
                                             "and autoscalerOptions.version 'v2'")


def validate_worker_group_priority(group: Mapping[str, Any], spec: Mapping[str, Any], path: str) -> Problems:
    """``validateWorkerGroupPriority``: needs rayVersion ≥ 2.56.0 and autoscaler v2."""
    if not group.get("priority"):
        return
    version = _version(spec.get("rayVersion"))
    if version is None or version < (2, 56, 0):
        yield f"{path}.priority", "needs rayClusterSpec.rayVersion 2.56.0 or later"
    elif not (_autoscaling_v2(spec) or _v2_env(spec)):
        yield f"{path}.priority", "is only supported with autoscaler v2"


def validate_gcs_fault_tolerance_backend(options: Mapping[str, Any], head: Mapping[str, Any], path: str) -> Problems:
    """``validateGcsFaultToleranceBackend``."""
    if options.get("backend") == "rocksdb":
        if not FEATURE_GATES["GCSFaultToleranceEmbeddedStorage"]:
            yield f"{path}.backend", "'rocksdb' needs KubeRay's GCSFaultToleranceEmbeddedStorage feature gate (off by default)"
        for key in ("redisAddress", "redisUsername", "redisPassword", "externalStorageNamespace"):
            if options.get(key):
                yield f"{path}.{key}", "cannot be set when backend is 'rocksdb'"
    elif options.get("storage") is not None:
        yield f"{path}.storage", "only applies to the 'rocksdb' backend"


def validate_ray_cluster_spec_rules(spec: Mapping[str, Any], annotations: Mapping[str, Any], path: str) -> Problems:
    """``ValidateRayClusterSpec`` (on a schema-valid, defaulted spec)."""
    head = spec.get("headGroupSpec") or {}
    hp = f"{path}.headGroupSpec"
    if not _containers(head.get("template")):
        yield f"{hp}.template.spec.containers", "headGroupSpec should have at least one container"
        return
    yield from validate_ray_group_resources("Head", head.get("rayStartParams") or {}, head.get("resources"), hp)
    yield from validate_ray_group_labels("Head", head.get("rayStartParams") or {}, head.get("labels"), hp)
    autoscaling = _autoscaling(spec)
    groups = spec.get("workerGroupSpecs") or []
    seen: set[str] = set()
    for i, group in enumerate(groups):
        wp = f"{path}.workerGroupSpecs[{i}]"
        name = group.get("groupName")
        # The provider's rules: KubeRay names Pods `<cluster>-<group>-worker-<5>` lower-cased (common/pod.go PodName)
        # and counts replicas by the ray.io/group label, so a group name must fit a Pod name and be unique.
        if not isinstance(name, str) or not name or not DNS_1123_SUBDOMAIN.match(name.lower()) or len(name) > 63:
            yield f"{wp}.groupName", "must be usable in Pod names: letters, digits, '-' and '.', ≤ 63 characters"
        elif name in seen:
            yield f"{wp}.groupName", "worker group names must be unique"
        if isinstance(name, str):
            seen.add(name)
        if not _containers(group.get("template")):
            yield f"{wp}.template.spec.containers", "workerGroupSpec should have at least one container"
            continue
        low, high = group.get("minReplicas"), group.get("maxReplicas")
        for key, count in (("minReplicas", low), ("maxReplicas", high)):
            if count is not None and count < 0:
                yield f"{wp}.{key}", f"worker group {name} has a negative {key}"
        if low is not None and high is not None and low > high:
            yield f"{wp}.minReplicas", f"worker group {name} has minReplicas {low} greater than maxReplicas {high}"
        yield from validate_ray_group_resources(name, group.get("rayStartParams") or {}, group.get("resources"), wp)
        yield from validate_ray_group_labels(name, group.get("rayStartParams") or {}, group.get("labels"), wp)
        yield from validate_worker_group_idle_timeout(group, spec, wp)
        yield from validate_worker_group_priority(group, spec, wp)
    ft_options = spec.get("gcsFaultToleranceOptions")
    if annotations.get(RAY_FT_ENABLED_ANNOTATION) and ft_options is not None:
        yield f"{path}.gcsFaultToleranceOptions", (f"and the {RAY_FT_ENABLED_ANNOTATION} annotation are both set; use "
                                                   "only gcsFaultToleranceOptions")
    head_container = _ray_container(head)
    head_env = _env(head_container)
    env_path = f"{hp}.template.spec.containers[0].env"
    ft_enabled = ft_options is not None or str(annotations.get(RAY_FT_ENABLED_ANNOTATION, "")).lower() == "true"
    if not ft_enabled and "RAY_REDIS_ADDRESS" in head_env:
        yield env_path, ("sets RAY_REDIS_ADDRESS, which implicitly enables GCS fault tolerance, but "
                         "gcsFaultToleranceOptions is not set; set gcsFaultToleranceOptions instead")
    if ft_options is not None:
        if (head.get("rayStartParams") or {}).get("redis-password"):
            yield f"{hp}.rayStartParams['redis-password']", ("cannot be set with gcsFaultToleranceOptions; use "
                                                             "gcsFaultToleranceOptions.redisPassword")
        if "REDIS_PASSWORD" in head_env:
            yield env_path, "cannot set REDIS_PASSWORD with gcsFaultToleranceOptions; use its redisPassword"
        if "RAY_REDIS_ADDRESS" in head_env:
            yield env_path, "cannot set RAY_REDIS_ADDRESS with gcsFaultToleranceOptions; use its redisAddress"
        if annotations.get(RAY_EXTERNAL_STORAGE_NS_ANNOTATION):
            yield f"metadata.annotations[{RAY_EXTERNAL_STORAGE_NS_ANNOTATION!r}]", (
                "cannot be set with gcsFaultToleranceOptions; use its externalStorageNamespace")
        yield from validate_gcs_fault_tolerance_backend(ft_options, head_container, f"{path}.gcsFaultToleranceOptions")
    if (head.get("rayStartParams") or {}).get("redis-username") or "REDIS_USERNAME" in head_env:
        yield f"{hp}.rayStartParams", ("cannot set a redis username in rayStartParams or REDIS_USERNAME; use "
                                       "gcsFaultToleranceOptions.redisUsername")
    for i, group in enumerate(groups):
        if group.get("suspend") and autoscaling:
            yield f"{path}.workerGroupSpecs[{i}].suspend", "a worker group cannot be suspended with autoscaling enabled"
    options = spec.get("autoscalerOptions") or {}
    if not autoscaling and head_env.get(AUTOSCALER_V2_ENV) in ("1", "true"):
        yield env_path, (f"sets {AUTOSCALER_V2_ENV}={head_env[AUTOSCALER_V2_ENV]} but enableInTreeAutoscaling is "
                         "false; set enableInTreeAutoscaling: true to use autoscaler v2")
    if autoscaling:
        if options.get("version") is not None and AUTOSCALER_V2_ENV in head_env:
            yield env_path, f"sets {AUTOSCALER_V2_ENV} and autoscalerOptions.version is set; use only the latter"
        if _autoscaling_v2(spec):
            for gp, group in [(hp, head), *((f"{path}.workerGroupSpecs[{i}]", g) for i, g in enumerate(groups))]:
                policy = ((group.get("template") or {}).get("spec") or {}).get("restartPolicy")
                if policy not in (None, "", "Never"):
                    yield f"{gp}.template.spec.restartPolicy", "must be Never or unset with autoscaler v2"
    if (options.get("idleTimeoutSeconds") or 0) < 0:
        yield f"{path}.autoscalerOptions.idleTimeoutSeconds", "must be non-negative"
    if any(isinstance(e, Mapping) and e.get("name") == "KUBERAY_GEN_AUTOSCALER_START_CMD" for e in options.get("env") or ()):
        yield f"{path}.autoscalerOptions.env", "must not contain KUBERAY_GEN_AUTOSCALER_START_CMD (managed by KubeRay)"
    if spec.get("historyServerOptions") is not None and not FEATURE_GATES["RayClusterHistoryServer"]:
        yield f"{path}.historyServerOptions", "needs KubeRay's RayClusterHistoryServer feature gate (off by default)"
    yield from validate_auth_options(spec, path)
    if spec.get("networkPolicy") is not None and not FEATURE_GATES["RayClusterNetworkPolicy"]:
        yield f"{path}.networkPolicy", "needs KubeRay's RayClusterNetworkPolicy feature gate (off by default)"
    if spec.get("tlsOptions") is not None and not FEATURE_GATES["RayClusterMTLS"]:
        yield f"{path}.tlsOptions", "needs KubeRay's RayClusterMTLS feature gate (off by default)"


def validate_auth_options(spec: Mapping[str, Any], path: str) -> Problems:
    """The ``IsAuthEnabled`` / ``IsK8sAuthEnabled`` block of ``ValidateRayClusterSpec``."""
    auth = spec.get("authOptions") or {}
    k8s_auth = auth.get("enableK8sTokenAuth") is True
    if auth.get("mode") == "token":
        version = _version(spec.get("rayVersion"))
        if version is None:
            yield f"{path}.rayVersion", "authOptions.mode 'token' needs rayVersion 2.52.0 or later (not set or invalid)"
        elif version < (2, 52, 0):
            yield f"{path}.rayVersion", "authOptions.mode 'token' needs Ray 2.52.0 or later"
        elif k8s_auth and version < (2, 55, 0):
            yield f"{path}.rayVersion", "authOptions.enableK8sTokenAuth needs Ray 2.55.0 or later"
        if k8s_auth and auth.get("secretName"):
            yield f"{path}.authOptions.secretName", "cannot be set together with enableK8sTokenAuth"
    elif k8s_auth:
        yield f"{path}.authOptions.enableK8sTokenAuth", "needs authOptions.mode 'token'"
    secret = auth.get("secretName")
    if secret and (not DNS_1123_SUBDOMAIN.match(secret) or len(secret) > 253):
        # The provider's rule: KubeRay accepts it, and every Ray pod then fails to reference the Secret.
        yield f"{path}.authOptions.secretName", "must name a Kubernetes Secret (a DNS-1123 subdomain)"


def validate_ray_cluster_upgrade_options(spec: Mapping[str, Any], path: str, *, created_by_rayjob: bool) -> Problems:
    """``ValidateRayClusterUpgradeOptions``: Recreate or None, and never on a RayJob's cluster."""
    kind = (spec.get("upgradeStrategy") or {}).get("type")
    if kind is not None and created_by_rayjob:
        yield f"{path}.upgradeStrategy.type", "cannot be set when the RayCluster is created by a RayJob"


def validate_deletion_configuration(spec: Mapping[str, Any]) -> Problems:
    """``validateDeletionConfiguration`` with ``validateDeletionRules``, ``validateDeletionCondition``,
    ``validateTTLConsistency`` and ``validateLegacyDeletionPolicies``."""
    shutdown = spec.get("shutdownAfterJobFinishes") is True
    if not shutdown and (spec.get("ttlSecondsAfterFinished") or 0) > 0:
        yield "spec.ttlSecondsAfterFinished", "requires shutdownAfterJobFinishes=true"
    strategy = spec.get("deletionStrategy")
    if strategy is None:
        return
    if not FEATURE_GATES["RayJobDeletionPolicy"]:  # pragma: no cover - on by default since v1.6
        yield "spec.deletionStrategy", "needs the RayJobDeletionPolicy feature gate"
    rules = strategy.get("deletionRules") or []
    legacy = "onSuccess" in strategy or "onFailure" in strategy
    selector = bool(spec.get("clusterSelector"))
    autoscaling = _autoscaling(spec.get("rayClusterSpec") or {})
    if rules and shutdown:
        yield "spec.shutdownAfterJobFinishes", "must not be true with deletionStrategy.deletionRules (mutually exclusive)"
    if legacy:
        policies = {k: (strategy.get(k) or {}).get("policy") for k in ("onSuccess", "onFailure")}
        for which, policy in policies.items():
            if policy is None:
                yield f"spec.deletionStrategy.{which}.policy", "must be set when the legacy fields are used"
            elif selector and policy in ("DeleteCluster", "DeleteWorkers"):
                yield f"spec.deletionStrategy.{which}.policy", f"{policy} is not supported with clusterSelector"
        if autoscaling and "DeleteWorkers" in policies.values():
            yield "spec.deletionStrategy", "DeleteWorkers does not support a RayCluster with autoscaling enabled"
        if shutdown and "DeleteNone" in policies.values():
            yield "spec.shutdownAfterJobFinishes", "must not be true while a deletion policy is DeleteNone"
        return
    by_condition: dict[tuple[str, str], dict[str, int]] = {}
    for i, rule in enumerate(rules):
        rp = f"spec.deletionStrategy.deletionRules[{i}]"
        policy, cond = rule.get("policy"), rule.get("condition") or {}
        if selector and policy in ("DeleteCluster", "DeleteWorkers"):
            yield f"{rp}.policy", f"{policy} is not supported with clusterSelector"
            continue
        if autoscaling and policy == "DeleteWorkers":
            yield f"{rp}.policy", "DeleteWorkers is not supported with autoscaling enabled"
            continue
        kind = ("JobStatus", cond["jobStatus"]) if "jobStatus" in cond else ("JobDeploymentStatus",
                                                                              cond.get("jobDeploymentStatus"))
        ttls = by_condition.setdefault(kind, {})
        if policy in ttls:
            yield rp, f"duplicate rule for policy {policy} and {kind[0]} {kind[1]}"
            continue
        ttls[policy] = cond.get("ttlSeconds", 0)
    for (ctype, cvalue), ttls in by_condition.items():
        previous: tuple[str, int] | None = None
        for policy in ("DeleteWorkers", "DeleteCluster", "DeleteSelf"):
            if policy not in ttls:
                continue
            if previous and ttls[policy] < previous[1]:
                yield "spec.deletionStrategy.deletionRules", (
                    f"for {ctype} {cvalue}: the {policy} TTL ({ttls[policy]}) must be ≥ the {previous[0]} TTL "
                    f"({previous[1]}) (Workers ≤ Cluster ≤ Self)")
            previous = (policy, ttls[policy])


def validate_rayjob_spec(rayjob: Mapping[str, Any]) -> Problems:
    """``ValidateRayJobSpec`` (plus the provider's own rules, marked so) on a schema-valid, defaulted RayJob."""
    spec = rayjob["spec"]
    annotations = (rayjob.get("metadata") or {}).get("annotations") or {}
    mode = spec.get("submissionMode")
    shutdown = spec.get("shutdownAfterJobFinishes") is True
    selector = spec.get("clusterSelector") or {}
    cluster = spec.get("rayClusterSpec")
    if mode not in SUBMISSION_MODES:  # the provider's rule: KubeRay accepts it and the RayJob never finishes
        yield "spec.submissionMode", f"must be one of {list(SUBMISSION_MODES)} (KubeRay accepts typos and then never finishes)"
    if spec.get("suspend") and not shutdown:
        yield "spec.suspend", "a RayJob with shutdownAfterJobFinishes=false is not allowed to be suspended"
    yield from validate_deletion_configuration(spec)
    if spec.get("suspend") and selector:
        yield "spec.suspend", "the clusterSelector mode doesn't support suspend"
    if cluster is None and not selector:
        yield "spec.rayClusterSpec", "one of rayClusterSpec or clusterSelector must be set"
    if selector:
        if not selector.get(c.RAY_CLUSTER_LABEL):
            yield "spec.clusterSelector", f"must name the cluster with a non-empty {c.RAY_CLUSTER_LABEL!r} key"
        if mode == "SidecarMode":
            yield "spec.submissionMode", "SidecarMode does not support clusterSelector"
        if (spec.get("backoffLimit") or 0) > 0:
            yield "spec.backoffLimit", "must be 0 with clusterSelector"
    if mode == "InteractiveMode" and (spec.get("backoffLimit") or 0) > 0:
        yield "spec.backoffLimit", "must be 0 in InteractiveMode"
    if mode == "SidecarMode":
        if spec.get("submitterPodTemplate") is not None:
            yield "spec.submitterPodTemplate", "SidecarMode doesn't support submitterPodTemplate"
        if spec.get("submitterConfig") is not None:
            yield "spec.submitterConfig", "SidecarMode doesn't support submitterConfig"
        policy = (((cluster or {}).get("headGroupSpec") or {}).get("template") or {}).get("spec", {}).get("restartPolicy")
        if policy not in (None, "", "Never"):
            yield "spec.rayClusterSpec.headGroupSpec.template.spec.restartPolicy", "must be Never or unset in SidecarMode"
    if cluster is not None:
        if (cluster.get("authOptions") or {}).get("enableK8sTokenAuth") is True:
            yield "spec.rayClusterSpec.authOptions.enableK8sTokenAuth", "K8s token auth is not supported for RayJob"
        yield from validate_ray_cluster_spec_rules(cluster, annotations, "spec.rayClusterSpec")
        yield from validate_ray_cluster_upgrade_options(cluster, "spec.rayClusterSpec", created_by_rayjob=True)
        if cluster.get("rayVersion") is not None and _version(cluster["rayVersion"]) is None:
            # The provider's rule: KubeRay parses rayVersion to build the submitter command and loops otherwise.
            yield "spec.rayClusterSpec.rayVersion", "must be a Ray version such as '2.60.0'"
        if cluster.get("managedBy") not in (None, "ray.io/kuberay-operator"):
            # The provider's rule: the RayJob creates this cluster, and KubeRay never reconciles one managed elsewhere.
            yield "spec.rayClusterSpec.managedBy", ("must be unset or 'ray.io/kuberay-operator': KubeRay skips a "
                                                    "RayCluster managed by another controller, so the job never starts")
    if "runtimeEnvYAML" in spec:  # dashboardclient.UnmarshalRuntimeEnvYAML
        try:
            parsed = yaml.safe_load(spec["runtimeEnvYAML"]) if spec["runtimeEnvYAML"].strip() else {}
        except yaml.YAMLError as exc:
            yield "spec.runtimeEnvYAML", f"is not valid YAML: {str(exc).splitlines()[0]}"
        else:
            if not isinstance(parsed, dict):
                yield "spec.runtimeEnvYAML", "must be a YAML mapping (KubeRay unmarshals it into a map)"
    if spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] <= 0:
        yield "spec.activeDeadlineSeconds", "must be a positive integer"
    if spec.get("preRunningDeadlineSeconds") is not None and spec["preRunningDeadlineSeconds"] <= 0:
        yield "spec.preRunningDeadlineSeconds", "must be a positive integer"
    if (spec.get("backoffLimit") or 0) < 0:
        yield "spec.backoffLimit", "must be ≥ 0"
    if (spec.get("ttlSecondsAfterFinished") or 0) < 0:
        yield "spec.ttlSecondsAfterFinished", "must be ≥ 0"
    # The provider's rules: KubeRay accepts these, and the job then fails or never finishes.
    entrypoint = spec.get("entrypoint")
    custom_submitter = mode == "K8sJobMode" and spec.get("submitterPodTemplate") is not None
    if mode != "InteractiveMode" and not custom_submitter and not (isinstance(entrypoint, str) and entrypoint.strip()):
        yield "spec.entrypoint", ("must be a non-empty shell command (only InteractiveMode or a custom "
                                  "submitterPodTemplate runs without one)")
    if "entrypointResources" in spec:
        try:
            resources = json.loads(spec["entrypointResources"])
        except json.JSONDecodeError:
            resources = None
        if not isinstance(resources, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in resources.values()):
            yield "spec.entrypointResources", "must be a JSON object of resource name to number, e.g. '{\"TPU\": 1}'"


def _quantity_int(value: Any) -> int | None:
    number = pod_rules.parse_quantity(str(value)) if value is not None else None
    return int(number) if number is not None and number == int(number) else None


def validate_gke_tpu(cluster: Mapping[str, Any], path: str) -> Problems:
    """GKE's TPU rule, on every group whose Ray container asks for ``google.com/tpu`` and selects a topology
    (``cloud.google.com/gke-tpu-topology``): a slice of that topology has a fixed number of chips, and its pods must
    claim all of them, ``numOfHosts`` times the chips per pod (``TPU_WORKER_HOSTNAMES`` and the slice's all-or-nothing
    scheduling depend on it). The head is a single pod. Not KubeRay's rule: otherwise the pods never schedule."""
    groups = [("headGroupSpec", cluster.get("headGroupSpec") or {}, True)]
    groups += [(f"workerGroupSpecs[{i}]", g, False) for i, g in enumerate(cluster.get("workerGroupSpecs") or [])
               if isinstance(g, Mapping)]
    for where, group, head in groups:
        template = group.get("template") if isinstance(group.get("template"), Mapping) else {}
        selector = (template.get("spec") or {}).get("nodeSelector") or {}
        topology = selector.get(building.GKE_TPU_TOPOLOGY_LABEL) if isinstance(selector, Mapping) else None
        resources = _ray_container(group).get("resources") or {}
        per_pod = _quantity_int((resources.get("limits") or {}).get(building.TPU_RESOURCE)
                                or (resources.get("requests") or {}).get(building.TPU_RESOURCE))
        if not per_pod or not isinstance(topology, str) or not building.TPU_TOPOLOGY.match(topology):
            continue
        chips, hosts = building.tpu_chips(topology), 1 if head else int(group.get("numOfHosts") or 1)
        if chips != hosts * per_pod:
            fits = f"; {chips // per_pod} hosts would fit" if chips % per_pod == 0 and not head else ""
            pods = "the head (one pod)" if head else f"numOfHosts={hosts}"
            yield (f"{path}.{where}.template.spec.nodeSelector[{building.GKE_TPU_TOPOLOGY_LABEL!r}]",
                   f"a TPU slice of topology {topology} has {chips} chips, but {pods} times google.com/tpu={per_pod} "
                   f"per pod claims {hosts * per_pod}: they must be equal{fits}")


#: Kueue admits at most 8 pod sets per workload; a RayJob's head is one (``rayjob_webhook.go``).
KUEUE_MAX_WORKER_GROUPS = 7


def validate_kueue(rayjob: Mapping[str, Any]) -> Problems:
    """Kueue's RayJob webhook (``pkg/controller/jobs/rayjob/rayjob_webhook.go``, ``validateCreate``) for a RayJob
    labelled ``kueue.x-k8s.io/queue-name``, which refuses the RayJob at creation (no Kueue: the label is inert).
    The provider's own rule: a priority class without a queue is never looked at."""
    labels = (rayjob.get("metadata") or {}).get("labels") or {}
    queue, priority = labels.get(c.KUEUE_QUEUE_LABEL), labels.get(c.KUEUE_PRIORITY_LABEL)
    qpath, ppath = f"metadata.labels[{c.KUEUE_QUEUE_LABEL!r}]", f"metadata.labels[{c.KUEUE_PRIORITY_LABEL!r}]"
    if priority is not None and not queue:
        yield ppath, f"needs a queue ({c.KUEUE_QUEUE_LABEL}): Kueue only orders queued RayJobs by priority"
    if not queue:
        return
    if not DNS_1123_SUBDOMAIN.match(queue) or len(queue) > 63:
        yield qpath, "must name a Kueue LocalQueue: a lower-case DNS-1123 name of at most 63 characters"
    if priority is not None and (not DNS_1123_SUBDOMAIN.match(priority) or len(priority) > 63):
        yield ppath, "must name a Kueue WorkloadPriorityClass: a lower-case DNS-1123 name of at most 63 characters"
    spec = rayjob.get("spec") or {}
    cluster = spec.get("rayClusterSpec") or {}
    if spec.get("clusterSelector"):
        yield qpath, ("cannot be used with clusterSelector: a Kueue-managed RayJob should not use an existing "
                      "cluster (Kueue admits the cluster the RayJob creates)")
    if spec.get("shutdownAfterJobFinishes") is not True:
        yield qpath, ("needs shutdown_after_job_finishes=True: a Kueue-managed RayJob should delete the cluster "
                      "after finishing")
    if _autoscaling(cluster):
        yield qpath, ("cannot be used with autoscaling (min_replicas != max_replicas, enableInTreeAutoscaling): a "
                      "Kueue-managed RayJob should not use autoscaling")
    groups = cluster.get("workerGroupSpecs") or []
    if len(groups) > KUEUE_MAX_WORKER_GROUPS:
        yield qpath, (f"allows at most {KUEUE_MAX_WORKER_GROUPS} worker groups (Kueue admits 8 pod sets, one is the "
                      f"head), got {len(groups)}")
    for i, group in enumerate(groups):
        if isinstance(group, Mapping) and group.get("groupName") == "head":
            yield f"spec.rayClusterSpec.workerGroupSpecs[{i}].groupName", (
                "must not be 'head' in a Kueue-managed RayJob (Kueue names the head's pod set 'head')")


def _metadata(obj: Mapping[str, Any], kind: str) -> Problems:
    """The API server's ``ValidateObjectMeta`` (namespace, labels, annotations) and KubeRay's name rule
    (``ValidateRayJobMetadata`` / ``ValidateRayClusterMetadata``)."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        yield "metadata", "must be a mapping with at least a name"
        return
    name = meta.get("name")
    limit = MAX_RAYJOB_NAME_LENGTH if kind == c.RAYJOB_KIND else MAX_RAYCLUSTER_NAME_LENGTH
    if not isinstance(name, str) or not name:
        yield "metadata.name", "must be a non-empty string"
    elif len(name) > limit:
        yield "metadata.name", f"must be at most {limit} characters for a {kind} (KubeRay's limit), got {len(name)}"
    elif not DNS_1035_LABEL.match(name):
        yield "metadata.name", "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter"
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                  or not DNS_1123_LABEL.match(namespace)):
        yield "metadata.namespace", "must be a DNS-1123 label (lower-case, ≤ 63 characters)"
    yield from pod_rules.validate_labels(meta.get("labels"), "metadata.labels")
    yield from pod_rules.validate_annotations(meta.get("annotations"), "metadata.annotations")


def _templates(obj: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    spec = obj.get("spec") or {}
    cluster, prefix = (spec.get("rayClusterSpec"), "spec.rayClusterSpec") if obj.get("kind") == c.RAYJOB_KIND else (
        spec, "spec")
    if isinstance(cluster, Mapping):
        yield f"{prefix}.headGroupSpec.template", (cluster.get("headGroupSpec") or {}).get("template")
        for i, group in enumerate(cluster.get("workerGroupSpecs") or ()):
            yield f"{prefix}.workerGroupSpecs[{i}].template", group.get("template")
    if obj.get("kind") == c.RAYJOB_KIND and spec.get("submitterPodTemplate") is not None:
        yield "spec.submitterPodTemplate", spec["submitterPodTemplate"]


def _value_at(obj: Any, path: str) -> Any:
    node = obj
    for part in re.findall(r"\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|([^.\[\]]+)", path):
        index, quoted, dquoted, key = part
        try:
            node = node[int(index)] if index else node[quoted or dquoted or key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def problems(obj: Mapping[str, Any], *, allow_env: Collection[str] = ()) -> list[tuple[str, str]]:
    """Every ``(path, rule)`` problem of a RayJob or RayCluster manifest (empty when KubeRay would accept it)."""
    kind = obj.get("kind")
    found = list(_metadata(obj, kind))
    defaulted, schema_problems = crd_schema.judge(dict(obj))
    found += schema_problems
    if schema_problems:
        return found  # KubeRay's rules presume a schema-valid object (the API server refuses it first)
    if kind == c.RAYJOB_KIND:
        found += validate_kueue(defaulted)  # Kueue's webhook refuses at creation, before KubeRay ever looks
        found += validate_rayjob_spec(defaulted)
    else:
        annotations = (defaulted.get("metadata") or {}).get("annotations") or {}
        found += validate_ray_cluster_spec_rules(defaulted["spec"], annotations, "spec")
        labels = (defaulted.get("metadata") or {}).get("labels") or {}
        found += validate_ray_cluster_upgrade_options(
            defaulted["spec"], "spec", created_by_rayjob=labels.get(c.ORIGINATED_FROM_CRD_LABEL) in ("RayJob", "RayService"))
    cluster, prefix = ((defaulted["spec"].get("rayClusterSpec"), "spec.rayClusterSpec") if kind == c.RAYJOB_KIND
                       else (defaulted["spec"], "spec"))
    if isinstance(cluster, Mapping):
        found += validate_gke_tpu(cluster, prefix)
    for path, template in _templates(defaulted):
        found += pod_rules.validate_pod_template(template, path)
    found += secret_policy.manifest_problems(defaulted, allow=allow_env)
    return found


def _shown(obj: Any, path: str, rule: str) -> Any:
    """The offending value for the message: hidden for a secret, the variable's name for an env entry."""
    if rule.startswith(secret_policy.RULE_PREFIX):
        return secret_policy.HIDDEN
    value = _value_at(obj, path)
    if isinstance(value, Mapping) and re.search(r"\.env\[\d+\]$", path):
        return value.get("name")
    return value


def _raise_first(obj: Mapping[str, Any], found: list[tuple[str, str]], *, strip: str = "", parameter: str = "") -> None:
    """Raise for the first problem, under the compact parameter that produced the path when the builder made ``obj``."""
    if not found:
        return
    origins = building.origins_of(obj)
    path, rule = found[0]
    inner = path[len(strip):].lstrip(".") if strip and path.startswith(strip) else path
    name = building.to_parameter(inner, origins)
    if parameter and name == inner and strip and path.startswith(strip):
        name = f"{parameter}.{inner}" if inner else parameter
    more = f" (and {len(found) - 1} more: {'; '.join(p for p, _ in found[1:4])}{'…' if len(found) > 4 else ''})" \
        if len(found) > 1 else ""
    if name != path:
        more += f" [manifest path {path}]"
    raise InvalidParameterError(name, _shown(obj, inner, rule), rule + more)


def validate_rayjob(manifest: Mapping[str, Any], *, allow_env: Collection[str] = ()) -> None:
    """Raise :class:`InvalidParameterError` for the first thing KubeRay v1.7 or Kubernetes would refuse, prune,
    mark ValidationFailed or never finish. ``allow_env`` names literal environment variables the secret policy
    must accept."""
    if not isinstance(manifest, Mapping):
        raise InvalidParameterError("manifest", manifest, "must be a RayJob manifest mapping")
    if not isinstance(manifest.get("spec"), Mapping):
        raise InvalidParameterError("spec", manifest.get("spec"), "must be a mapping")
    _raise_first(manifest, problems(manifest, allow_env=allow_env))


def validate_raycluster(manifest: Mapping[str, Any], *, allow_env: Collection[str] = ()) -> None:
    """Like :func:`validate_rayjob`, for a standalone RayCluster (``ValidateRayClusterMetadata`` and ``Spec``)."""
    if not isinstance(manifest, Mapping) or not isinstance(manifest.get("spec"), Mapping):
        raise InvalidParameterError("spec", manifest, "must be a RayCluster manifest with a spec mapping")
    _raise_first(manifest, problems(manifest, allow_env=allow_env))


def validate_ray_cluster_spec(cluster_spec: Any, parameter: str = "rayClusterSpec") -> None:
    """Judge a ``rayClusterSpec`` alone, as the spec of a RayCluster (paths are reported under ``parameter``)."""
    if not isinstance(cluster_spec, Mapping):
        raise InvalidParameterError(parameter, cluster_spec, "must be a mapping")
    rc = {"apiVersion": c.RAY_API_VERSION, "kind": c.RAYCLUSTER_KIND, "metadata": {"name": "cluster"},
          "spec": dict(cluster_spec)}
    found = [(p, r) for p, r in problems(rc) if p.startswith("spec")]
    _raise_first(cluster_spec, found, strip="spec", parameter=parameter)
