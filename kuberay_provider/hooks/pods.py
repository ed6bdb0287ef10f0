"""Reading Ray pods (pure): which pod carries the driver log, what went wrong with a pod, the log tail."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from kuberay_provider import constants as c

WAITING_PROBLEMS = frozenset({
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CrashLoopBackOff",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
})


def submitter_pod_selector(rayjob_name: str) -> str:
    """Label selector of the K8sJobMode submitter pods (they outlive the Ray cluster)."""
    return f"{c.JOB_NAME_LABEL}={rayjob_name}"


def head_pod_selector(cluster_name: str) -> str:
    return f"{c.RAY_CLUSTER_LABEL}={cluster_name},{c.RAY_NODE_TYPE_LABEL}=head"


def _created(pod: Mapping[str, Any]) -> str:
    return (pod.get("metadata") or {}).get("creationTimestamp") or ""


def pod_name(pod: Mapping[str, Any]) -> str:
    return (pod.get("metadata") or {}).get("name", "")


def pod_started(pod: Mapping[str, Any]) -> bool:
    """A container has started (running or terminated), so the log endpoint has something to say."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if "running" in state or "terminated" in state:
            return True
    return (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")


def pod_finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def newest_started_pod(pods: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recently created pod whose container has started (the current submitter attempt)."""
    started = [p for p in pods if pod_started(p)]
    return max(started, key=_created) if started else None


def describe_pod_problems(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """Human lines for scheduling failures, image pulls, crashes and OOM kills found in pod statuses."""
    lines: list[str] = []
    for pod in sorted(pods, key=_created):
        name = pod_name(pod)
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                lines.append(f"pod {name}: not scheduled ({cond.get('reason')}): {cond.get('message', '')}".rstrip(": "))
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state = cs.get("state") or {}
            last = (cs.get("lastState") or {}).get("terminated")
            waiting = state.get("waiting")
            if waiting and waiting.get("reason") in WAITING_PROBLEMS:
                text = f"pod {name} container {cs.get('name')}: {waiting['reason']}: {waiting.get('message', '')}"
                lines.append(text.rstrip(": "))
            for term in (state.get("terminated"), last):
                if term and (term.get("exitCode") or term.get("reason") in ("OOMKilled", "Error")):
                    lines.append(
                        f"pod {name} container {cs.get('name')}: terminated ({term.get('reason')}, "
                        f"exit code {term.get('exitCode')})"
                    )
                    break
    return lines


def describe_submitter_job(job: Mapping[str, Any] | None) -> list[str]:
    """The K8sJobMode submitter Job's failure condition (e.g. ``BackoffLimitExceeded``) as a line."""
    if not job:
        return []
    lines = []
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            lines.append(
                f"submitter Job {pod_name(job)}: failed ({cond.get('reason')}): {cond.get('message', '')}".rstrip(": ")
            )
    if status.get("failed"):
        lines.append(f"submitter Job {pod_name(job)}: {status['failed']} failed pod attempt(s)")
    return lines


def event_is_about(event: Mapping[str, Any], rayjob_name: str, cluster_name: str | None) -> bool:
    """Whether an Event concerns the RayJob, its RayCluster, the cluster's pods or the submitter pods.

    Pod events (kubelet's image pull errors, the scheduler's FailedScheduling) outlive the pods, so they still
    explain a failure after KubeRay removed the cluster.
    """
    name = (event.get("involvedObject") or {}).get("name") or ""
    if name == rayjob_name or re.fullmatch(re.escape(rayjob_name) + r"-[a-z0-9]{5}", name):
        return True  # the RayJob and its submitter pods (<rayjob>-<5>)
    return bool(cluster_name) and (name == cluster_name or name.startswith(f"{cluster_name}-"))


def describe_warning_events(events: Iterable[Mapping[str, Any]], rayjob_name: str | None = None,
                            cluster_name: str | None = None) -> list[str]:
    """Warning events (core/v1) as lines, oldest first; only those about ``rayjob_name``'s objects if given."""
    warnings = [e for e in events if e.get("type") == "Warning"
                and (rayjob_name is None or event_is_about(e, rayjob_name, cluster_name))]
    warnings.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    lines = []
    for event in warnings:
        involved = event.get("involvedObject") or {}
        about = f" ({involved.get('kind')} {involved.get('name')})" if involved.get("name") else ""
        lines.append(f"event {event.get('reason')}{about}: {event.get('message', '')}")
    return lines


class LogTail:
    """Lines of the driver log seen so far: the last ``size`` kept, and how many came from each pod.

    A follow stream that breaks is re-opened from the start of the pod's log; lines already seen are skipped
    so nothing is printed twice.
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.lines: deque[str] = deque(maxlen=size)
        self._seen: dict[str, int] = {}
        self._position: dict[str, int] = {}
        self.total = 0

    def start(self, pod: str) -> None:
        """A (re)opened stream for ``pod`` starts at its first line."""
        self._position[pod] = 0

    def accept(self, pod: str, line: str) -> bool:
        """Record a line; False if it was already seen before a reconnect."""
        position = self._position.get(pod, 0) + 1
        self._position[pod] = position
        if position <= self._seen.get(pod, 0):
            return False
        self._seen[pod] = position
        self.lines.append(line)
        self.total += 1
        return True

    def extend(self, pod: str, lines: Iterable[str]) -> None:
        """Record a one-off read of ``pod``'s log (its last lines)."""
        self.start(pod)
        for line in lines:
            self.accept(pod, line)

    def merge_tail(self, pod: str, lines: Iterable[str]) -> list[str]:
        """Record the last lines of ``pod``'s log read once after a partial follow; returns the lines not seen
        yet (the longest overlap between what was kept and what was read is skipped)."""
        fetched = list(lines)
        if self._seen.get(pod, 0) == 0:
            self.extend(pod, fetched)
            return fetched
        kept = list(self.lines)
        new = fetched
        for k in range(min(len(kept), len(fetched)), 0, -1):
            if kept[-k:] == fetched[:k]:
                new = fetched[k:]
                break
        for line in new:
            self.lines.append(line)
            self.total += 1
        return new

    def text(self) -> str:
        return "\n".join(self.lines)


class SubmitterLogPlan:
    """Sans-I/O decisions for following the driver log across submitter pod attempts and broken streams."""

    def __init__(self, poll_interval: float = 2.0) -> None:
        self.poll_interval = poll_interval
        self._done: set[str] = set()
        self._current: Mapping[str, Any] | None = None
        self._failures = 0

    def pick(self, pods: Iterable[Mapping[str, Any]]) -> str | None:
        """The pod to follow now, or None (nothing started yet, or its log was read to the end)."""
        pod = newest_started_pod(pods)
        if pod is None or pod_name(pod) in self._done:
            self._current = None
            return None
        self._current = pod
        return pod_name(pod)

    def stream_ended(self, stop_requested: bool) -> None:
        """The follow stream reached its end: a finished pod (or a stop) means its log is complete."""
        self._failures = 0
        if self._current is not None and (pod_finished(self._current) or stop_requested):
            self._done.add(pod_name(self._current))

    def stream_failed(self) -> None:
        self._failures += 1

    def wait_seconds(self) -> float:
        """Pause before looking for pods again (backs off while streams keep failing)."""
        return min(30.0, self.poll_interval * (2 ** min(self._failures, 4)))
