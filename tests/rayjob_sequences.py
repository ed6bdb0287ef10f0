"""RayJob status sequences of KubeRay v1.7 (``rayjob-status-sequences.md`` §1-§9) as test data.

Each write is ``(jobDeploymentStatus, jobStatus, reason, expected_phase, extra_status_fields)``; ``None`` is the
document's ``·`` (field absent). ``NO_STATUS`` is a write with no ``status`` at all (just created). The
expected phases are written out by hand from the document's client guidance, not computed from the code.
"""

from __future__ import annotations

from typing import Any

P, R, S, OK, F = "pending", "running", "suspended", "succeeded", "failed"
NO_STATUS = "no-status"

NAME, NAMESPACE = "train-abc123def4-1", "ray"


def rayjob_object(
    dep: str | None,
    job: str | None = None,
    reason: str | None = None,
    *,
    rv: int | str = 1,
    name: str = NAME,
    namespace: str = NAMESPACE,
    deleting: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A RayJob object as the API returns it (``omitempty`` fields left out)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": str(rv)}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T00:10:00Z"
    obj: dict[str, Any] = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": meta, "spec": {}}
    if dep == NO_STATUS:
        return obj
    status: dict[str, Any] = {"failed": 0, "succeeded": 0}
    for key, value in (("jobDeploymentStatus", dep), ("jobStatus", job), ("reason", reason)):
        if value is not None:
            status[key] = value
    status.update(extra)
    obj["status"] = status
    return obj


def w(dep, job=None, reason=None, phase=R, **extra):
    return (dep, job, reason, phase, extra)


CLUSTER1 = {"rayClusterName": f"{NAME}-bcdfg", "jobId": f"{NAME}-hjklm", "startTime": "2026-11-22T00:00:00Z"}
CLUSTER2 = {"rayClusterName": f"{NAME}-npqrs", "jobId": f"{NAME}-tvwxz", "startTime": "2026-11-22T00:05:00Z"}
CLUSTER3 = {"rayClusterName": f"{NAME}-24567", "jobId": f"{NAME}-89bcd", "startTime": "2026-11-22T00:09:00Z"}
DASH = {"dashboardURL": f"{NAME}-bcdfg-head-svc.ray.svc.cluster.local:8265"}
END = {"endTime": "2026-11-22T00:20:00Z"}

#: name -> (writes, expected final phase, words the failure explanation must contain)
SEQUENCES: dict[str, tuple[list[tuple], str, tuple[str, ...]]] = {
    "s1-success-k8sjob": ([
        w(NO_STATUS, phase=P),
        w("Initializing", **CLUSTER1),
        w("Initializing", **CLUSTER1, rayClusterStatus={"state": "provisioning"}),
        w("Running", **CLUSTER1, **DASH),
        w("Running", "PENDING", **CLUSTER1, **DASH),
        w("Running", "RUNNING", **CLUSTER1, **DASH),
        w("Running", "SUCCEEDED", **CLUSTER1, **DASH),
        w("Complete", "SUCCEEDED", phase=OK, succeeded=1, **CLUSTER1, **DASH, **END),
    ], OK, ()),
    "s1-success-httpmode": ([
        w(NO_STATUS, phase=P),
        w("Initializing", **CLUSTER1),
        w("Running", **CLUSTER1, **DASH),
        w("Running", "RUNNING", **CLUSTER1, **DASH),
        w("Complete", "SUCCEEDED", phase=OK, succeeded=1, **CLUSTER1, **END),
    ], OK, ()),
    "s1-success-interactive": ([
        w(NO_STATUS, phase=P),
        w("Initializing", rayClusterName=CLUSTER1["rayClusterName"]),
        w("Waiting", rayClusterName=CLUSTER1["rayClusterName"], **DASH),
        w("Running", **CLUSTER1, **DASH),
        w("Running", "RUNNING", **CLUSTER1, **DASH),
        w("Complete", "SUCCEEDED", phase=OK, succeeded=1, **CLUSTER1, **END),
    ], OK, ()),
    "s2-app-failure": ([
        w("Initializing", **CLUSTER1),
        w("Running", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Running", "FAILED", **CLUSTER1),  # never decide on jobStatus alone
        w("Failed", "FAILED", "AppFailed", phase=F, failed=1, **CLUSTER1, **END,
          message="Job entrypoint command failed with exit code 1, last available logs ..."),
    ], F, ("entrypoint",)),
    "s2-sidecar-race": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "RUNNING", "SubmissionFailed", phase=F, failed=1, **END,
          message="Ray head pod container ray-job-submitter terminated with exit code 1: Error"),
    ], F, ("submitter",)),
    "s2-stopped-is-not-success": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Running", "STOPPED", **CLUSTER1),
        w("Complete", "STOPPED", phase=F, **CLUSTER1, **END),
    ], F, ("STOPPED",)),
    "s3-submitter-backoff": ([
        w("Initializing", **CLUSTER1),
        w("Running", **CLUSTER1),
        w("Failed", None, "SubmissionFailed", phase=F, failed=1, **END,
          message="Job submission has failed. Reason: BackoffLimitExceeded. "
                  "Message: Job has reached the specified backoff limit"),
    ], F, ("submitter",)),
    "s3-submitter-after-running": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "RUNNING", "SubmissionFailed", phase=F, failed=1, **END),
    ], F, ("submitter",)),
    "s3-submitter-exit0-not-found": ([
        w("Initializing", **CLUSTER1),
        w("Running", **CLUSTER1),
        w("Failed", None, "AppFailed", phase=F, failed=1, **END,
          message="Submitter completed but Ray job not found in RayCluster."),
    ], F, ("entrypoint",)),
    "s3-grace-period": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "FAILED", "JobDeploymentStatusTransitionGracePeriodExceeded", phase=F, failed=1, **END),
    ], F, ("grace period",)),
    "s3-httpmode-status-check-timeout": ([
        w("Initializing", **CLUSTER1),
        w("Running", **CLUSTER1, jobStatusCheckFailureStartTime="2026-11-22T00:01:00Z"),
        w("Failed", None, "JobStatusCheckTimeoutExceeded", phase=F, failed=1, **END,
          message="Job status checks have been failing since ...; exceeded timeout of 300s"),
    ], F, ("dashboard",)),
    "s4-deadline-initializing": ([
        w("Initializing", **CLUSTER1),
        w("Failed", None, "DeadlineExceeded", phase=F, failed=1, **END),
    ], F, ("activeDeadlineSeconds",)),
    "s4-deadline-running": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "RUNNING", "DeadlineExceeded", phase=F, failed=1, **END,
          message="The RayJob has passed the activeDeadlineSeconds. StartTime: 2026-11-22T00:00:00Z. ActiveDeadlineSeconds: 60"),
    ], F, ("activeDeadlineSeconds",)),
    "s4-prerunning-deadline": ([
        w("Initializing", **CLUSTER1),
        w("Failed", None, "PreRunningDeadlineExceeded", phase=F, failed=1, **END),
    ], F, ("preRunningDeadlineSeconds",)),
    "s4-prerunning-deadline-waiting": ([
        w("Initializing", rayClusterName=CLUSTER1["rayClusterName"]),
        w("Waiting", rayClusterName=CLUSTER1["rayClusterName"]),
        w("Failed", None, "PreRunningDeadlineExceeded", phase=F, failed=1, **END),
    ], F, ("preRunningDeadlineSeconds",)),
    "s5-retries-then-success": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Running", "FAILED", **CLUSTER1),
        w("Retrying", "FAILED", "AppFailed", failed=1, **CLUSTER1, message="Job entrypoint command failed"),
        w(None, phase=P, failed=1),  # everything cleared
        w("Initializing", failed=1, **CLUSTER2),
        w("Running", "RUNNING", failed=1, **CLUSTER2),
        w("Retrying", "FAILED", "AppFailed", failed=2, **CLUSTER2),
        w(None, phase=P, failed=2),
        w("Initializing", failed=2, **CLUSTER3),
        w("Running", "RUNNING", failed=2, **CLUSTER3),
        w("Running", "SUCCEEDED", failed=2, **CLUSTER3),
        w("Complete", "SUCCEEDED", phase=OK, succeeded=1, failed=2, **CLUSTER3, **END),
    ], OK, ()),
    "s5-retries-exhausted": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Retrying", "FAILED", "AppFailed", failed=1, **CLUSTER1),
        w(None, phase=P, failed=1),
        w("Initializing", failed=1, **CLUSTER2),
        w("Running", "RUNNING", failed=1, **CLUSTER2),
        w("Retrying", "FAILED", "AppFailed", failed=2, **CLUSTER2),
        w(None, phase=P, failed=2),
        w("Initializing", failed=2, **CLUSTER3),
        w("Running", "RUNNING", failed=2, **CLUSTER3),
        w("Failed", "FAILED", "AppFailed", phase=F, failed=3, **CLUSTER3, **END),
    ], F, ("entrypoint",)),
    "s6-created-suspended": ([
        w("Initializing", **CLUSTER1),
        w("Suspending"),
        w("Suspended", phase=S),
        w(None, phase=P),
        w("Initializing", **CLUSTER2),
        w("Running", "RUNNING", **CLUSTER2),
        w("Complete", "SUCCEEDED", phase=OK, succeeded=1, **CLUSTER2, **END),
    ], OK, ()),
    "s6-suspend-while-running": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Suspending", "RUNNING", **CLUSTER1),
        w("Suspended", phase=S),
        w(None, phase=P),
        w("Initializing", **CLUSTER2),
        w("Running", "RUNNING", **CLUSTER2),
        w("Complete", "SUCCEEDED", phase=OK, succeeded=1, **CLUSTER2, **END),
    ], OK, ()),
    "s6-suspend-without-shutdown": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("ValidationFailed", "RUNNING", "ValidationFailed", phase=F,
          message="The RayJob spec is invalid: a RayJob with shutdownAfterJobFinishes set to false cannot be suspended"),
    ], F, ("rejected",)),
    "s7-cluster-lost-resubmitted": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1, jobStatusCheckFailureStartTime="2026-11-22T00:03:00Z"),
        w("Running", "PENDING", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("Complete", "SUCCEEDED", phase=OK, succeeded=1, **CLUSTER1, **END),
    ], OK, ()),
    "s7-cluster-lost-check-timeout": ([
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "RUNNING", "JobStatusCheckTimeoutExceeded", phase=F, failed=1, **END),
    ], F, ("dashboard",)),
    "s7-cluster-lost-submitter-exhausted": ([
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "RUNNING", "SubmissionFailed", phase=F, failed=1, **END),
    ], F, ("submitter",)),
    "s7-cluster-lost-grace": ([
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "FAILED", "JobDeploymentStatusTransitionGracePeriodExceeded", phase=F, failed=1, **END),
    ], F, ("grace period",)),
    "s7-sidecar-head-pod-not-found": ([
        w("Running", "RUNNING", **CLUSTER1),
        w("Failed", "RUNNING", "AppFailed", phase=F, failed=1, message="Ray head pod not found.", **END),
    ], F, ("entrypoint",)),
    "s7-selector-deadline": ([
        w("Initializing", rayClusterName="shared"),
        w("Running", "RUNNING", rayClusterName="shared"),
        w("Failed", "RUNNING", "DeadlineExceeded", phase=F, failed=1, rayClusterName="shared", **END),
    ], F, ("activeDeadlineSeconds",)),
    "s8b-validation-failed": ([
        w(NO_STATUS, phase=P),
        w("ValidationFailed", None, "ValidationFailed", phase=F,
          message="The RayJob metadata is invalid: RayJob name should be no more than 47 characters"),
    ], F, ("rejected",)),
    "s8c-edited-invalid-mid-run": ([
        w("Initializing", **CLUSTER1),
        w("Running", "RUNNING", **CLUSTER1),
        w("ValidationFailed", "RUNNING", "ValidationFailed", phase=F, **CLUSTER1),
    ], F, ("rejected",)),
    "s8-unknown-submission-mode-never-ends": ([
        w("Initializing", **CLUSTER1),
        w("Running", **CLUSTER1),
    ], R, ()),
    "newer-operator-unknown-deployment-status": ([
        w("Initializing", **CLUSTER1),
        w("Hibernating", "RUNNING", "SomethingNew", **CLUSTER1),
        w("Hibernating", "RUNNING", "SomethingNew", **CLUSTER1),
    ], R, ()),
}


def sequence_objects(writes: list[tuple]) -> list[tuple[dict[str, Any], str]]:
    """``[(object, expected_phase)]`` with increasing resourceVersions."""
    return [
        (rayjob_object(dep, job, reason, rv=100 + i, **extra), phase)
        for i, (dep, job, reason, phase, extra) in enumerate(writes)
    ]
