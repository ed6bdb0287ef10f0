"""Decisions about a task instance's RayJobs (pure): re-attach, replace or refuse, and what to clean up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.status import RayJobStatus

ON_EXISTING = ("reattach", "replace", "fail")
CLEANUP_POLICIES = ("on_failure", "always", "keep_failed")


@dataclass(frozen=True)
class ExistingPlan:
    """``attach``: the RayJob to wait for instead of creating one; ``delete``: RayJobs to remove first."""

    attach: str | None = None
    delete: list[str] = field(default_factory=list)


def _try_number(obj: Mapping[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("labels") or {}).get(c.TRY_NUMBER_LABEL, 0))
    except ValueError:
        return 0


def plan_existing(existing: Iterable[Mapping[str, Any]], desired_name: str, on_existing: str) -> ExistingPlan:
    """Decide what to do with RayJobs already created for this task instance.

    * a RayJob with the desired name (this very try) is always attached to, whatever its state;
    * a still-running RayJob of an earlier try: ``reattach`` waits for it (no second submission),
      ``replace`` deletes it and creates a new one, ``fail`` refuses;
    * finished RayJobs of earlier tries are left alone (KubeRay already removed their clusters).
    """
    if on_existing not in ON_EXISTING:
        raise InvalidParameterError("on_existing", on_existing, f"must be one of {list(ON_EXISTING)}")
    objs = list(existing)
    for obj in objs:
        if (obj.get("metadata") or {}).get("name") == desired_name and not (obj.get("metadata") or {}).get(
            "deletionTimestamp"
        ):
            return ExistingPlan(attach=desired_name)
    running = [
        o for o in objs
        if not RayJobStatus.from_object(o).is_terminal and not (o.get("metadata") or {}).get("deletionTimestamp")
    ]
    running.sort(key=_try_number, reverse=True)
    names = [(o.get("metadata") or {}).get("name", "") for o in running]
    if not names:
        return ExistingPlan()
    if on_existing == "reattach":
        return ExistingPlan(attach=names[0], delete=names[1:])
    if on_existing == "replace":
        return ExistingPlan(delete=names)
    raise RuntimeError(
        f"RayJob(s) {names} of an earlier try of this task instance are still running and on_existing='fail'"
    )


def delete_after(outcome: str, cleanup_policy: str) -> bool:
    """Whether the operator deletes the RayJob (and so its cluster) after an outcome.

    ``on_failure`` (default): delete unless it succeeded; after success KubeRay removes the cluster once
    ``ttlSecondsAfterFinished`` passes and the RayJob object stays as a record. ``always``: delete in every
    case. ``keep_failed``: keep a *failed* RayJob for inspection (its cluster still goes after the TTL);
    killed or timed-out jobs are always deleted because they would keep running.
    """
    if cleanup_policy == "always":
        return True
    if outcome == "success":
        return False
    return not (cleanup_policy == "keep_failed" and outcome == "failed")
