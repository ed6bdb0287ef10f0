"""A Kueue-like admission for RayJobs, so that queueing is testable end to end without Kueue.

Kueue (``pkg/controller/jobs/rayjob``) manages a RayJob labelled ``kueue.x-k8s.io/queue-name``: the RayJob is
created with ``spec.suspend: true``, Kueue wraps it in a Workload, and once the queue's ClusterQueue has quota for
it Kueue *admits* it by setting ``spec.suspend: false`` (event ``Started``). The quota stays taken until the RayJob
finishes (``Complete``/``Failed``) or is deleted. Pending workloads are admitted in priority order (the value of
their ``kueue.x-k8s.io/priority-class``), then oldest first (StrictFIFO).

This double models one ClusterQueue for every LocalQueue, whose quota is ``capacity`` RayJobs (the stack's
``max_clusters``: what the local machine can run). It does not model resource flavors, preemption, the
Workload object or Kueue's webhook (which refuses invalid queued RayJobs at creation). RayJobs without the
label are not Kueue's business and do not take quota (they still take a local Ray slot, like pods that bypass
Kueue on a real cluster).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kuberay_provider.local.kube import Kube, KubeError

JSON = dict[str, Any]
log = logging.getLogger(__name__)

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
COMPONENT = "kueue-admission"
#: A finished workload gives its quota back (``ValidationFailed`` never runs either).
FINISHED = ("Complete", "Failed", "ValidationFailed")


def _labels(rj: JSON) -> Mapping[str, str]:
    return (rj.get("metadata") or {}).get("labels") or {}


def _finished(rj: JSON) -> bool:
    return (rj.get("status") or {}).get("jobDeploymentStatus") in FINISHED


class KueueAdmission:
    """Admits queued RayJobs (``suspend: true`` → ``false``) while fewer than ``capacity`` admitted ones run."""

    def __init__(self, kube: Kube, capacity: int, priorities: Mapping[str, int] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity!r}: must be >= 1")
        self.kube = kube
        self.capacity = capacity
        self.priorities = dict(priorities or {})
        self.admitted: list[tuple[str, str]] = []  # (namespace, name) in admission order, for tests and demos

    def _order(self, rj: JSON) -> tuple[int, str, str]:
        meta = rj["metadata"]
        priority = self.priorities.get(_labels(rj).get(PRIORITY_LABEL, ""), 0)
        return (-priority, meta.get("creationTimestamp") or "", meta["name"])

    async def admit(self, rayjobs: list[JSON]) -> None:
        """One admission pass over every RayJob."""
        queued = [rj for rj in rayjobs if _labels(rj).get(QUEUE_LABEL) and not rj["metadata"].get("deletionTimestamp")
                  and not _finished(rj)]
        holding = [rj for rj in queued if not (rj.get("spec") or {}).get("suspend")]
        pending = sorted((rj for rj in queued if (rj.get("spec") or {}).get("suspend")), key=self._order)
        for rj in pending[:max(0, self.capacity - len(holding))]:
            meta = rj["metadata"]
            try:
                await self.kube.patch("rayjobs", meta["namespace"], meta["name"], {"spec": {"suspend": False}})
            except KubeError as err:
                log.info("rayjob %s: admission failed: %s", meta["name"], err)
                continue
            self.admitted.append((meta["namespace"], meta["name"]))
            await self.kube.event(rj, "Normal", "Started",
                                  f"Admitted by clusterQueue local (LocalQueue {_labels(rj)[QUEUE_LABEL]})", COMPONENT)
