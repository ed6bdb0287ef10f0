"""The meaning of a RayJob's status, written once (pure; no I/O).

Every component that waits on a RayJob (the operator in sync mode, the trigger, the sensors) reads status
through :class:`RayJobStatus` so that "terminal", "success" and the failure explanation mean the same
everywhere. The rules follow KubeRay v1.7 (see ``rayjob-semantics.md``):

* done      ⇔ ``jobDeploymentStatus`` ∈ {Complete, Failed, ValidationFailed}
* success   ⇔ ``jobDeploymentStatus == Complete`` **and** ``jobStatus == SUCCEEDED``
* everything else (absent, Initializing, Waiting, Running, Retrying, Suspending, Suspended, or an
  unknown value from a newer operator) is "not done yet" and never crashes a wait.
* queued    ⇔ not done **and** (``spec.suspend`` is true **or** ``jobDeploymentStatus == Suspended``): a RayJob sent
  to a Kueue queue is created suspended and stays so until Kueue admits it (sets ``suspend: false``); a preempted
  one is suspended again. KubeRay's deadlines count from the ``startTime`` of the admitted attempt.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kuberay_provider.constants import KUEUE_QUEUE_LABEL

TERMINAL_DEPLOYMENT_STATUSES = frozenset({"Complete", "Failed", "ValidationFailed"})
TERMINAL_RAY_JOB_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})

#: Human explanations of KubeRay's failure reasons (``status.reason``).
REASON_EXPLANATIONS: dict[str, str] = {
    "AppFailed": "the Ray job failed (the entrypoint exited with an error)",
    "SubmissionFailed": "the job submitter failed (the Ray job could not be submitted or followed)",
    "DeadlineExceeded": "activeDeadlineSeconds passed before the job finished",
    "PreRunningDeadlineExceeded": (
        "the Ray cluster did not become ready within preRunningDeadlineSeconds "
        "(image pull error, unschedulable pods or quota?)"
    ),
    "JobDeploymentStatusTransitionGracePeriodExceeded": (
        "the submitter and the Ray job disagreed for longer than KubeRay's grace period"
    ),
    "JobStatusCheckTimeoutExceeded": "the Ray dashboard could not be reached for longer than KubeRay's timeout",
    "ValidationFailed": "KubeRay rejected the RayJob spec",
}


class Phase(enum.StrEnum):
    """Where a RayJob is in its life, as far as a waiting client is concerned."""

    PENDING = "pending"  # created, not yet reconciled (no status)
    RUNNING = "running"  # in progress (Initializing, Running, Retrying, Waiting, Suspending …)
    SUSPENDED = "suspended"  # paused by a queue (Kueue); not done
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


@dataclass(frozen=True)
class RayJobStatus:
    """A snapshot of ``RayJob.status`` with the provider's single interpretation of it."""

    name: str
    namespace: str
    deployment_status: str | None = None
    job_status: str | None = None
    reason: str | None = None
    message: str | None = None
    job_id: str | None = None
    cluster_name: str | None = None
    dashboard_url: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    failed: int = 0
    succeeded: int = 0
    resource_version: str | None = None
    deleting: bool = False
    suspend: bool = False
    queue_name: str | None = None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> RayJobStatus:
        """Read a RayJob object (a dict as returned by the API)."""
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            deployment_status=status.get("jobDeploymentStatus") or None,
            job_status=status.get("jobStatus") or None,
            reason=status.get("reason") or None,
            message=status.get("message") or None,
            job_id=status.get("jobId") or None,
            cluster_name=status.get("rayClusterName") or None,
            dashboard_url=status.get("dashboardURL") or None,
            start_time=status.get("startTime") or None,
            end_time=status.get("endTime") or None,
            failed=int(status.get("failed") or 0),
            succeeded=int(status.get("succeeded") or 0),
            resource_version=meta.get("resourceVersion"),
            deleting=bool(meta.get("deletionTimestamp")),
            suspend=spec.get("suspend") is True,
            queue_name=(meta.get("labels") or {}).get(KUEUE_QUEUE_LABEL) or None,
        )

    @property
    def phase(self) -> Phase:
        if self.deployment_status is None:
            return Phase.PENDING
        if self.deployment_status in TERMINAL_DEPLOYMENT_STATUSES:
            if self.deployment_status == "Complete" and self.job_status == "SUCCEEDED":
                return Phase.SUCCEEDED
            return Phase.FAILED
        if self.deployment_status == "Suspended":
            return Phase.SUSPENDED
        return Phase.RUNNING

    @property
    def is_terminal(self) -> bool:
        return self.phase.is_terminal

    @property
    def is_queued(self) -> bool:
        """Waiting for admission (Kueue): suspended, not done. No cluster exists and no deadline runs yet."""
        return not self.is_terminal and (self.suspend or self.deployment_status == "Suspended")

    @property
    def is_success(self) -> bool:
        return self.phase is Phase.SUCCEEDED

    @property
    def change_key(self) -> tuple[Any, ...]:
        """What a waiting client reports when it changes."""
        return (self.state_key, self.cluster_name, self.deleting, self.is_queued)

    @property
    def state_key(self) -> tuple[str | None, str | None, str | None]:
        """The triple KubeRay writes status for: (jobDeploymentStatus, jobStatus, reason)."""
        return (self.deployment_status, self.job_status, self.reason)

    def describe(self) -> str:
        """One line a person can act on: what state, and for failures why."""
        head = f"RayJob {self.namespace}/{self.name}: "
        if self.is_queued:
            queue = f" in LocalQueue {self.queue_name!r}" if self.queue_name else ""
            head += f"queued{queue} (suspended until Kueue admits it; KubeRay's deadlines start then), "
        head += (f"jobDeploymentStatus={self.deployment_status or '(none)'}, "
                 f"jobStatus={self.job_status or '(none)'}")
        if self.reason:
            head += f", reason={self.reason}"
        why = self.failure_explanation()
        if why:
            head += f": {why}"
        if self.message:
            head += f". KubeRay says: {self.message}"
        return head

    def failure_explanation(self) -> str | None:
        """Why this RayJob is not a success, or ``None`` while it is running or when it succeeded."""
        if self.phase is not Phase.FAILED:
            return None
        if self.deployment_status == "Complete":
            if self.job_status == "STOPPED":
                return "the Ray job was stopped (jobStatus STOPPED), which is not a success"
            return f"the deployment completed with jobStatus {self.job_status or '(none)'}, which is not SUCCEEDED"
        if self.reason in REASON_EXPLANATIONS:
            return REASON_EXPLANATIONS[self.reason]
        if self.deployment_status == "ValidationFailed":
            return REASON_EXPLANATIONS["ValidationFailed"]
        return f"the deployment failed (reason {self.reason or 'not given'})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for XCom and trigger events)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RayJobStatus:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


def raycluster_is_ready(obj: Mapping[str, Any]) -> bool:
    """Whether a RayCluster reports ``status.state == ready``."""
    return ((obj.get("status") or {}).get("state") or "").lower() == "ready"


@dataclass(frozen=True)
class RayClusterStatus:
    """A snapshot of ``RayCluster.status``; a wait for a cluster is "done" once it is ready."""

    name: str
    namespace: str
    state: str | None = None
    ready_workers: int = 0
    resource_version: str | None = None
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> RayClusterStatus:
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            state=status.get("state") or None,
            ready_workers=int(status.get("readyWorkerReplicas") or 0),
            resource_version=meta.get("resourceVersion"),
            deleting=bool(meta.get("deletionTimestamp")),
        )

    @property
    def is_terminal(self) -> bool:
        return (self.state or "").lower() == "ready"

    @property
    def change_key(self) -> tuple[Any, ...]:
        return (self.state, self.ready_workers, self.deleting)

    def describe(self) -> str:
        return f"RayCluster {self.namespace}/{self.name}: state={self.state or '(none)'}, ready workers={self.ready_workers}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
