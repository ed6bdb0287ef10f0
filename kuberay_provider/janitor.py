"""Which provider-made RayJobs and RayClusters to sweep (pure). Used by RayJanitorOperator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kuberay_provider import constants as c
from kuberay_provider.status import RayJobStatus

FINISHED_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


@dataclass(frozen=True)
class TaskInstanceRef:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1


@dataclass(frozen=True)
class Sweep:
    """One object the janitor deletes, and why."""

    kind: str
    namespace: str
    name: str
    reason: str


def _created(obj: Mapping[str, Any]) -> dt.datetime | None:
    raw = (obj.get("metadata") or {}).get("creationTimestamp")
    if not raw:
        return None
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))


def task_instance_of(obj: Mapping[str, Any]) -> TaskInstanceRef | None:
    """The task instance that created an object, from the provider's annotations and labels."""
    meta = obj.get("metadata") or {}
    ann, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    if not all(k in ann for k in (c.DAG_ID_ANNOTATION, c.TASK_ID_ANNOTATION, c.RUN_ID_ANNOTATION)):
        return None
    try:
        map_index = int(labels.get(c.MAP_INDEX_LABEL, -1))
    except ValueError:
        map_index = -1
    return TaskInstanceRef(ann[c.DAG_ID_ANNOTATION], ann[c.TASK_ID_ANNOTATION], ann[c.RUN_ID_ANNOTATION], map_index)


def plan_sweep(
    rayjobs: Iterable[Mapping[str, Any]],
    rayclusters: Iterable[Mapping[str, Any]],
    *,
    now: dt.datetime,
    max_age: dt.timedelta,
    ti_state: Callable[[TaskInstanceRef], str | None],
) -> list[Sweep]:
    """Provider-labelled RayJobs whose task instance is finished or that are older than ``max_age``; RayClusters
    older than ``max_age`` or whose RayJob no longer exists. Objects being deleted are skipped."""
    sweeps: list[Sweep] = []
    live_jobs = set()
    for job in rayjobs:
        meta = job.get("metadata") or {}
        if (meta.get("labels") or {}).get(c.MANAGED_BY_LABEL) != c.MANAGED_BY_VALUE:
            continue
        live_jobs.add((meta.get("namespace"), meta.get("name")))
        if meta.get("deletionTimestamp"):
            continue
        created = _created(job)
        status = RayJobStatus.from_object(job)
        ref = task_instance_of(job)
        state = ti_state(ref) if ref else None
        if created and now - created > max_age:
            reason = f"older than {max_age} (created {created.isoformat()}, {status.phase.value})"
        elif state in FINISHED_TI_STATES:
            reason = f"its task instance is {state} ({status.phase.value})"
        else:
            continue
        sweeps.append(Sweep(c.RAYJOB_KIND, meta.get("namespace", ""), meta.get("name", ""), reason))
    for cluster in rayclusters:
        meta = cluster.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(c.MANAGED_BY_LABEL) != c.MANAGED_BY_VALUE or meta.get("deletionTimestamp"):
            continue
        parent = labels.get(c.ORIGINATED_FROM_NAME_LABEL)
        created = _created(cluster)
        if parent and labels.get(c.ORIGINATED_FROM_CRD_LABEL) == c.RAYJOB_KIND:
            if (meta.get("namespace"), parent) not in live_jobs:
                sweeps.append(Sweep(c.RAYCLUSTER_KIND, meta.get("namespace", ""), meta.get("name", ""),
                                    f"its RayJob {parent} no longer exists"))
            continue
        if created and now - created > max_age:
            sweeps.append(Sweep(c.RAYCLUSTER_KIND, meta.get("namespace", ""), meta.get("name", ""),
                                f"older than {max_age} (created {created.isoformat()})"))
    return sweeps
