"""User manifests: loading, merging the provider's identity and safe defaults in, adding ``secret_env`` (pure)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError


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
    """Put the provider's identity into a user manifest; fill safe defaults only where the user set nothing,
    and never a default that turns a valid manifest into one KubeRay refuses:

    * ``shutdownAfterJobFinishes`` is not added when a ``deletionStrategy`` is given (rules need it false, and
      legacy ``DeleteNone`` policies refuse it true; the strategy decides the cleanup);
    * ``ttlSecondsAfterFinished`` is not added unless ``shutdownAfterJobFinishes`` ends up true and no
      ``deletionStrategy`` is given;
    """
    merged = copy.deepcopy(dict(manifest))
    meta = merged.setdefault("metadata", {})
    meta["name"] = name
    meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    for drop in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "generateName",
                 "selfLink", "deletionTimestamp", "ownerReferences"):
        meta.pop(drop, None)
    merged.pop("status", None)
    spec = merged["spec"]
    strategy = spec.get("deletionStrategy")
    for key, value in defaults.items():
        if key in spec:
            continue
        if key == "shutdownAfterJobFinishes" and strategy is not None:
            continue
        if key == "ttlSecondsAfterFinished" and (strategy is not None or spec.get(
                "shutdownAfterJobFinishes", defaults.get("shutdownAfterJobFinishes")) is not True):
            continue
        spec[key] = value
    return merged


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
