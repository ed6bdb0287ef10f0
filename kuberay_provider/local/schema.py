"""The KubeRay CRD schemas: OpenAPI defaulting, schema validation and the CRDs' CEL rules (by hand).

The gzip copies of the v1.7.0 CRD YAMLs in ``crds/`` are parsed once per process (about 0.5 s).
"""

from __future__ import annotations

import copy
import functools
import gzip
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kuberay_provider.local.names import RAYCLUSTER_PLURAL, RAYJOB_PLURAL

CRD_DIR = Path(__file__).parent / "crds"
CRD_FILES = {RAYJOB_PLURAL: "ray.io_rayjobs.yaml.gz", RAYCLUSTER_PLURAL: "ray.io_rayclusters.yaml.gz"}
MANAGED_BY_VALUES = ("ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def load_crd(plural: str) -> dict[str, Any]:
    """Return the parsed CRD document for ``rayjobs`` or ``rayclusters`` (cached)."""
    with gzip.open(CRD_DIR / CRD_FILES[plural], "rt", encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)


@functools.cache
def openapi_schema(plural: str, version: str = "v1") -> dict[str, Any]:
    """Return the ``openAPIV3Schema`` of one served version of a CRD."""
    for entry in load_crd(plural)["spec"]["versions"]:
        if entry["name"] == version:
            return entry["schema"]["openAPIV3Schema"]
    raise KeyError(f"{plural} has no version {version}")


@functools.cache
def _validator(plural: str, version: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(openapi_schema(plural, version))


def apply_defaults(schema: dict[str, Any], value: Any) -> None:
    """Fill OpenAPI ``default`` values into ``value`` in place, like the API server's structural defaulting."""
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for sub_value in value.values():
                apply_defaults(extra, sub_value)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)


def prune(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Drop, in place, every field the structural schema does not declare (as the API server does, silently);
    return the paths dropped. Nulls of fields without ``nullable`` are dropped too."""
    dropped: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        for key in list(value):
            sub = (props or {}).get(key) if props is not None else (extra if isinstance(extra, dict) else None)
            if value[key] is None and not (sub or {}).get("nullable"):
                del value[key]
            elif sub is None and not preserve and not (props is None and extra is True):
                dropped.append(f"{path}.{key}".lstrip("."))
                del value[key]
            elif sub is not None:
                dropped += prune(sub, value[key], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            dropped += prune(schema["items"], item, f"{path}[{i}]")
    return dropped


def list_map_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """What JSON Schema does not express: duplicate keys in ``x-kubernetes-list-type: map`` lists (env by name,
    ports, imagePullSecrets...: ``Duplicate value``) and integers outside their ``int32``/``int64`` format."""
    errors: list[str] = []
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                errors += list_map_errors(sub, value[key], f"{path}.{key}".lstrip("."))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                errors += list_map_errors(extra, item, f"{path}[{key}]")
    elif isinstance(value, int) and not isinstance(value, bool) and schema.get("format") in ("int32", "int64"):
        bits = 31 if schema["format"] == "int32" else 63
        if not -(2**bits) <= value < 2**bits:
            errors.append(f"{path}: Invalid value: {value}: must fit in {schema['format']}")
    elif isinstance(value, list):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen = set()
        for i, item in enumerate(value):
            if schema.get("x-kubernetes-list-type") == "map" and isinstance(item, dict):
                ident = tuple(item.get(k) for k in keys)
                if ident in seen:
                    shown = ", ".join(f'"{k}":{v!r}' for k, v in zip(keys, ident, strict=True))
                    errors.append(f"{path}[{i}]: Duplicate value: map[string]interface {{}}{{{shown}}}")
                seen.add(ident)
            if isinstance(schema.get("items"), dict):
                errors += list_map_errors(schema["items"], item, f"{path}[{i}]")
    return errors


def _path(error: jsonschema.ValidationError) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")


def _cel_errors(plural: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    """The CEL rules of the KubeRay v1.7 CRDs, written out by hand."""
    errors: list[str] = []
    spec = obj.get("spec") or {}
    old_spec = (old or {}).get("spec") or {}
    managed = [("spec.managedBy", spec, old_spec)]
    if plural == RAYJOB_PLURAL:
        managed.append(
            ("spec.rayClusterSpec.managedBy", spec.get("rayClusterSpec") or {}, old_spec.get("rayClusterSpec") or {})
        )
        strategy = spec.get("deletionStrategy")
        if isinstance(strategy, dict):
            legacy = "onSuccess" in strategy or "onFailure" in strategy
            if legacy and "deletionRules" in strategy:
                errors.append(
                    "spec.deletionStrategy: Invalid value: \"object\": legacy policies (onSuccess/onFailure) and "
                    "deletionRules cannot be used together within the same deletionStrategy"
                )
            elif not (("onSuccess" in strategy and "onFailure" in strategy) or "deletionRules" in strategy):
                errors.append(
                    "spec.deletionStrategy: Invalid value: \"object\": deletionStrategy requires either BOTH "
                    "onSuccess and onFailure, OR deletionRules"
                )
            for i, rule in enumerate(strategy.get("deletionRules") or []):
                cond = rule.get("condition") if isinstance(rule, dict) else None
                if not isinstance(cond, dict):
                    continue
                both = "jobStatus" in cond and "jobDeploymentStatus" in cond
                if both or not ("jobStatus" in cond or "jobDeploymentStatus" in cond):
                    what = "cannot be used together" if both else "requires either JobStatus or JobDeploymentStatus"
                    errors.append(
                        f"spec.deletionStrategy.deletionRules[{i}].condition: Invalid value: \"object\": "
                        f"JobStatus and JobDeploymentStatus {what}"
                    )
    for path, new_parent, old_parent in managed:
        if "managedBy" in new_parent and new_parent["managedBy"] not in MANAGED_BY_VALUES:
            errors.append(
                f"{path}: Invalid value: \"string\": the managedBy field value must be either "
                "'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"
            )
        if old is not None and new_parent.get("managedBy") != old_parent.get("managedBy") and (
            "managedBy" in old_parent
        ):
            errors.append(f"{path}: Invalid value: \"string\": the managedBy field is immutable")
    return errors


def admit(plural: str, obj: dict[str, Any], old: dict[str, Any] | None = None, version: str = "v1") -> list[str]:
    """Prune unknown ``spec`` fields and default ``obj`` in place, and return the validation errors (empty when
    admitted), like the API server's decoding, defaulting and validation of a custom resource.

    ``old`` is the stored object on updates (for the immutability rules).
    """
    schema = openapi_schema(plural, version)
    if isinstance(obj.get("spec"), dict):
        prune(schema["properties"]["spec"], obj["spec"], "spec")
    apply_defaults(schema, obj)
    errors = [
        f"{_path(e) or '<root>'}: {e.message}"
        for e in sorted(_validator(plural, version).iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]
    return errors + list_map_errors(schema, obj) + _cel_errors(plural, obj, old)
