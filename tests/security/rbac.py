"""Map API requests to RBAC (apiGroup, resource, verb) and read the rules of deploy/rbac.yaml."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

RBAC_FILE = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"


def rbac_of(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str] | None:
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


def requests_as_rbac(records: Iterable[Any]) -> set[tuple[str, str, str]]:
    return {t for r in records if (t := rbac_of(r.method, r.path, r.query))}


def allowed_rules(path: Path = RBAC_FILE) -> set[tuple[str, str, str]]:
    rules: set[tuple[str, str, str]] = set()
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") in ("Role", "ClusterRole"):
            for rule in doc.get("rules") or []:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            rules.add((group, resource, verb))
    return rules
