"""Reading Ray pods (pure): which pod carries the driver log, what went wrong with a pod, the log tail."""

from __future__ import annotations

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


def describe_warning_events(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Warning events (core/v1) as lines, oldest first."""
    warnings = [e for e in events if e.get("type") == "Warning"]
    warnings.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [f"event {e.get('reason')}: {e.get('message', '')}" for e in warnings]


class LogTail:
    """Lines of the driver log seen so far: the last ``size`` kept, and how many came from each pod.

    A follow stream that breaks is re-opened from the start of the pod's log; lines already seen are skipped
    so nothing is printed twice.
    """

    def __init__(self, size: int = 50) -> None:
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
