"""The RayJob state machine of KubeRay v1.7 (``rayjob_controller.go``), driving real local Ray clusters.

Status is written through ``/status`` (PUT, resourceVersion-checked) only when a tracked field changes:
``jobDeploymentStatus``, ``jobStatus``, ``jobStatusCheckFailureStartTime`` or the mirrored ``rayClusterStatus``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import shlex
from typing import Any

from kuberay_provider.local import jobapi
from kuberay_provider.local.apiserver import now_iso, random_suffix
from kuberay_provider.local.kube import Kube, KubeError, owner_reference
from kuberay_provider.local.names import (
    ORIGINATED_FROM_CRD_LABEL,
    ORIGINATED_FROM_NAME_LABEL,
    RAY_CLUSTER_LABEL,
    RAY_NODE_TYPE_LABEL,
    RAYJOB_FINALIZER,
    SUBMITTER_CONTAINER,
)
from kuberay_provider.local.rayruntime import RayRuntime
from kuberay_provider.local.validation import validate_rayjob

JSON = dict[str, Any]
log = logging.getLogger(__name__)

COMPONENT = "ray-job-controller"
KUBERAY_MANAGER = "ray.io/kuberay-operator"
STATUS_CHECK_TIMEOUT_SECONDS = 300.0
TRANSITION_GRACE_SECONDS = 300.0
SUBMITTER_FINISHED_TIMEOUT_SECONDS = 30.0
TRACKED = ("jobDeploymentStatus", "jobStatus", "jobStatusCheckFailureStartTime", "rayClusterStatus")
NOT_RETRIED = ("DeadlineExceeded", "JobStatusCheckTimeoutExceeded")
CLEARED_ON_RESET = ("rayClusterName", "dashboardURL", "jobId", "reason", "message", "rayJobInfo", "rayClusterStatus",
                    "jobStatus", "jobStatusCheckFailureStartTime")


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _elapsed(text: str | None) -> float:
    when = _parse_time(text)
    return 0.0 if when is None else (dt.datetime.now(dt.UTC) - when).total_seconds()


def _ms_to_iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _mode(rayjob: JSON) -> str:
    return (rayjob.get("spec") or {}).get("submissionMode") or "K8sJobMode"


def _tracked(status: JSON) -> tuple[Any, ...]:
    return tuple(status.get(k) for k in TRACKED)


class RayJobReconciler:
    """Reconciles RayJobs: names, children, Ray job submission/monitoring, deadlines, retries and cleanup."""

    def __init__(self, kube: Kube, runtime: RayRuntime) -> None:
        self.kube = kube
        self.runtime = runtime

    # ----------------------------------------------------------------- entry
    async def reconcile(self, rj: JSON) -> None:
        """One reconcile pass of a RayJob."""
        spec = rj.get("spec") or {}
        if spec.get("managedBy") not in (None, KUBERAY_MANAGER):
            return
        if rj["metadata"].get("deletionTimestamp"):
            await self._finalize(rj)
            return
        status = copy.deepcopy(rj.get("status") or {})
        state = status.get("jobDeploymentStatus", "")
        if state == "ValidationFailed":
            return
        invalid = validate_rayjob(rj)
        if invalid:
            reason, message = invalid
            status.update(jobDeploymentStatus="ValidationFailed", reason="ValidationFailed", message=message)
            await self.kube.event(rj, "Warning", reason, message, COMPONENT)
            await self._write(rj, status)
            return
        handler = {
            "": self._new, "Initializing": self._initializing, "Waiting": self._waiting, "Running": self._running,
            "Suspending": self._suspending, "Retrying": self._retrying, "Suspended": self._suspended,
            "Complete": self._finished, "Failed": self._finished,
        }.get(state)
        if handler is not None:
            await handler(rj, status)

    # ----------------------------------------------------------------- states
    async def _new(self, rj: JSON, status: JSON) -> None:
        meta = rj["metadata"]
        if RAYJOB_FINALIZER not in (meta.get("finalizers") or []):
            updated = await self.kube.patch("rayjobs", meta["namespace"], meta["name"], {"metadata": {
                "finalizers": [*(meta.get("finalizers") or []), RAYJOB_FINALIZER],
                "resourceVersion": meta["resourceVersion"]}})
            rj.update(updated)
        spec = rj["spec"]
        selector = spec.get("clusterSelector") or {}
        if _mode(rj) != "InteractiveMode":
            status["jobId"] = spec.get("jobId") or f"{meta['name']}-{random_suffix()}"
        status["rayClusterName"] = selector.get(RAY_CLUSTER_LABEL) or f"{meta['name']}-{random_suffix()}"
        status.update(jobDeploymentStatus="Initializing", startTime=now_iso())
        status.pop("jobStatus", None)
        await self._write(rj, status)

    async def _initializing(self, rj: JSON, status: JSON) -> None:
        spec = rj["spec"]
        if spec.get("suspend"):
            status["jobDeploymentStatus"] = "Suspending"
            await self._write(rj, status)
            return
        if await self._deadlines(rj, status, pre_running=True, active=True):
            return
        rc = await self._get_or_create_cluster(rj, status)
        if rc is None:
            return
        status["rayClusterStatus"] = copy.deepcopy(rc.get("status") or {})
        if (rc.get("status") or {}).get("state") != "ready":
            await self._write(rj, status)
            return
        ns = rj["metadata"]["namespace"]
        status["dashboardURL"] = f"{status['rayClusterName']}-head-svc.{ns}.svc.cluster.local:8265"
        mode = _mode(rj)
        if mode == "InteractiveMode":
            status["jobDeploymentStatus"] = "Waiting"
        else:
            if mode == "K8sJobMode":
                await self._create_submitter(rj, status)
            status["jobDeploymentStatus"] = "Running"
            if not spec.get("clusterSelector"):
                await self._create_rayjob_service(rj, status)
        await self._write(rj, status)

    async def _waiting(self, rj: JSON, status: JSON) -> None:
        if await self._deadlines(rj, status, pre_running=True, active=False):
            return
        job_id = rj["spec"].get("jobId")
        if job_id:
            status.update(jobId=job_id, jobDeploymentStatus="Running")
            await self._write(rj, status)

    async def _running(self, rj: JSON, status: JSON) -> None:
        spec = rj["spec"]
        if spec.get("suspend"):
            status["jobDeploymentStatus"] = "Suspending"
            await self._write(rj, status)
            return
        if await self._deadlines(rj, status, pre_running=False, active=True):
            return
        info = status.get("rayJobInfo") or {}
        if status.get("jobStatus") in jobapi.TERMINAL_JOB_STATUSES and info.get("endTime") and (
            _elapsed(info["endTime"].split(".")[0] + "Z") > TRANSITION_GRACE_SECONDS
        ):
            await self._fail_or_complete(rj, status, "JobDeploymentStatusTransitionGracePeriodExceeded",
                                         "The RayJob deployment status did not transition in time")
            return
        failing_since = status.get("jobStatusCheckFailureStartTime")
        if failing_since and _elapsed(failing_since) > STATUS_CHECK_TIMEOUT_SECONDS:
            await self._fail(rj, status, "JobStatusCheckTimeoutExceeded",
                             f"Job status checks have been failing since {failing_since}; exceeded timeout of "
                             f"{int(STATUS_CHECK_TIMEOUT_SECONDS)}s")
            return
        if not spec.get("clusterSelector"):
            await self._get_or_create_cluster(rj, status)
        submitter_state, submitter_job = await self._submitter_state(rj)
        if submitter_state == "Failed":
            cond = next(c for c in submitter_job["status"]["conditions"] if c["type"] == "Failed")
            reason = "AppFailed" if status.get("jobStatus") == "FAILED" else "SubmissionFailed"
            await self._fail(rj, status, reason, f"Job submission has failed. Reason: {cond.get('reason')}. "
                             f"Message: {cond.get('message')}")
            return
        cluster = self.runtime.get((rj["metadata"]["namespace"], status.get("rayClusterName", "")))
        try:
            if cluster is None or cluster.ready_at is None or not cluster.head_alive():
                raise jobapi.DashboardError("connection refused")
            ray_info = await asyncio.to_thread(jobapi.job_info, cluster.dashboard, status.get("jobId", ""))
            if ray_info is None and _mode(rj) in ("HTTPMode", "SidecarMode") and status.get("jobId"):
                await asyncio.to_thread(jobapi.submit, cluster.dashboard, status["jobId"], spec)
                ray_info = await asyncio.to_thread(jobapi.job_info, cluster.dashboard, status["jobId"])
        except jobapi.DashboardError as err:
            log.info("rayjob %s: dashboard error: %s", rj["metadata"]["name"], err)
            status.setdefault("jobStatusCheckFailureStartTime", now_iso())
            await self._write(rj, status)
            return
        status.pop("jobStatusCheckFailureStartTime", None)
        if ray_info is None:
            if submitter_state == "Complete":
                await self._fail(rj, status, "AppFailed", "Submitter completed but Ray job not found in RayCluster.")
                return
            await self._write(rj, status)
            return
        status["jobStatus"] = ray_info["status"]
        status["message"] = ray_info["message"]
        job_info: JSON = {}
        if ray_info.get("start_time"):
            job_info["startTime"] = _ms_to_iso(ray_info["start_time"])
        if ray_info.get("end_time"):
            job_info["endTime"] = _ms_to_iso(ray_info["end_time"])
        if job_info:
            status["rayJobInfo"] = job_info
        terminal = ray_info["status"] in jobapi.TERMINAL_JOB_STATUSES
        submitter_done = _mode(rj) != "K8sJobMode" or submitter_state == "Complete"
        if terminal and submitter_done:
            await self._fail_or_complete(rj, status, "", "")
            return
        if submitter_state == "Complete" and not terminal:
            finished_at = (submitter_job.get("status") or {}).get("completionTime")
            if _elapsed(finished_at) > SUBMITTER_FINISHED_TIMEOUT_SECONDS:
                status["jobStatus"] = "FAILED"
                await self._fail(rj, status, "JobDeploymentStatusTransitionGracePeriodExceeded",
                                 "The submitter finished but the Ray job is not in a terminal state")
                return
        await self._write(rj, status)

    async def _suspending(self, rj: JSON, status: JSON) -> None:
        if await self._delete_children_and_wait(rj, status):
            for key in CLEARED_ON_RESET:
                status.pop(key, None)
            status["jobDeploymentStatus"] = "Suspended"
            await self._write(rj, status)

    async def _retrying(self, rj: JSON, status: JSON) -> None:
        if await self._delete_children_and_wait(rj, status):
            for key in (*CLEARED_ON_RESET, "jobDeploymentStatus"):
                status.pop(key, None)
            await self._write(rj, status)

    async def _suspended(self, rj: JSON, status: JSON) -> None:
        if not rj["spec"].get("suspend"):
            status.pop("jobDeploymentStatus", None)
            await self._write(rj, status)

    async def _finished(self, rj: JSON, status: JSON) -> None:
        """Cleanup after Complete/Failed (semantics §5). Never changes the status."""
        spec, ns = rj["spec"], rj["metadata"]["namespace"]
        if spec.get("clusterSelector"):
            return
        since_end = _elapsed(status.get("endTime"))
        strategy = spec.get("deletionStrategy") or {}
        policy: str | None = None
        if strategy.get("deletionRules"):
            order = {"DeleteSelf": 3, "DeleteCluster": 2, "DeleteWorkers": 1, "DeleteNone": 0}
            due = [r for r in strategy["deletionRules"] if self._rule_matches(r.get("condition") or {}, status)
                   and since_end >= (r.get("condition") or {}).get("ttlSeconds", 0)]
            if due:
                policy = max((r.get("policy", "DeleteNone") for r in due), key=lambda p: order.get(p, 0))
        elif strategy:
            if since_end >= spec.get("ttlSecondsAfterFinished", 0):
                which = {"SUCCEEDED": "onSuccess", "FAILED": "onFailure"}.get(status.get("jobStatus", ""))
                policy = (strategy.get(which) or {}).get("policy") if which else None
        elif spec.get("shutdownAfterJobFinishes") and since_end >= spec.get("ttlSecondsAfterFinished", 0):
            policy = "DeleteCluster"
        name = status.get("rayClusterName")
        if policy == "DeleteSelf":
            await self.kube.delete("rayjobs", ns, rj["metadata"]["name"])
        elif policy == "DeleteCluster" and name and await self.kube.delete("rayclusters", ns, name):
            await self.kube.event(rj, "Normal", "DeletedRayCluster", f"Deleted RayCluster {ns}/{name}", COMPONENT)
        elif policy == "DeleteWorkers" and name:
            rc = await self.kube.get("rayclusters", ns, name)
            groups = ((rc or {}).get("spec") or {}).get("workerGroupSpecs") or []
            if rc and not all(g.get("suspend") for g in groups):
                for group in groups:
                    group["suspend"] = True
                await self.kube.replace("rayclusters", rc)

    @staticmethod
    def _rule_matches(cond: JSON, status: JSON) -> bool:
        if "jobStatus" in cond:
            return cond["jobStatus"] == status.get("jobStatus")
        return cond.get("jobDeploymentStatus") == status.get("jobDeploymentStatus")

    # ----------------------------------------------------------------- helpers
    async def _deadlines(self, rj: JSON, status: JSON, *, pre_running: bool, active: bool) -> bool:
        spec = rj["spec"]
        started = status.get("startTime")
        if active and spec.get("activeDeadlineSeconds") and _elapsed(started) >= spec["activeDeadlineSeconds"]:
            await self._fail(rj, status, "DeadlineExceeded",
                             f"The RayJob has passed the activeDeadlineSeconds. StartTime: {started}. "
                             f"ActiveDeadlineSeconds: {spec['activeDeadlineSeconds']}")
            return True
        limit = spec.get("preRunningDeadlineSeconds")
        if pre_running and limit and _elapsed(started) >= limit:
            await self._fail(rj, status, "PreRunningDeadlineExceeded",
                             f"The RayJob has passed the preRunningDeadlineSeconds. StartTime: {started}. "
                             f"PreRunningDeadlineSeconds: {limit}")
            return True
        return False

    async def _fail_or_complete(self, rj: JSON, status: JSON, reason: str, message: str) -> None:
        if status.get("jobStatus") == "FAILED":
            await self._fail(rj, status, reason or "AppFailed", message or status.get("message", ""))
            return
        status.update(jobDeploymentStatus="Complete", endTime=now_iso())
        status["succeeded"] = status.get("succeeded", 0) + (1 if status.get("jobStatus") == "SUCCEEDED" else 0)
        if reason:
            status.update(reason=reason, message=message)
        await self._write(rj, status)

    async def _fail(self, rj: JSON, status: JSON, reason: str, message: str) -> None:
        """Enter Failed, or Retrying in the same write when ``backoffLimit`` allows."""
        status["failed"] = status.get("failed", 0) + 1
        status.update(reason=reason, message=message)
        if reason not in NOT_RETRIED and status["failed"] <= rj["spec"].get("backoffLimit", 0):
            status["jobDeploymentStatus"] = "Retrying"
        else:
            status.update(jobDeploymentStatus="Failed", endTime=now_iso())
        await self._write(rj, status)

    async def _write(self, rj: JSON, status: JSON) -> None:
        """PUT /status when a tracked field changed (resourceVersion-checked; a conflict just waits for requeue)."""
        old = rj.get("status") or {}
        if _tracked(status) == _tracked(old):
            return
        status.setdefault("succeeded", 0)
        status.setdefault("failed", 0)
        body = dict(rj, status=status)
        try:
            rj.update(await self.kube.replace("rayjobs", body, sub="status"))
        except KubeError as err:
            if err.status not in (404, 409):
                raise
            log.info("rayjob %s: status write skipped: HTTP %s", rj["metadata"]["name"], err.status)

    async def _get_or_create_cluster(self, rj: JSON, status: JSON) -> JSON | None:
        ns, name = rj["metadata"]["namespace"], status["rayClusterName"]
        rc = await self.kube.get("rayclusters", ns, name)
        if rc is not None and not rc["metadata"].get("deletionTimestamp"):
            return rc
        if rj["spec"].get("clusterSelector"):
            await self.kube.event(rj, "Warning", "RayClusterNotFound", f"RayCluster {ns}/{name} set in the "
                                  "clusterSelector is not found", COMPONENT)
            return None
        if rc is not None:
            return None  # the old one is still being deleted
        meta = rj["metadata"]
        labels = {**(meta.get("labels") or {}), **(meta.get("annotations") or {})}
        labels.update({ORIGINATED_FROM_NAME_LABEL: meta["name"], ORIGINATED_FROM_CRD_LABEL: "RayJob",
                       "ray.io/job-submission-mode": _mode(rj)})
        body = {"apiVersion": "ray.io/v1", "kind": "RayCluster",
                "metadata": {"name": name, "namespace": ns, "labels": labels,
                             "annotations": dict(meta.get("annotations") or {}),
                             "ownerReferences": [owner_reference(rj)]},
                "spec": copy.deepcopy(rj["spec"]["rayClusterSpec"])}
        try:
            rc = await self.kube.create("rayclusters", ns, body)
        except KubeError as err:
            await self.kube.event(rj, "Warning", "FailedToCreateRayCluster", str(err.body), COMPONENT)
            return None
        await self.kube.event(rj, "Normal", "CreatedRayCluster", f"Created RayCluster {ns}/{name}", COMPONENT)
        return rc

    async def _create_submitter(self, rj: JSON, status: JSON) -> None:
        meta, spec = rj["metadata"], rj["spec"]
        ns = meta["namespace"]
        if await self.kube.get("jobs", ns, meta["name"]) is not None:
            return
        head = ((spec.get("rayClusterSpec") or {}).get("headGroupSpec") or {}).get("template") or {}
        image = (((head.get("spec") or {}).get("containers") or [{}])[0]).get("image", "rayproject/ray")
        address = status["dashboardURL"]
        job_id = status["jobId"]
        env = [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "RAY_DASHBOARD_ADDRESS", "value": address},
               {"name": "RAY_JOB_SUBMISSION_ID", "value": job_id}]
        template = copy.deepcopy(spec.get("submitterPodTemplate") or {})
        pod_spec = template.setdefault("spec", {})
        containers = pod_spec.setdefault("containers", [{}])
        first = containers[0]
        first.setdefault("name", SUBMITTER_CONTAINER)
        first.setdefault("image", image)
        first.setdefault("command", ["/bin/bash", "-ce", "--", self._submit_command(spec, address, job_id)])
        first.setdefault("resources", {"requests": {"cpu": "500m", "memory": "200Mi"},
                                       "limits": {"cpu": "1", "memory": "1Gi"}})
        first["env"] = [*(first.get("env") or []), *env]
        pod_spec.setdefault("restartPolicy", "Never")
        labels = {ORIGINATED_FROM_NAME_LABEL: meta["name"], ORIGINATED_FROM_CRD_LABEL: "RayJob",
                  "app.kubernetes.io/created-by": "kuberay-operator"}
        backoff = (spec.get("submitterConfig") or {}).get("backoffLimit", 2)
        body = {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": meta["name"], "namespace": ns, "labels": labels,
                             "ownerReferences": [owner_reference(rj)]},
                "spec": {"backoffLimit": backoff, "template": template}}
        await self.kube.create("jobs", ns, body)
        await self.kube.event(rj, "Normal", "CreatedRayJobSubmitter", f"Created Kubernetes Job {ns}/{meta['name']}",
                              COMPONENT)

    @staticmethod
    def _submit_command(spec: JSON, address: str, job_id: str) -> str:
        """The shell command KubeRay puts in the submitter container (shown only; the emulator runs it natively)."""
        submit = ["ray", "job", "submit", "--address", f"http://{address}", "--no-wait"]
        if spec.get("runtimeEnvYAML"):
            submit += ["--runtime-env-json", shlex.quote("<runtimeEnvYAML as JSON>")]
        submit += ["--submission-id", job_id, "--", spec.get("entrypoint") or ""]
        return (f"until curl --fail -s http://{address}/api/gcs_healthz; do sleep 2; done; "
                f"if ! ray job status --address http://{address} {job_id} >/dev/null 2>&1 ; "
                f"then {' '.join(submit)} ; fi ; ray job logs --address http://{address} --follow {job_id}")

    async def _create_rayjob_service(self, rj: JSON, status: JSON) -> None:
        meta, ns = rj["metadata"], rj["metadata"]["namespace"]
        name = f"{meta['name']}-head-svc"
        if await self.kube.get("services", ns, name) is not None:
            return
        body = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner_reference(rj)],
                             "labels": {ORIGINATED_FROM_NAME_LABEL: meta["name"], ORIGINATED_FROM_CRD_LABEL: "RayJob",
                                        RAY_NODE_TYPE_LABEL: "head", "ray.io/identifier": f"{meta['name']}-head"}},
                "spec": {"type": "ClusterIP", "clusterIP": "None",
                         "ports": [{"name": "dashboard", "port": 8265, "protocol": "TCP", "targetPort": 8265}],
                         "selector": {RAY_CLUSTER_LABEL: status["rayClusterName"], RAY_NODE_TYPE_LABEL: "head"}}}
        try:
            await self.kube.create("services", ns, body)
        except KubeError as err:
            if err.status != 409:
                raise

    async def _submitter_state(self, rj: JSON) -> tuple[str, JSON]:
        """``("", {})`` without a submitter, else ``(Running|Complete|Failed, job)``."""
        if _mode(rj) != "K8sJobMode":
            return "", {}
        job = await self.kube.get("jobs", rj["metadata"]["namespace"], rj["metadata"]["name"])
        if job is None:
            return "", {}
        for cond in (job.get("status") or {}).get("conditions") or []:
            if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
                return cond["type"], job
        return "Running", job

    async def _delete_children_and_wait(self, rj: JSON, status: JSON) -> bool:
        """Delete the RayCluster (unless selected) and the submitter Job; True once both are gone."""
        ns = rj["metadata"]["namespace"]
        gone = True
        name = status.get("rayClusterName")
        if name and not rj["spec"].get("clusterSelector") and await self.kube.get("rayclusters", ns, name) is not None:
            gone = False
            if await self.kube.delete("rayclusters", ns, name):
                await self.kube.event(rj, "Normal", "DeletedRayCluster", f"Deleted RayCluster {ns}/{name}",
                                      COMPONENT)
        if await self.kube.get("jobs", ns, rj["metadata"]["name"]) is not None:
            gone = False
            await self.kube.delete("jobs", ns, rj["metadata"]["name"])
        return gone

    async def _finalize(self, rj: JSON) -> None:
        """RayJob being deleted: stop the Ray job if not terminal, then drop the finalizer."""
        meta = rj["metadata"]
        finalizers = meta.get("finalizers") or []
        if RAYJOB_FINALIZER not in finalizers:
            return
        status = rj.get("status") or {}
        cluster = self.runtime.get((meta["namespace"], status.get("rayClusterName", "")))
        if status.get("jobId") and status.get("jobStatus") not in jobapi.TERMINAL_JOB_STATUSES and cluster:
            await asyncio.to_thread(jobapi.stop, cluster.dashboard, status["jobId"])
        try:
            await self.kube.patch("rayjobs", meta["namespace"], meta["name"], {"metadata": {
                "finalizers": [f for f in finalizers if f != RAYJOB_FINALIZER],
                "resourceVersion": meta["resourceVersion"]}})
        except KubeError as err:
            if err.status not in (404, 409):
                raise
