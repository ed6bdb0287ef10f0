"""A task's RayJob from creation to cleanup, in one place: create → re-attach → wait → outcome → cleanup.

The pure decisions (:func:`plan_existing`, :func:`delete_after`, :func:`cleanup_decision`) and the steps that
perform them with a hook (:func:`start_rayjob`, :func:`wait_sync`, :func:`finish`) are used by
:class:`~kuberay_provider.operators.rayjob.RayJobOperator` (``execute``, ``execute_complete``, ``on_kill``), the
cluster operators and the janitor. Deleting is one function, :func:`delete` (:func:`delete_rayjob`), with its
async twin :func:`delete_async` (:func:`delete_rayjob_async`) for triggers.

Importing this module is cheap (no Kubernetes client): the hooks are passed in.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.status import RayJobStatus

if TYPE_CHECKING:
    from kuberay_provider.hooks.kuberay import AsyncKubeRayHook, KubeRayHook

ON_EXISTING = ("reattach", "replace", "fail")
CLEANUP_POLICIES = ("on_failure", "always", "keep_failed")
LOG_DRAIN_SECONDS = 15.0
_log = logging.getLogger(__name__)


# -- re-attach ----------------------------------------------------------------------------------------------
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


# -- cleanup decision (pure) --------------------------------------------------------------------------------
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


_API_ERROR = re.compile(r"Kubernetes API error (\d{3})")


def api_status_of(exc: BaseException) -> int | None:
    """The HTTP status of a non-retryable API error raised while waiting (``RayJobWaitError``), else None."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    match = _API_ERROR.search(str(exc))
    return int(match.group(1)) if match else None


def wait_error_event(exc: BaseException, name: str, namespace: str, log_tail: Iterable[str] = ()) -> dict[str, Any]:
    """The outcome event for a wait that ended in an exception (the sync wait and the trigger build the same).

    A non-retryable Kubernetes API error (401, 403, …) says nothing about the RayJob: it may still be running
    (``job_may_be_running``), so :func:`cleanup_decision` keeps it.
    """
    from kuberay_provider.outcome import error_event

    event = error_event(f"{type(exc).__name__}: {exc}", log_tail)
    status = api_status_of(exc) if type(exc).__name__ == "RayJobWaitError" else None
    event.update(name=name, namespace=namespace, api_status=status, job_may_be_running=status is not None)
    return event


def _job_may_be_running(event: Mapping[str, Any]) -> bool:
    if event.get("job_may_be_running"):
        return True
    # A trigger that reports the exception text only: RayJobWaitError is raised for non-retryable API errors.
    return event.get("status") == "error" and str(event.get("message") or "").startswith("RayJobWaitError:")


@dataclass(frozen=True)
class Cleanup:
    """What to do with the RayJob after an outcome: ``delete`` it or not, and ``note`` for the task log/error."""

    delete: bool
    note: str = ""


def cleanup_decision(event: Mapping[str, Any], cleanup_policy: str, *, name: str, namespace: str) -> Cleanup:
    """The one cleanup decision after a wait (see :func:`delete_after` for the policies).

    * the RayJob was deleted meanwhile: nothing to delete;
    * the wait failed on a non-retryable API error (401/403…): the job's state is unknown and it may be healthy,
      so it is kept and the note says so (a retry re-attaches to it; the janitor sweeps it once the task instance
      is finished);
    * otherwise :func:`delete_after` decides.
    """
    kind = str(event.get("status") or "error")
    if kind == "deleted":
        return Cleanup(False)
    if _job_may_be_running(event):
        api = event.get("api_status")
        return Cleanup(False, (
            f"The RayJob {namespace}/{name} may still be running: the Kubernetes API refused the wait"
            f"{f' (HTTP {api})' if api else ''}, so it was NOT deleted. Fix the connection's credentials or RBAC; "
            "a retry of this task re-attaches to the RayJob, or delete it yourself "
            f"(kubectl delete rayjob -n {namespace} {name}); the janitor sweeps it once this task instance is finished."
        ))
    if delete_after(kind, cleanup_policy):
        return Cleanup(True, f"outcome {kind}, cleanup_policy={cleanup_policy}")
    return Cleanup(False)


# -- deletion: the one function ------------------------------------------------------------------------------
def delete(hook: KubeRayHook, kind: str, name: str, namespace: str, *, reason: str,
           log: logging.Logger | Any | None = None, raise_errors: bool = False) -> bool:
    """Delete one RayJob or RayCluster (foreground: KubeRay stops the job and removes the cluster and its pods).

    Returns True if it was deleted, False if it was already gone (or, unless ``raise_errors``, could not be
    deleted: the failure is logged and the janitor removes it later).
    """
    log = log or _log
    try:
        deleted = hook.delete_object(kind, name, namespace)
    except Exception as exc:
        return _delete_failed(exc, log, kind, name, namespace, reason, raise_errors)
    _log_deleted(log, kind, name, namespace, reason, deleted)
    return deleted


def _delete_failed(exc: Exception, log: Any, kind: str, name: str, namespace: str, reason: str,
                   raise_errors: bool) -> bool:
    """What a failed delete does, sync or async: raise, or log it for the janitor and report False."""
    if raise_errors:
        raise exc
    log.error("Could not delete %s %s/%s (%s): %s; the janitor will remove it", kind, namespace, name, reason, exc)
    return False


async def delete_async(hook: AsyncKubeRayHook, kind: str, name: str, namespace: str, *, reason: str,
                       log: logging.Logger | Any | None = None, raise_errors: bool = False) -> bool:
    """Async twin of :func:`delete` (for triggers: ``on_kill`` and ``cleanup``)."""
    log = log or _log
    try:
        deleted = await hook.delete_object(kind, name, namespace)
    except Exception as exc:
        return _delete_failed(exc, log, kind, name, namespace, reason, raise_errors)
    _log_deleted(log, kind, name, namespace, reason, deleted)
    return deleted


def _log_deleted(log: Any, kind: str, name: str, namespace: str, reason: str, deleted: bool) -> None:
    if not deleted:
        log.info("%s %s/%s was already gone (%s)", kind, namespace, name, reason)
    elif kind == c.RAYJOB_KIND:
        log.info("Deleted RayJob %s/%s (%s); KubeRay stops the job and removes its cluster", namespace, name, reason)
    else:
        log.info("Deleted %s %s/%s (%s)", kind, namespace, name, reason)


def delete_rayjob(hook: KubeRayHook, name: str, namespace: str, reason: str, *,
                  log: logging.Logger | Any | None = None, raise_errors: bool = False) -> bool:
    """Delete a RayJob (and so its cluster): :func:`delete` for ``kind=RayJob``."""
    return delete(hook, c.RAYJOB_KIND, name, namespace, reason=reason, log=log, raise_errors=raise_errors)


async def delete_rayjob_async(hook: AsyncKubeRayHook, name: str, namespace: str, reason: str, *,
                              log: logging.Logger | Any | None = None) -> bool:
    """Async twin of :func:`delete_rayjob`, for the trigger's ``on_kill``/``cleanup``."""
    return await delete_async(hook, c.RAYJOB_KIND, name, namespace, reason=reason, log=log)


# -- create / re-attach -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Started:
    """The RayJob a task waits for: ``reattached`` to one of an earlier try, or ``created`` now."""

    name: str
    namespace: str
    reattached: bool
    created: bool


def start_rayjob(hook: KubeRayHook, manifest: Mapping[str, Any], *, task_instance_key: str, on_existing: str,
                 log: logging.Logger | Any | None = None) -> Started:
    """Create the task's RayJob, or re-attach to a still-running one of an earlier try (``on_existing``)."""
    from kuberay_provider.naming import label_selector

    log = log or _log
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    existing = hook.list_rayjobs(namespace, label_selector({c.TASK_INSTANCE_LABEL: task_instance_key}))
    plan = plan_existing(existing, name, on_existing)
    for stale in plan.delete:
        delete_rayjob(hook, stale, namespace, f"a still-running RayJob of an earlier try, on_existing={on_existing}",
                      log=log, raise_errors=True)
    if plan.attach:
        if plan.attach != name:
            log.info("Re-attaching to RayJob %s/%s instead of submitting a second job", namespace, plan.attach)
        else:
            log.info("Found existing RayJob %s/%s", namespace, name)
        return Started(plan.attach, namespace, reattached=plan.attach != name, created=False)
    _, created = hook.create_rayjob(dict(manifest))
    log.info("%s RayJob %s/%s", "Created" if created else "Found existing", namespace, name)
    return Started(name, namespace, reattached=False, created=created)


# -- wait ---------------------------------------------------------------------------------------------------
def wait_sync(hook: KubeRayHook, name: str, namespace: str, *, deadline: float | None, log_tail_lines: int,
              stream_logs: bool, emit_line: Callable[[str], None],
              on_status: Callable[[RayJobStatus], None] | None = None,
              log: logging.Logger | Any | None = None) -> dict[str, Any]:
    """Wait in the worker with the same watch logic as the trigger; returns the same outcome event."""
    from kuberay_provider.errors import RayJobGoneError
    from kuberay_provider.hooks.kuberay import RayJobWaitTimeout
    from kuberay_provider.hooks.pods import LogTail
    from kuberay_provider.hooks.watching import Finished, Gone, RayJobWaiter, TimedOut
    from kuberay_provider.outcome import outcome_event, succeeded

    log = log or _log
    tail = LogTail(log_tail_lines)
    stop = threading.Event()
    follower = None
    if stream_logs:
        follower = threading.Thread(target=hook.stream_driver_log, args=(name, namespace, tail, emit_line, stop),
                                    name=f"driver-log-{name}", daemon=True)
        follower.start()
    waiter = RayJobWaiter(name, namespace, timeout=None if deadline is None else max(0.0, deadline - time.time()))
    outcome: Any
    try:
        outcome = Finished(hook.wait_for_rayjob(name, namespace, on_status=on_status, waiter=waiter))
    except RayJobWaitTimeout as exc:
        outcome = TimedOut(exc.last)
    except RayJobGoneError:
        outcome = Gone(waiter.last)
    except Exception as exc:
        return wait_error_event(exc, name, namespace, tail.lines)
    finally:
        stop.set()
        if follower:
            follower.join(LOG_DRAIN_SECONDS)
    ok = succeeded(outcome)
    if not tail.lines and not ok:
        try:
            hook.read_driver_log_tail(name, namespace, tail)
        except Exception as exc:
            log.warning("Could not read the driver log tail: %s", exc)
    event = outcome_event(outcome, name, namespace, log_tail=tail.lines)
    event.update(name=name, namespace=namespace)
    return event


def with_diagnostics(event: Mapping[str, Any], hook: Callable[[], KubeRayHook]) -> dict[str, Any]:
    """A failed wait's event with why it failed: pod problems, the submitter Job, Warning events
    (:meth:`~kuberay_provider.hooks.kuberay.KubeRayHook.diagnose`).

    Read once, where the task completes -- in the worker, for a synchronous and a deferred wait alike -- and before
    any cleanup deletes what they describe (the cluster outlives its job by ``ttlSecondsAfterFinished``, 60 s by
    default; the submitter Job and the events outlive the cluster). The trigger reports only the outcome and the
    log tail: a wave of a thousand failures must not cost the shared triggerer three reads each.

    :param event: an outcome event (``outcome.outcome_event``); returned as it is for a
        success, without a status to diagnose, or with diagnostics already in it.
    :param hook: makes the hook to read with (called only if there is something to diagnose).
    """
    from kuberay_provider.outcome import SUCCESS

    if event.get("status") == SUCCESS or not event.get("rayjob") or event.get("diagnostics"):
        return dict(event)
    return {**event, "diagnostics": hook().diagnose(RayJobStatus.from_dict(event["rayjob"]))}


# -- outcome + cleanup --------------------------------------------------------------------------------------
def finish(event: Mapping[str, Any], *, name: str, namespace: str, cleanup_policy: str,
           hook: Callable[[], KubeRayHook], log: logging.Logger | Any | None = None) -> Cleanup:
    """Apply :func:`cleanup_decision` to a finished wait: delete the RayJob if it says so. Returns the decision
    (its ``note`` belongs in the failure message)."""
    log = log or _log
    decision = cleanup_decision(event, cleanup_policy, name=name, namespace=namespace)
    if decision.delete and name:
        delete_rayjob(hook(), name, namespace, decision.note, log=log)
    elif decision.note:
        log.warning("%s", decision.note)
    return decision
