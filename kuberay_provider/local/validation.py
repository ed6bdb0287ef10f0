"""KubeRay v1.7.0's operator-side RayJob validation (``ValidateRayJobMetadata`` / ``ValidateRayJobSpec``), as
the local double's own port of ``ray-operator/controllers/ray/utils/validation.go``.

Written independently of the product (which has its own port): the two are compared by the conformance tests,
so a rule misread in one shows up as a disagreement. It runs on the stored (schema-defaulted) object, returns the
first error as KubeRay words it, and the controller then marks the RayJob ``ValidationFailed``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import yaml

from kuberay_provider.local.names import MAX_RAYJOB_NAME_LENGTH, RAY_CLUSTER_LABEL

JSON = dict[str, Any]
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                            r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Feature gates at KubeRay v1.7.0's defaults (ray-operator/pkg/features/features.go).
GATES = {"RayJobDeletionPolicy": True, "RayClusterHistoryServer": False, "RayClusterNetworkPolicy": False,
         "RayClusterMTLS": False, "GCSFaultToleranceEmbeddedStorage": False}
V2_ENV = "RAY_enable_autoscaler_v2"


class Invalid(Exception):
    """One validation error, worded as KubeRay words it."""


def validate_rayjob(rayjob: JSON) -> tuple[str, str] | None:
    """Return ``(event reason, status message)`` when the RayJob is invalid, else None."""
    name = rayjob["metadata"]["name"]
    if len(name) > MAX_RAYJOB_NAME_LENGTH:
        return ("InvalidRayJobMetadata", "The RayJob metadata is invalid: RayJob name should be no more than "
                f"{MAX_RAYJOB_NAME_LENGTH} characters")
    if not DNS1035.match(name):
        return ("InvalidRayJobMetadata", f"The RayJob metadata is invalid: RayJob name should be a valid DNS1035 "
                f"label: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                f"alphabetic character, and end with an alphanumeric character (got {name!r})")
    try:
        _job_spec(rayjob)
    except Invalid as exc:
        text = str(exc)
        return "InvalidRayJobSpec", text if text.startswith("The RayJob spec is invalid") else \
            f"The RayJob spec is invalid: {text}"
    return None


def _env(container: JSON) -> dict[str, Any]:
    return {e.get("name"): e.get("value") for e in container.get("env") or []}


def _head(cluster: JSON) -> JSON:
    containers = (((cluster.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    return containers[0] if containers else {}


def _version(text: Any) -> tuple[int, ...] | None:
    found = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(x or 0) for x in found.groups()) if found else None


def _autoscaling(cluster: JSON | None) -> bool:
    return bool(cluster) and cluster.get("enableInTreeAutoscaling") is True


def _v2(cluster: JSON) -> bool:
    return _autoscaling(cluster) and (cluster.get("autoscalerOptions") or {}).get("version") == "v2"


def _job_spec(rayjob: JSON) -> None:
    spec = rayjob.get("spec") or {}
    shutdown = spec.get("shutdownAfterJobFinishes") is True
    selector = spec.get("clusterSelector") or {}
    cluster = spec.get("rayClusterSpec")
    mode = spec.get("submissionMode", "K8sJobMode")
    if spec.get("suspend") and not shutdown:
        raise Invalid("The RayJob spec is invalid: a RayJob with shutdownAfterJobFinishes set to false is not "
                      "allowed to be suspended")
    if spec.get("ttlSecondsAfterFinished", 0) < 0:
        raise Invalid("The RayJob spec is invalid: TTLSecondsAfterFinished must be a non-negative integer")
    _deletion(spec, shutdown, selector, cluster)
    if selector and spec.get("suspend"):
        raise Invalid("The RayJob spec is invalid: the ClusterSelector mode doesn't support the suspend operation")
    if cluster is None and not selector:
        raise Invalid("The RayJob spec is invalid: one of RayClusterSpec or ClusterSelector must be set")
    if selector:
        if not selector.get(RAY_CLUSTER_LABEL):
            raise Invalid("cluster name in ClusterSelector should not be empty")
        if mode == "SidecarMode":
            raise Invalid("ClusterSelector is not supported in SidecarMode")
        if spec.get("backoffLimit", 0) > 0:
            raise Invalid("The RayJob spec is invalid: BackoffLimit is incompatible with ClusterSelector mode")
    if mode == "InteractiveMode" and spec.get("backoffLimit", 0) > 0:
        raise Invalid("The RayJob spec is invalid: BackoffLimit is incompatible with InteractiveMode")
    if mode == "SidecarMode":
        if "submitterPodTemplate" in spec:
            raise Invalid("Currently, SidecarMode doesn't support SubmitterPodTemplate")
        if "submitterConfig" in spec:
            raise Invalid("Currently, SidecarMode doesn't support SubmitterConfig")
        policy = (((cluster or {}).get("headGroupSpec") or {}).get("template") or {}).get("spec", {}).get(
            "restartPolicy", "")
        if policy not in ("", "Never"):
            raise Invalid("restartPolicy for head Pod should be Never or unset when using SidecarMode")
    if cluster is not None:
        if (cluster.get("authOptions") or {}).get("enableK8sTokenAuth"):
            raise Invalid("The RayJob spec is invalid: K8s token auth mode is currently not supported for RayJob")
        _cluster(cluster, (rayjob.get("metadata") or {}).get("annotations") or {})
    if spec.get("runtimeEnvYAML"):
        try:
            env = yaml.safe_load(spec["runtimeEnvYAML"])
        except yaml.YAMLError as exc:
            raise Invalid(f"failed to unmarshal RuntimeEnvYAML: {exc}") from None
        if not isinstance(env, dict):
            raise Invalid("failed to unmarshal RuntimeEnvYAML: it must be a mapping")
    for key in ("activeDeadlineSeconds", "preRunningDeadlineSeconds"):
        if key in spec and spec[key] <= 0:
            raise Invalid(f"The RayJob spec is invalid: {key} must be a positive integer")
    if spec.get("backoffLimit", 0) < 0:
        raise Invalid("The RayJob spec is invalid: backoffLimit must be a positive integer")


def _deletion(spec: JSON, shutdown: bool, selector: JSON, cluster: JSON | None) -> None:
    if not shutdown and spec.get("ttlSecondsAfterFinished", 0) > 0:
        raise Invalid("The RayJob spec is invalid: a RayJob with shutdownAfterJobFinishes set to false cannot have "
                      "TTLSecondsAfterFinished")
    strategy = spec.get("deletionStrategy")
    if strategy is None:
        return
    rules = strategy.get("deletionRules") or []
    legacy = "onSuccess" in strategy or "onFailure" in strategy
    if rules and shutdown:
        raise Invalid("The RayJob spec is invalid: spec.shutdownAfterJobFinishes and "
                      "spec.deletionStrategy.deletionRules are mutually exclusive")
    if rules and legacy:
        raise Invalid("The RayJob spec is invalid: Cannot use both legacy onSuccess/onFailure fields and "
                      "deletionRules simultaneously")
    if legacy:
        if "onSuccess" not in strategy or "onFailure" not in strategy:
            raise Invalid("both DeletionStrategy.OnSuccess and DeletionStrategy.OnFailure must be set")
        on_success = (strategy["onSuccess"] or {}).get("policy")
        on_failure = (strategy["onFailure"] or {}).get("policy")
        if on_success is None or on_failure is None:
            raise Invalid("the DeletionPolicyType field of DeletionStrategy cannot be unset")
        if selector and {on_success, on_failure} & {"DeleteCluster", "DeleteWorkers"}:
            raise Invalid(f"the ClusterSelector mode doesn't support DeletionStrategy={on_success}/{on_failure}")
        if "DeleteWorkers" in (on_success, on_failure) and _autoscaling(cluster):
            raise Invalid("DeletionStrategy=DeleteWorkers currently does not support RayCluster with autoscaling "
                          "enabled")
        if shutdown and "DeleteNone" in (on_success, on_failure):
            raise Invalid("The RayJob spec is invalid: shutdownAfterJobFinshes is set to 'true' while deletion "
                          "policy is 'DeleteNone'")
        return
    if not rules:
        raise Invalid("The RayJob spec is invalid: DeletionStrategy requires either BOTH onSuccess and onFailure, "
                      "OR the deletionRules field (cannot be empty)")
    errors: list[str] = []
    ttls: dict[tuple[str, str], dict[str, int]] = {}
    for i, rule in enumerate(rules):
        cond, policy = rule.get("condition") or {}, rule.get("policy")
        if ("jobStatus" in cond) == ("jobDeploymentStatus" in cond):
            errors.append(f"deletionRules[{i}]: exactly one of JobStatus and JobDeploymentStatus must be set")
            continue
        if cond.get("ttlSeconds", 0) < 0:
            errors.append(f"deletionRules[{i}]: TTLSeconds must be non-negative")
            continue
        if selector and policy in ("DeleteCluster", "DeleteWorkers"):
            errors.append(f"deletionRules[{i}]: DeletionPolicyType '{policy}' not supported when ClusterSelector is set")
            continue
        if _autoscaling(cluster) and policy == "DeleteWorkers":
            errors.append(f"deletionRules[{i}]: DeletionPolicyType 'DeleteWorkers' not supported with autoscaling "
                          "enabled")
            continue
        which = ("JobStatus", cond["jobStatus"]) if "jobStatus" in cond else (
            "JobDeploymentStatus", cond["jobDeploymentStatus"])
        bucket = ttls.setdefault(which, {})
        if policy in bucket:
            errors.append(f"deletionRules[{i}]: duplicate rule for DeletionPolicyType '{policy}' and {which[0]} "
                          f"'{which[1]}'")
            continue
        bucket[policy] = cond.get("ttlSeconds", 0)
    for (kind, value), bucket in ttls.items():
        ordered = [(p, bucket[p]) for p in ("DeleteWorkers", "DeleteCluster", "DeleteSelf") if p in bucket]
        for (before, low), (after, high) in itertools.pairwise(ordered):
            if high < low:
                errors.append(f"for {kind} '{value}': {after} TTL ({high}) must be >= {before} TTL ({low})")
    if errors:
        raise Invalid("\n".join(errors))


def _group_checks(group_name: str, group: JSON) -> None:
    params = group.get("rayStartParams") or {}
    if any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")) and group.get("resources"):
        raise Invalid(f"resource fields should not be set in both rayStartParams and Resources for {group_name} "
                      "group; please use only one")
    if "labels" in params:
        raise Invalid(f"rayStartParams['labels'] is not supported for {group_name} group; please use the top-level "
                      "Labels field instead")
    for key, value in (group.get("labels") or {}).items():
        if len(key.rpartition("/")[2]) > 63 or not QUALIFIED_NAME.match(key):
            raise Invalid(f"invalid label key for {group_name} group: '{key}'")
        if len(value) > 63 or not LABEL_VALUE.match(value):
            raise Invalid(f"invalid label value for key '{key}' in {group_name} group: '{value}'")


def _cluster(cluster: JSON, annotations: JSON) -> None:
    head = cluster.get("headGroupSpec") or {}
    if not ((head.get("template") or {}).get("spec") or {}).get("containers"):
        raise Invalid("headGroupSpec should have at least one container")
    _group_checks("Head", head)
    autoscaling = _autoscaling(cluster)
    head_env = _env(_head(cluster))
    v2_env = head_env.get(V2_ENV) in ("1", "true")
    for group in cluster.get("workerGroupSpecs") or []:
        name = group.get("groupName")
        if not ((group.get("template") or {}).get("spec") or {}).get("containers"):
            raise Invalid("workerGroupSpec should have at least one container")
        low, high = group.get("minReplicas"), group.get("maxReplicas")
        if not autoscaling and (low is None or high is None):
            raise Invalid(f"worker group {name} must set both minReplicas and maxReplicas when autoscaling is disabled")
        if low is not None and low < 0:
            raise Invalid(f"worker group {name} has negative minReplicas {low}")
        if high is not None and high < 0:
            raise Invalid(f"worker group {name} has negative maxReplicas {high}")
        if low is not None and high is not None and low > high:
            raise Invalid(f"worker group {name} has minReplicas {low} greater than maxReplicas {high}")
        _group_checks(name, group)
        idle = group.get("idleTimeoutSeconds")
        if idle is not None:
            if idle < 0:
                raise Invalid(f"worker group {name}: idleTimeoutSeconds must be non-negative, got {idle}")
            if not (_v2(cluster) or v2_env):
                raise Invalid(f"worker group {name}: idleTimeoutSeconds is set, but autoscaler v2 is not enabled")
        if group.get("priority"):
            version = _version(cluster.get("rayVersion"))
            if version is None or version < (2, 56, 0):
                raise Invalid(f"worker group {name}: priority is set, but minimum Ray version is 2.56.0")
            if not (_v2(cluster) or v2_env):
                raise Invalid(f"worker group {name}: priority is set, but autoscaler v2 is not enabled")
    ft = cluster.get("gcsFaultToleranceOptions")
    if annotations.get("ray.io/ft-enabled") and ft is not None:
        raise Invalid("ray.io/ft-enabled annotation and GcsFaultToleranceOptions are both set. Please use only "
                      "GcsFaultToleranceOptions to configure GCS fault tolerance")
    ft_on = ft is not None or str(annotations.get("ray.io/ft-enabled", "")).lower() == "true"
    if not ft_on and "RAY_REDIS_ADDRESS" in head_env:
        raise Invalid("RAY_REDIS_ADDRESS is set which implicitly enables GCS fault tolerance, but "
                      "GcsFaultToleranceOptions is not set. Please set GcsFaultToleranceOptions to enable GCS fault "
                      "tolerance")
    if ft is not None:
        if (head.get("rayStartParams") or {}).get("redis-password"):
            raise Invalid("cannot set `redis-password` in rayStartParams when GcsFaultToleranceOptions is enabled")
        for env_name in ("REDIS_PASSWORD", "RAY_REDIS_ADDRESS"):
            if env_name in head_env:
                raise Invalid(f"cannot set `{env_name}` env var in head Pod when GcsFaultToleranceOptions is enabled")
        if annotations.get("ray.io/external-storage-namespace"):
            raise Invalid("cannot set `ray.io/external-storage-namespace` annotation when GcsFaultToleranceOptions "
                          "is enabled")
        if ft.get("backend") == "rocksdb":
            if not GATES["GCSFaultToleranceEmbeddedStorage"]:
                raise Invalid("the embedded RocksDB GCS fault tolerance backend requires the "
                              "GCSFaultToleranceEmbeddedStorage feature gate to be enabled")
        elif ft.get("storage") is not None:
            raise Invalid("cannot set GcsFaultToleranceOptions.Storage when backend is 'redis'")
    if (head.get("rayStartParams") or {}).get("redis-username") or "REDIS_USERNAME" in head_env:
        raise Invalid("cannot set redis username in rayStartParams or environment variables - use "
                      "GcsFaultToleranceOptions.RedisUsername instead")
    options = cluster.get("autoscalerOptions") or {}
    if not autoscaling and v2_env:
        raise Invalid(f"environment variable {V2_ENV} cannot be set to '{head_env[V2_ENV]}' when "
                      "enableInTreeAutoscaling is false")
    if autoscaling:
        for group in cluster.get("workerGroupSpecs") or []:
            if group.get("suspend"):
                raise Invalid(f"worker group {group.get('groupName')} cannot be suspended with Autoscaler enabled")
        if options.get("version") is not None and V2_ENV in head_env:
            raise Invalid(f"both .spec.autoscalerOptions.version and head Pod env var {V2_ENV} are set")
        if _v2(cluster):
            for group in [head, *(cluster.get("workerGroupSpecs") or [])]:
                if ((group.get("template") or {}).get("spec") or {}).get("restartPolicy", "") not in ("", "Never"):
                    raise Invalid("restartPolicy should be Never or unset when using autoscaler V2")
    if options.get("idleTimeoutSeconds", 0) < 0:
        raise Invalid("autoscalerOptions.idleTimeoutSeconds must be non-negative")
    if "KUBERAY_GEN_AUTOSCALER_START_CMD" in _env(options):
        raise Invalid("autoscalerOptions.env must not contain KUBERAY_GEN_AUTOSCALER_START_CMD")
    if "historyServerOptions" in cluster and not GATES["RayClusterHistoryServer"]:
        raise Invalid("RayClusterHistoryServer feature gate is not enabled")
    auth = cluster.get("authOptions") or {}
    if auth.get("mode") == "token":
        version = _version(cluster.get("rayVersion"))
        if not cluster.get("rayVersion"):
            raise Invalid("authOptions.mode is 'token' but RayVersion was not specified")
        if version is None or version < (2, 52, 0):
            raise Invalid(f"authOptions.mode is 'token' but minimum Ray version is 2.52.0, got {cluster['rayVersion']}")
        if auth.get("enableK8sTokenAuth"):
            if version < (2, 55, 0):
                raise Invalid("authOptions.enableK8sTokenAuth is enabled but minimum Ray version is 2.55.0")
            if auth.get("secretName"):
                raise Invalid("authOptions.enableK8sTokenAuth is enabled and authOptions.secretName is also set")
    elif auth.get("enableK8sTokenAuth"):
        raise Invalid("authOptions.enableK8sTokenAuth is enabled but authOptions.mode not set to 'token'")
    if "networkPolicy" in cluster and not GATES["RayClusterNetworkPolicy"]:
        raise Invalid("spec.networkPolicy requires the RayClusterNetworkPolicy feature gate to be enabled")
    if "tlsOptions" in cluster and not GATES["RayClusterMTLS"]:
        raise Invalid("spec.tlsOptions requires the RayClusterMTLS feature gate to be enabled")
