"""Pod objects and the pod statuses the local controller writes (there is no kubelet)."""

from __future__ import annotations

import copy
from typing import Any

from kuberay_provider.local.apiserver import now_iso

JSON = dict[str, Any]
UNSCHEDULABLE_MESSAGE = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


def pod_object(name: str, namespace: str, labels: dict[str, str], owner: JSON, pod_spec: JSON) -> JSON:
    """A new Pod with the given spec, labels and controller owner."""
    spec = copy.deepcopy(pod_spec)
    spec.setdefault("restartPolicy", "Always")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [owner]},
            "spec": spec}


def _container_names(pod: JSON) -> list[tuple[str, str]]:
    return [(c.get("name", ""), c.get("image", "")) for c in pod["spec"].get("containers") or []]


def _scheduled(pod: JSON) -> JSON:
    return {"type": "PodScheduled", "status": "True", "lastTransitionTime": _since(pod, "PodScheduled")}


def _since(pod: JSON, condition: str) -> str:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == condition and cond.get("lastTransitionTime"):
            return cond["lastTransitionTime"]
    return now_iso()


def _waiting_reasons(status: JSON) -> set[str]:
    return {((cs.get("state") or {}).get("waiting") or {}).get("reason", "") for cs in status.get("containerStatuses") or []}


def _unscheduled(status: JSON) -> bool:
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False" for c in status.get("conditions") or [])


def warning_for(old: JSON, new: JSON) -> tuple[str, str, str] | None:
    """``(reason, message, component)`` of the Warning Event kubelet or the scheduler records when a Pod enters
    ``new`` from ``old`` (an image pull failure or a scheduling failure); None otherwise."""
    entered = _waiting_reasons(new) - _waiting_reasons(old)
    for reason in ("ErrImagePull", "ImagePullBackOff"):
        if reason in entered:
            message = next(((cs["state"]["waiting"].get("message") or "") for cs in new.get("containerStatuses") or []
                            if (cs.get("state") or {}).get("waiting", {}).get("reason") == reason), "")
            kind = "Failed" if reason == "ErrImagePull" else "BackOff"
            return kind, f"Error: {reason}: {message}".rstrip(": "), "kubelet"
    if _unscheduled(new) and not _unscheduled(old):
        return "FailedScheduling", f"Unschedulable: {UNSCHEDULABLE_MESSAGE}", "default-scheduler"
    return None


def unschedulable(pod: JSON) -> JSON:
    """Pending, not scheduled: the node pool is full."""
    return {"phase": "Pending", "qosClass": "Burstable", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": UNSCHEDULABLE_MESSAGE,
         "lastTransitionTime": _since(pod, "PodScheduled")}]}


def waiting(pod: JSON, reason: str, message: str = "") -> JSON:
    """Pending, scheduled, containers waiting (``ContainerCreating``, ``ErrImagePull``, ``ImagePullBackOff``)."""
    state: JSON = {"reason": reason}
    if message:
        state["message"] = message
    statuses = [{"name": n, "image": i, "imageID": "", "ready": False, "started": False, "restartCount": 0,
                 "state": {"waiting": dict(state)}} for n, i in _container_names(pod)]
    return {"phase": "Pending", "qosClass": "Burstable", "hostIP": "127.0.0.1",
            "conditions": [_scheduled(pod),
                           {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": statuses}


def running(pod: JSON, restart_count: int = 0) -> JSON:
    """Running and ready."""
    started = (pod.get("status") or {}).get("startTime") or now_iso()
    statuses = [{"name": n, "image": i, "imageID": "", "ready": True, "started": True, "restartCount": restart_count,
                 "state": {"running": {"startedAt": started}}} for n, i in _container_names(pod)]
    return {"phase": "Running", "qosClass": "Burstable", "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}], "startTime": started,
            "conditions": [_scheduled(pod), {"type": "Initialized", "status": "True"},
                           {"type": "ContainersReady", "status": "True"},
                           {"type": "Ready", "status": "True", "lastTransitionTime": _since(pod, "Ready")}],
            "containerStatuses": statuses}


def terminated(pod: JSON, exit_code: int, restart_count: int = 0, *, final: bool = True) -> JSON:
    """Containers terminated; phase ``Succeeded``/``Failed`` when ``final`` (restartPolicy Never)."""
    status = running(pod, restart_count)
    reason = "Completed" if exit_code == 0 else "Error"
    for cs in status["containerStatuses"]:
        cs.update(ready=False, started=False, state={"terminated": {
            "exitCode": exit_code, "reason": reason, "startedAt": status["startTime"], "finishedAt": now_iso()}})
    status["conditions"] = [c for c in status["conditions"] if c["type"] not in ("Ready", "ContainersReady")] + [
        {"type": "Ready", "status": "False", "reason": "PodCompleted" if final else "ContainersNotReady"}]
    if final:
        status["phase"] = "Succeeded" if exit_code == 0 else "Failed"
    return status
