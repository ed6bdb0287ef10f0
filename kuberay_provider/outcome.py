"""How a finished wait is reported (pure), shared by the operator's sync path and the trigger.

An *outcome event* is the dict a :class:`~kuberay_provider.triggers.rayjob.RayJobTrigger` yields and the
synchronous wait builds the same way, so ``execute_complete`` handles both identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kuberay_provider.hooks.watching import Finished, Gone, TimedOut
from kuberay_provider.status import RayJobStatus

SUCCESS, FAILED, DELETED, TIMEOUT, ERROR = "success", "failed", "deleted", "timeout", "error"


def final_status(outcome: Finished | Gone | TimedOut) -> RayJobStatus | None:
    """The last status a waiter saw (the terminal one when it finished)."""
    return outcome.status if isinstance(outcome, Finished) else outcome.last


def succeeded(outcome: Finished | Gone | TimedOut) -> bool:
    """Whether a wait ended in the provider's one success rule (Complete + SUCCEEDED)."""
    return isinstance(outcome, Finished) and outcome.status.is_success


def outcome_event(
    outcome: Finished | Gone | TimedOut,
    name: str,
    namespace: str,
    *,
    diagnostics: Iterable[str] = (),
    log_tail: Iterable[str] = (),
) -> dict[str, Any]:
    """The event for a waiter's final action."""
    status = final_status(outcome)
    if isinstance(outcome, Finished):
        kind = SUCCESS if status.is_success else FAILED
        message = status.describe()
    elif isinstance(outcome, Gone):
        kind, message = DELETED, f"RayJob {namespace}/{name} was deleted while the task waited for it"
    else:
        kind, message = TIMEOUT, f"RayJob {namespace}/{name} did not finish before the task's deadline"
    return {
        "status": kind,
        "message": message,
        "rayjob": status.to_dict() if status else None,
        "diagnostics": list(diagnostics),
        "log_tail": list(log_tail),
    }


def error_event(message: str, log_tail: Iterable[str] = ()) -> dict[str, Any]:
    return {"status": ERROR, "message": message, "rayjob": None, "diagnostics": [], "log_tail": list(log_tail)}


def failure_report(event: Mapping[str, Any]) -> str:
    """The text a failed task shows: what happened, why, pod problems, and the driver log tail."""
    parts = [str(event.get("message") or "RayJob failed")]
    diagnostics = event.get("diagnostics") or []
    if diagnostics:
        parts.append("Diagnostics:\n  " + "\n  ".join(diagnostics))
    tail = event.get("log_tail") or []
    if tail:
        parts.append(f"Last {len(tail)} lines of the driver log:\n  " + "\n  ".join(tail))
    else:
        parts.append("No driver log was available (the job may not have started).")
    return "\n".join(parts)


def xcom_summary(status: RayJobStatus | None, *, name: str, namespace: str, reattached: bool = False) -> dict[str, Any]:
    """What the operator returns (and so pushes to XCom)."""
    s = status or RayJobStatus(name=name, namespace=namespace)
    return {
        "name": s.name or name,
        "namespace": s.namespace or namespace,
        "job_id": s.job_id,
        "cluster_name": s.cluster_name,
        "dashboard_url": s.dashboard_url,
        "job_status": s.job_status,
        "deployment_status": s.deployment_status,
        "start_time": s.start_time,
        "end_time": s.end_time,
        "reattached": reattached,
    }
