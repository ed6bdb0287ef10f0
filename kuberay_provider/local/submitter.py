"""Emulates the Kubernetes Job controller and the ``ray-job-submitter`` container for KubeRay's submitter Jobs.

Per submitter Job: Pods ``<job>-<5>`` are started one after another (``restartPolicy: Never``) until one succeeds or
``backoffLimit + 1`` have failed. Each Pod does what KubeRay's submitter command does: wait for the dashboard,
submit the job if the submission id is unknown, then follow the driver log (written to a file served as the Pod log)
until the Ray job is terminal, and exit 0. If the dashboard stays unreachable while following, it exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kuberay_provider.local import jobapi, pods
from kuberay_provider.local.apiserver import now_iso, random_suffix
from kuberay_provider.local.clusters import SIMULATE_ANNOTATION
from kuberay_provider.local.kube import Kube, KubeError, owner_reference
from kuberay_provider.local.names import JOB_NAME_LABEL, SUBMITTER_CONTAINER
from kuberay_provider.local.rayruntime import RayRuntime

JSON = dict[str, Any]
log = logging.getLogger(__name__)
DASHBOARD_FAILURES_BEFORE_EXIT = 5
POLL_SECONDS = 1.0


def cluster_of(dashboard_address: str) -> tuple[str, str]:
    """``(namespace, raycluster)`` from ``<rc>-head-svc.<ns>.svc.cluster.local:8265``."""
    host = dashboard_address.split("://")[-1].split(":")[0]
    service, namespace = host.split(".")[:2]
    return namespace, service.removesuffix("-head-svc")


def _env(job: JSON) -> dict[str, str]:
    containers = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for c in containers for e in c.get("env") or []}


class SubmitterJobs:
    """Runs one asyncio task per active submitter Job."""

    def __init__(self, kube: Kube, runtime: RayRuntime, log_dir: Path,
                 register_log: Callable[[str, str, str, Path], None]) -> None:
        self.kube = kube
        self.runtime = runtime
        self.log_dir = log_dir
        self.register_log = register_log
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def reconcile_all(self, jobs: list[JSON], rayjobs: dict[str, JSON]) -> None:
        """Start tasks for new submitter Jobs and cancel tasks of deleted ones.

        ``rayjobs`` maps RayJob uid to RayJob (the Job's owner, read for the entrypoint and settings).
        """
        live = set()
        for job in jobs:
            meta = job["metadata"]
            if meta.get("labels", {}).get("app.kubernetes.io/created-by") != "kuberay-operator":
                continue
            uid = meta["uid"]
            live.add(uid)
            finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                           for c in (job.get("status") or {}).get("conditions") or [])
            if uid in self.tasks or finished or meta.get("deletionTimestamp"):
                continue
            owner = next((rayjobs[r["uid"]] for r in meta.get("ownerReferences") or [] if r["uid"] in rayjobs), None)
            if owner is not None:
                self.tasks[uid] = asyncio.create_task(self._run(job, owner))
        for uid in list(self.tasks):
            if uid not in live:
                self.tasks.pop(uid).cancel()

    async def close(self) -> None:
        """Cancel every task."""
        tasks = list(self.tasks.values())  # each task removes itself from self.tasks when it ends
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()

    async def _run(self, job: JSON, rayjob: JSON) -> None:
        meta = job["metadata"]
        ns, name = meta["namespace"], meta["name"]
        limit = job["spec"].get("backoffLimit", 6)
        failed = 0
        try:
            await self._job_status(job, {"active": 1, "startTime": now_iso()})
            while True:
                pod = await self._create_pod(job)
                exit_code = await self._container(pod, job, rayjob)
                await self.kube.set_status("pods", ns, pod["metadata"]["name"], pods.terminated(pod, exit_code))
                if exit_code == 0:
                    stamp = now_iso()
                    await self._job_status(job, {
                        "succeeded": 1, "failed": failed, "startTime": job["status"]["startTime"],
                        "completionTime": stamp, "conditions": [
                            _condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                            _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
                        ]})
                    return
                failed += 1
                if failed > limit:
                    await self._job_status(job, {
                        "failed": failed, "startTime": job["status"]["startTime"], "conditions": [
                            _condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                            _condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                        ]})
                    return
                await self._job_status(job, {"active": 1, "failed": failed, "startTime": job["status"]["startTime"]})
                await asyncio.sleep(min(10.0, 1.0 * 2 ** (failed - 1)))
        except KubeError as err:
            log.info("submitter job %s/%s stopped: %s", ns, name, err)
        finally:
            self.tasks.pop(meta["uid"], None)

    async def _job_status(self, job: JSON, status: JSON) -> None:
        meta = job["metadata"]
        job["status"] = status
        await self.kube.set_status("jobs", meta["namespace"], meta["name"], status)

    async def _create_pod(self, job: JSON) -> JSON:
        meta = job["metadata"]
        template = job["spec"]["template"]
        labels = {**((template.get("metadata") or {}).get("labels") or {}), JOB_NAME_LABEL: meta["name"],
                  "job-name": meta["name"], "batch.kubernetes.io/controller-uid": meta["uid"],
                  "controller-uid": meta["uid"]}
        pod = pods.pod_object(f"{meta['name']}-{random_suffix()}", meta["namespace"], labels, owner_reference(job),
                              template.get("spec") or {})
        pod = await self.kube.create("pods", meta["namespace"], pod)
        path = self.log_dir / meta["namespace"] / pod["metadata"]["name"] / f"{SUBMITTER_CONTAINER}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        self.register_log(meta["namespace"], pod["metadata"]["name"], SUBMITTER_CONTAINER, path)
        pod["status"] = pods.running(pod)
        await self.kube.set_status("pods", meta["namespace"], pod["metadata"]["name"], pod["status"])
        return pod

    async def _container(self, pod: JSON, job: JSON, rayjob: JSON) -> int:
        """Run the submitter 'container'; returns its exit code."""
        ns, pod_name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        out = self.log_dir / ns / pod_name / f"{SUBMITTER_CONTAINER}.log"
        env = _env(job)
        address, job_id = env["RAY_DASHBOARD_ADDRESS"], env["RAY_JOB_SUBMISSION_ID"]
        if (rayjob["metadata"].get("annotations") or {}).get(SIMULATE_ANNOTATION) == "submitter-failure":
            _append(out, "Error: simulated submitter failure (kuberay-local.dev/simulate=submitter-failure)\n")
            await asyncio.sleep(POLL_SECONDS)
            return 1
        key = cluster_of(address)
        _append(out, f"Waiting for the Ray dashboard at {address} ...\n")
        while True:  # until curl --fail .../api/gcs_healthz; do sleep 2; done
            cluster = self.runtime.get(key)
            if cluster is not None and cluster.ready_at is not None and cluster.head_alive():
                break
            await asyncio.sleep(POLL_SECONDS)
        url = cluster.dashboard
        try:
            if await asyncio.to_thread(jobapi.job_info, url, job_id) is None:
                await asyncio.to_thread(jobapi.submit, url, job_id, rayjob["spec"])
                _append(out, f"Job '{job_id}' submitted successfully\n")
        except jobapi.DashboardError as err:
            _append(out, f"Error: {err}\n")
            return 1
        written, failures = 0, 0
        while failures < DASHBOARD_FAILURES_BEFORE_EXIT:
            try:
                info = await asyncio.to_thread(jobapi.job_info, url, job_id)
                text = await asyncio.to_thread(jobapi.logs, url, job_id)
            except jobapi.DashboardError:
                failures += 1
                await asyncio.sleep(POLL_SECONDS)
                continue
            failures = 0
            if len(text) > written:
                _append(out, text[written:])
                written = len(text)
            if info is not None and info["status"] in jobapi.TERMINAL_JOB_STATUSES:
                return 0
            await asyncio.sleep(POLL_SECONDS)
        _append(out, "Error: lost the connection to the Ray dashboard\n")
        return 1


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


def _condition(kind: str, reason: str, message: str) -> JSON:
    stamp = now_iso()
    return {"type": kind, "status": "True", "reason": reason, "message": message,
            "lastProbeTime": stamp, "lastTransitionTime": stamp}
