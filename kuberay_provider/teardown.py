"""What is left of Ray clusters (pure), for the teardown sensor and the janitor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def leftovers(clusters: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """Human-readable list of RayClusters and Ray pods that still exist (empty: all gone)."""
    left = []
    for obj in clusters:
        meta = obj.get("metadata") or {}
        state = (obj.get("status") or {}).get("state") or "unknown"
        deleting = " (deleting)" if meta.get("deletionTimestamp") else ""
        left.append(f"RayCluster {meta.get('namespace')}/{meta.get('name')} state={state}{deleting}")
    seen = set()
    for pod in pods:
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        if key in seen:
            continue
        seen.add(key)
        phase = (pod.get("status") or {}).get("phase") or "unknown"
        left.append(f"Pod {meta.get('namespace')}/{meta.get('name')} phase={phase}")
    return left
