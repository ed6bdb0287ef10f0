"""KubeRay's operator-side RayJob validation (``validateRayJob``), written independently of the product code."""

from __future__ import annotations

import re
from typing import Any

import yaml

from kuberay_provider.constants import MAX_RAYJOB_NAME_LENGTH, RAY_CLUSTER_LABEL

JSON = dict[str, Any]
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


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
    problem = _spec_problem(rayjob.get("spec") or {})
    if problem:
        return "InvalidRayJobSpec", f"The RayJob spec is invalid: {problem}"
    return None


def _spec_problem(spec: JSON) -> str | None:
    mode = spec.get("submissionMode", "K8sJobMode")
    shutdown = bool(spec.get("shutdownAfterJobFinishes"))
    selector = spec.get("clusterSelector") or {}
    cluster_spec = spec.get("rayClusterSpec")
    strategy = spec.get("deletionStrategy") or {}
    if spec.get("suspend") and not shutdown:
        return "a RayJob with shutdownAfterJobFinishes set to false is not allowed to be suspended"
    if selector and spec.get("suspend"):
        return "the ClusterSelector mode doesn't support the suspend operation"
    if not cluster_spec and not selector:
        return "one of RayClusterTemplateSpec or ClusterSelector must be set"
    if selector and not selector.get(RAY_CLUSTER_LABEL):
        return f"cluster name in ClusterSelector should not be empty (key {RAY_CLUSTER_LABEL})"
    if mode == "SidecarMode":
        if selector:
            return "ClusterSelector is not supported in SidecarMode"
        if spec.get("submitterPodTemplate"):
            return "Currently, SidecarMode doesn't support SubmitterPodTemplate"
        if spec.get("submitterConfig"):
            return "Currently, SidecarMode doesn't support SubmitterConfig"
    if spec.get("ttlSecondsAfterFinished", 0) < 0:
        return "TTLSecondsAfterFinished must be a non-negative integer"
    if not shutdown and spec.get("ttlSecondsAfterFinished", 0) > 0:
        return "a RayJob with shutdownAfterJobFinishes set to false cannot have TTLSecondsAfterFinished"
    if "activeDeadlineSeconds" in spec and spec["activeDeadlineSeconds"] <= 0:
        return f"activeDeadlineSeconds must be a positive integer, got {spec['activeDeadlineSeconds']}"
    backoff = spec.get("backoffLimit", 0)
    if backoff < 0:
        return f"backoffLimit must be a non-negative integer, got {backoff}"
    if backoff > 0 and mode == "InteractiveMode":
        return "BackoffLimit is incompatible with InteractiveMode"
    if backoff > 0 and selector:
        return "BackoffLimit is incompatible with ClusterSelector"
    if spec.get("runtimeEnvYAML"):
        try:
            env = yaml.safe_load(spec["runtimeEnvYAML"])
        except yaml.YAMLError as exc:
            return f"failed to unmarshal RuntimeEnvYAML: {exc}"
        if not isinstance(env, dict):
            return "failed to unmarshal RuntimeEnvYAML: it must be a mapping"
    if cluster_spec:
        problem = _cluster_problem(cluster_spec)
        if problem:
            return problem
    rules = strategy.get("deletionRules")
    if rules:
        if shutdown:
            return "deletionRules and ShutdownAfterJobFinishes cannot be used together"
        seen = set()
        for rule in rules:
            cond = rule.get("condition") or {}
            key = (cond.get("jobStatus"), cond.get("jobDeploymentStatus"), rule.get("policy"))
            if key in seen:
                return f"duplicate deletion rule {key}"
            seen.add(key)
            if selector and rule.get("policy") in ("DeleteCluster", "DeleteWorkers"):
                return f"the {rule.get('policy')} policy is not supported with ClusterSelector"
    elif strategy and shutdown:
        for which in ("onSuccess", "onFailure"):
            if (strategy.get(which) or {}).get("policy") == "DeleteNone":
                return f"shutdownAfterJobFinishes is true but deletionStrategy.{which}.policy is DeleteNone"
    return None


def _cluster_problem(cluster_spec: JSON) -> str | None:
    head = cluster_spec.get("headGroupSpec") or {}
    if not ((head.get("template") or {}).get("spec") or {}).get("containers"):
        return "headGroupSpec should have at least one container"
    for group in cluster_spec.get("workerGroupSpecs") or []:
        low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
        if low > high:
            return (f"worker group {group.get('groupName')} has minReplicas {low} greater than "
                    f"maxReplicas {high}")
        if not ((group.get("template") or {}).get("spec") or {}).get("containers"):
            return f"worker group {group.get('groupName')} should have at least one container"
    return None
