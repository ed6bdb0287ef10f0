"""Which provider-made RayJobs and RayClusters to sweep (pure). Used by RayJanitorOperator.

Rules, in order of precedence:

1. Only objects labelled ``app.kubernetes.io/managed-by=airflow-provider-kuberay`` are ever considered, and never
   one that is already being deleted.
2. An object whose Airflow task instance is still alive (running, deferred, queued, scheduled, up_for_retry,
   up_for_reschedule, restarting) is **never** swept, whatever its age. Neither is one whose task instance state
   could not be read (:data:`UNKNOWN_TI_STATE`): the janitor only deletes what it knows nobody waits for.
3. A RayJob is swept when its task instance is finished (success, failed, skipped, upstream_failed, removed) or
   when it is older than ``max_age``.
4. A RayCluster made for a RayJob (KubeRay copies the RayJob's labels onto it) is swept when that RayJob no longer
   exists; a standalone RayCluster (RayClusterCreateOperator) when it is older than ``max_age``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kuberay_provider import constants as c
from kuberay_provider.status import RayJobStatus

FINISHED_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
#: Task instance states in which someone may still wait for (or re-attach to) the object.
ACTIVE_TI_STATES = frozenset(
    {"running", "deferred", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "restarting"}
)
#: What ``ti_state`` returns (or what an exception in it means) when the state could not be read.
UNKNOWN_TI_STATE = "unknown"
PROTECTED_TI_STATES = ACTIVE_TI_STATES | {UNKNOWN_TI_STATE}


@dataclass(frozen=True)
class TaskInstanceRef:
    """The Airflow task instance an object was created by (from the provider's annotations and labels)."""

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


def state_name(state: Any) -> str | None:
    """A task instance state (enum, nested enum or string) as its lower-case value; None stays None."""
    while hasattr(state, "value"):
        state = state.value
    return None if state is None else str(state).lower()


def _created(obj: Mapping[str, Any]) -> dt.datetime | None:
    """``metadata.creationTimestamp`` as an aware datetime; None if absent or unreadable."""
    raw = (obj.get("metadata") or {}).get("creationTimestamp")
    if not raw or not isinstance(raw, str):
        return None
    try:
        created = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return created if created.tzinfo else created.replace(tzinfo=dt.UTC)


def is_managed(obj: Mapping[str, Any]) -> bool:
    """Whether this provider made the object (label ``app.kubernetes.io/managed-by``)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(c.MANAGED_BY_LABEL) == c.MANAGED_BY_VALUE


def task_instance_of(obj: Mapping[str, Any]) -> TaskInstanceRef | None:
    """The task instance that created an object, from the provider's annotations and labels."""
    meta = obj.get("metadata") or {}
    ann, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    if not all(k in ann for k in (c.DAG_ID_ANNOTATION, c.TASK_ID_ANNOTATION, c.RUN_ID_ANNOTATION)):
        return None
    try:
        map_index = int(labels.get(c.MAP_INDEX_LABEL, -1))
    except ValueError:  # "none": not mapped
        map_index = -1
    return TaskInstanceRef(ann[c.DAG_ID_ANNOTATION], ann[c.TASK_ID_ANNOTATION], ann[c.RUN_ID_ANNOTATION], map_index)


def _state_of(obj: Mapping[str, Any], ti_state: Callable[[TaskInstanceRef], str | None]) -> str | None:
    """The state of the object's task instance: None without one (or if Airflow has none), else its value."""
    ref = task_instance_of(obj)
    if ref is None:
        return None
    try:
        return state_name(ti_state(ref))
    except Exception:  # an unreadable state protects the object
        return UNKNOWN_TI_STATE


def plan_sweep(
    rayjobs: Iterable[Mapping[str, Any]],
    rayclusters: Iterable[Mapping[str, Any]],
    *,
    now: dt.datetime,
    max_age: dt.timedelta,
    ti_state: Callable[[TaskInstanceRef], str | None],
) -> list[Sweep]:
    """What to delete (see the module docstring for the rules).

    ``rayclusters`` must have been listed *before* ``rayjobs``: a RayJob created between the two lists would
    otherwise look absent and its new cluster would be swept as an orphan.
    """
    sweeps: list[Sweep] = []
    live_jobs: set[tuple[Any, Any]] = set()
    for job in rayjobs:
        meta = job.get("metadata") or {}
        if not is_managed(job):
            continue
        live_jobs.add((meta.get("namespace"), meta.get("name")))
        if meta.get("deletionTimestamp"):
            continue
        state = _state_of(job, ti_state)
        if state in PROTECTED_TI_STATES:
            continue
        created = _created(job)
        phase = RayJobStatus.from_object(job).phase.value
        if state in FINISHED_TI_STATES:
            reason = f"its task instance is {state} ({phase})"
        elif created and now - created > max_age:
            reason = f"older than {max_age} (created {created.isoformat()}, {phase})"
        else:
            continue
        sweeps.append(Sweep(c.RAYJOB_KIND, meta.get("namespace", ""), meta.get("name", ""), reason))
    for cluster in rayclusters:
        meta = cluster.get("metadata") or {}
        labels = meta.get("labels") or {}
        if not is_managed(cluster) or meta.get("deletionTimestamp"):
            continue
        if _state_of(cluster, ti_state) in PROTECTED_TI_STATES:
            continue
        parent = labels.get(c.ORIGINATED_FROM_NAME_LABEL)
        if parent and labels.get(c.ORIGINATED_FROM_CRD_LABEL) == c.RAYJOB_KIND:
            if (meta.get("namespace"), parent) not in live_jobs:
                sweeps.append(Sweep(c.RAYCLUSTER_KIND, meta.get("namespace", ""), meta.get("name", ""),
                                    f"its RayJob {parent} no longer exists"))
            continue
        created = _created(cluster)
        if created and now - created > max_age:
            sweeps.append(Sweep(c.RAYCLUSTER_KIND, meta.get("namespace", ""), meta.get("name", ""),
                                f"older than {max_age} (created {created.isoformat()})"))
    return sweeps
