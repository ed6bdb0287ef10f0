"""What the Kubernetes API server does to a RayJob/RayCluster with KubeRay v1.7.0's CRD (pure, no I/O).

The vendored schemas (``crds/*.v1.schema.json.gz``: the ``v1`` ``openAPIV3Schema`` of KubeRay v1.7.0's CRDs,
extracted unchanged, see ``crds/PROVENANCE.md``) are structural schemas. On create the API server (1) *prunes* every field the
schema does not declare, silently, (2) applies the schema's ``default`` values and (3) validates types, formats,
enums, patterns, bounds, list-map keys and the CEL rules, answering HTTP 422. :func:`judge` does all three on a
copy, but turns (1) into an error: a misspelt field (a toleration's ``keyy``) would otherwise vanish and change the
meaning of what is left (``{operator: Exists}`` tolerates every taint).
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kuberay_provider import constants as c

CRD_DIR = Path(__file__).parent / "crds"
CRD_FILES = {c.RAYJOB_KIND: "ray.io_rayjobs.v1.schema.json.gz", c.RAYCLUSTER_KIND: "ray.io_rayclusters.v1.schema.json.gz"}
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MANAGED_BY_VALUES = ("ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue")
# ObjectMeta fields a client may send at the top level (the API server validates metadata itself).
_OBJECT_META = frozenset({
    "name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences", "uid",
    "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "managedFields", "selfLink",
})


@functools.cache
def openapi_schema(kind: str) -> dict[str, Any]:
    """The ``v1`` ``openAPIV3Schema`` of KubeRay v1.7.0's CRD for ``RayJob`` or ``RayCluster`` (parsed once, ~2 ms)."""
    with gzip.open(CRD_DIR / CRD_FILES[kind], "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def _type_ok(schema: dict[str, Any], value: Any) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    kind = schema.get("type")
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def _cel(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, str]]:
    """The CEL rules (``x-kubernetes-validations``) of KubeRay v1.7's CRDs, each written out by hand."""
    for entry in schema.get("x-kubernetes-validations") or ():
        rule = entry.get("rule", "")
        message = entry.get("message") or f"fails the rule {rule}"
        if rule == "self == oldSelf":
            continue  # immutability: only on updates; the provider creates
        if rule.startswith("self in ["):
            allowed = re.findall(r"'([^']*)'", rule)
            if value not in allowed:
                yield path, f"{message} (one of {allowed})"
        elif rule == "!(has(self.jobStatus) && has(self.jobDeploymentStatus))":
            if "jobStatus" in value and "jobDeploymentStatus" in value:
                yield path, message
        elif rule == "has(self.jobStatus) || has(self.jobDeploymentStatus)":
            if "jobStatus" not in value and "jobDeploymentStatus" not in value:
                yield path, message
        elif rule == "!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))":
            if ("onSuccess" in value or "onFailure" in value) and "deletionRules" in value:
                yield path, message
        elif rule == "((has(self.onSuccess) && has(self.onFailure)) || has(self.deletionRules))":
            if not (("onSuccess" in value and "onFailure" in value) or "deletionRules" in value):
                yield path, message
        else:  # pragma: no cover - a CRD upgrade with a rule not written out here must be noticed
            raise NotImplementedError(f"CEL rule {rule!r} at {path} is not implemented")


def _walk(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Default ``value`` in place and yield ``(path, problem)`` for every violation (pruning included)."""
    if not _type_ok(schema, value):
        expected = "an integer or a string" if schema.get("x-kubernetes-int-or-string") else {
            "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
            "array": "a list", "object": "a mapping"}.get(schema.get("type"), schema.get("type"))
        yield path, f"must be {expected} (the CRD's type; the API server answers HTTP 422)"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield path, f"must be one of {schema['enum']}"
    fmt = schema.get("format")
    if isinstance(value, int) and not isinstance(value, bool) and fmt in ("int32", "int64"):
        low, high = INT32 if fmt == "int32" else INT64
        if not low <= value <= high:
            yield path, f"must fit in {fmt}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield path, f"must be ≥ {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield path, f"must be ≤ {schema['maximum']}"
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            rule = "must be a Kubernetes quantity such as '2', '500m' or '4Gi'" if "KMGTPE" in schema["pattern"] \
                else f"must match {schema['pattern']}"
            yield path, rule
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield path, f"must be at most {schema['maxLength']} characters"
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield path, f"must be at least {schema['minLength']} characters"
        if fmt == "date-time" and not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", value):
            yield path, "must be an RFC 3339 date-time"
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key in [k for k, v in value.items() if v is None]:
            del value[key]  # the API server drops nulls of non-nullable fields (then defaults them)
        if props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for key in value:
                if key not in props:
                    yield _join(path, key), (
                        f"is not a field of KubeRay v1.7's schema here (known: {sorted(props)[:12]}"
                        f"{', …' if len(props) > 12 else ''}); the API server would silently drop it")
        elif props is None and not isinstance(extra, dict) and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for key in value:
                yield _join(path, key), "is not a field of KubeRay v1.7's schema here; the API server would drop it"
        for key, sub in (props or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key in schema.get("required") or ():
            if key not in value:
                yield _join(path, key), "is required"
        for key, item in value.items():
            if props and key in props:
                yield from _walk(props[key], item, _join(path, key))
            elif isinstance(extra, dict):
                yield from _walk(extra, item, f"{path}[{key!r}]")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield path, f"needs at least {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield path, f"takes at most {schema['maxItems']} items"
        items = schema.get("items") or {}
        for i, item in enumerate(value):
            yield from _walk(items, item, _join(path, i))
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            seen: dict[tuple, int] = {}
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    ident = tuple(item.get(k) for k in keys)
                    if ident in seen:
                        shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, ident, strict=True))
                        yield _join(path, i), f"duplicates entry [{seen[ident]}] ({shown}): entries must be unique"
                    seen.setdefault(ident, i)
        elif list_type == "set":
            for i, item in enumerate(value):
                if item in value[:i]:
                    yield _join(path, i), f"duplicates {item!r}: entries must be unique"
    if value is not None:
        yield from _cel(schema, value, path)


def judge(obj: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``(defaulted copy, problems)`` for a RayJob or RayCluster; the input is never changed.

    ``problems`` lists ``(path, rule)``: what the API server would refuse (HTTP 422) and what it would prune.
    """
    kind = obj.get("kind")
    schema = openapi_schema(kind if kind in CRD_FILES else c.RAYJOB_KIND)
    out = copy.deepcopy(obj)
    problems: list[tuple[str, str]] = []
    meta = out.get("metadata")
    if isinstance(meta, dict):
        problems += [(f"metadata.{k}", "is not an ObjectMeta field; the API server would drop it")
                     for k in meta if k not in _OBJECT_META]
    body = {k: v for k, v in out.items() if k != "metadata"}
    problems += list(_walk({**schema, "properties": {k: v for k, v in schema["properties"].items() if k != "metadata"}},
                           body, ""))
    out.update(body)
    return out, problems
