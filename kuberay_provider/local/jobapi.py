"""Blocking helpers around ``ray.job_submission.JobSubmissionClient`` (the controller calls them from threads).

Every call authenticates with the cluster's token (:class:`~kuberay_provider.local.rayruntime.Dashboard`).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import yaml

from kuberay_provider.local import images

if TYPE_CHECKING:
    from kuberay_provider.local.rayruntime import Dashboard

JSON = dict[str, Any]
TERMINAL_JOB_STATUSES = ("STOPPED", "SUCCEEDED", "FAILED")


class DashboardError(Exception):
    """The dashboard could not be reached or answered an error."""


def _client(dashboard: Dashboard) -> Any:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(dashboard.url, headers=dashboard.headers)
    except Exception as exc:
        raise DashboardError(str(exc)) from exc


def job_info(dashboard: Dashboard, job_id: str) -> JSON | None:
    """``{status, message, start_time, end_time}`` of a submission, or None if the dashboard does not know it."""
    client = _client(dashboard)
    try:
        info = client.get_job_info(job_id)
    except RuntimeError as exc:
        if "404" in str(exc) or "does not exist" in str(exc):
            return None
        raise DashboardError(str(exc)) from exc
    except Exception as exc:
        raise DashboardError(str(exc)) from exc
    return {"status": str(info.status.value if hasattr(info.status, "value") else info.status),
            "message": info.message or "", "start_time": info.start_time, "end_time": info.end_time}


def submit(dashboard: Dashboard, job_id: str, spec: JSON, agent_wait: float = 60.0) -> None:
    """Submit the RayJob's entrypoint with ``submission_id=job_id`` (waits for the job agent to come up).

    The runtime_env's ``pip``/``uv``/``conda`` are checked against the local venv and removed first
    (:func:`kuberay_provider.local.images.prepare_runtime_env`): the local stack never installs anything.
    """
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"]) if spec.get("runtimeEnvYAML") else None
    runtime_env = images.prepare_runtime_env(runtime_env, dashboard.image).runtime_env
    kwargs: JSON = {"entrypoint": spec.get("entrypoint") or "", "submission_id": job_id,
                    "runtime_env": runtime_env, "metadata": spec.get("metadata") or None}
    if (spec.get("entrypointNumCpus") or 0) > 0:
        kwargs["entrypoint_num_cpus"] = spec["entrypointNumCpus"]
    if (spec.get("entrypointNumGpus") or 0) > 0:
        kwargs["entrypoint_num_gpus"] = spec["entrypointNumGpus"]
    if spec.get("entrypointResources"):
        kwargs["entrypoint_resources"] = json.loads(spec["entrypointResources"])
    client = _client(dashboard)
    deadline = time.monotonic() + agent_wait
    while True:
        try:
            client.submit_job(**kwargs)
            return
        except Exception as exc:
            if "No available agent" in str(exc) and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            raise DashboardError(str(exc)) from exc


def logs(dashboard: Dashboard, job_id: str) -> str:
    """The driver log so far."""
    try:
        return _client(dashboard).get_job_logs(job_id)
    except Exception as exc:
        raise DashboardError(str(exc)) from exc


def stop(dashboard: Dashboard, job_id: str) -> None:
    """Ask Ray to stop the job (best effort, errors ignored as KubeRay does)."""
    try:
        _client(dashboard).stop_job(job_id)
    except Exception:
        return
