"""Map API requests to RBAC (apiGroup, resource, verb) and read the rules of deploy/rbac.yaml."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

RBAC_FILE = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
#: The Role the provider's own tasks (RayJobOperator, sensors, cluster operators, janitor) need.
RAYJOB_ROLE = "airflow-kuberay"
#: The Role the retraining pipeline's Spark step (cncf SparkKubernetesOperator) needs.
SPARK_ROLE = "airflow-kuberay-spark"
Rule = tuple[str, str, str]


def rbac_of(method: str, path: str, query: dict[str, str]) -> Rule | None:
    """(apiGroup, resource[/subresource], verb) of one request; None for discovery and non-resource URLs."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    if not rest:
        return None
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    if sub:
        resource = f"{resource}/{sub}"
    watch = query.get("watch", "").lower() in ("true", "1")
    verb = {
        "GET": "watch" if watch else ("get" if name else "list"),
        "POST": "create", "PUT": "update", "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }[method]
    return group, resource, verb


def requests_as_rbac(records: Iterable[Any]) -> set[Rule]:
    return {t for r in records if (t := rbac_of(r.method, r.path, r.query))}


def documents(path: Path = RBAC_FILE) -> list[dict[str, Any]]:
    """Every non-empty YAML document of the RBAC file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def rules_of(doc: dict[str, Any]) -> set[Rule]:
    """The (apiGroup, resource, verb) triples one Role grants."""
    return {(group, resource, verb) for rule in doc.get("rules") or [] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def allowed_rules(path: Path = RBAC_FILE, role: str = RAYJOB_ROLE) -> set[Rule]:
    """What the Role (or ClusterRole) named ``role`` grants; KeyError if the file has no such role."""
    roles = [doc for doc in documents(path) if doc.get("kind") in ("Role", "ClusterRole")
             and (doc.get("metadata") or {}).get("name") == role]
    if not roles:
        raise KeyError(f"{path} defines no Role named {role!r}")
    return set().union(*(rules_of(doc) for doc in roles))
