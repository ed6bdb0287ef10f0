"""The local KubeRay controller: watches RayJobs and RayClusters, reconciles on every event and every
``requeue_seconds``, emulates the Job controller for submitter Jobs, and acts as the garbage collector.

It talks to the API server over HTTP only (User-Agent ``kuberay-local-controller``, exempt from injected faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kuberay_provider.local.clusters import RayClusterReconciler
from kuberay_provider.local.kube import Kube, KubeError
from kuberay_provider.local.kueue import KueueAdmission
from kuberay_provider.local.loops import ReconcileLoops
from kuberay_provider.local.names import RAY_CLUSTER_LABEL, RAY_NODE_TYPE_LABEL
from kuberay_provider.local.rayjobs import RayJobReconciler
from kuberay_provider.local.rayruntime import RayRuntime
from kuberay_provider.local.submitter import SubmitterJobs

JSON = dict[str, Any]
log = logging.getLogger(__name__)
# Dependents the garbage collector looks after, in deletion order.
GC_PLURALS = ("rayclusters", "jobs", "services", "pods")
OWNER_KINDS = ("RayJob", "RayCluster", "Job", "Pod", "Service")


class Controller:
    """KubeRay-v1.7-like operator plus the bits of kube-controller-manager it needs (Job controller, GC) and a
    Kueue-like admission of queued RayJobs (:mod:`kuberay_provider.local.kueue`)."""

    def __init__(self, api_url: str, base_dir: Path, register_log: Callable[[str, str, str, Path], None], *,
                 requeue_seconds: float = 3.0, max_clusters: int = 1, max_worker_nodes: int = 1) -> None:
        self.kube = Kube(api_url)
        self.requeue_seconds = requeue_seconds
        self.runtime = RayRuntime(base_dir, max_clusters=max_clusters, max_worker_nodes=max_worker_nodes)
        self.rayjobs = RayJobReconciler(self.kube, self.runtime)
        self.rayclusters = RayClusterReconciler(self.kube, self.runtime)
        self.kueue = KueueAdmission(self.kube, capacity=max_clusters)
        self.submitters = SubmitterJobs(self.kube, self.runtime, base_dir / "logs", register_log)
        self.reconcile_count = 0
        self.loops = ReconcileLoops(self.kube, ("rayjobs", "rayclusters", "jobs"), self.reconcile_once,
                                    requeue_seconds=requeue_seconds, name="kuberay controller")

    async def start(self) -> None:
        """Open the client and start the watch and reconcile loops."""
        await self.kube.open()
        self.loops.start()

    async def stop(self) -> None:
        """Stop the loops and every local Ray cluster."""
        await self.loops.stop()
        await self.submitters.close()
        for key in self.runtime.active():
            await self.rayclusters.stop(key)
        await asyncio.to_thread(self.runtime.stop_all)  # including stops a cancelled reconcile pass left running
        await self.kube.close()

    def running_clusters(self) -> dict[tuple[str, str], list[int]]:
        """``{(namespace, raycluster): [pids]}`` of the local Ray clusters running now."""
        return self.runtime.running()

    def service_endpoint(self, namespace: str, service: JSON, port: str) -> tuple[str, dict[str, str]] | None:
        """For the API server's service proxy: the address standing for the ready head Pod a Service selects
        (``ray.io/cluster`` + ``ray.io/node-type: head``, as KubeRay's ``<raycluster>-head-svc`` and the RayJob's
        ``<rayjob>-head-svc`` do) on its dashboard port, and the headers the local cluster wants. None while the
        head is not ready (a real Service has no ready endpoint then) and for any other Service or port."""
        selector = (service.get("spec") or {}).get("selector") or {}
        cluster_name = selector.get(RAY_CLUSTER_LABEL)
        if not cluster_name or selector.get(RAY_NODE_TYPE_LABEL) != "head" or port not in ("dashboard", "8265"):
            return None
        cluster = self.runtime.get((namespace, cluster_name))
        if cluster is None or cluster.ready_at is None or not cluster.head_alive():
            return None
        return cluster.dashboard_url, cluster.dashboard.headers

    async def reconcile_once(self) -> None:
        """Reconcile every RayJob, RayCluster and submitter Job, then collect garbage."""
        self.reconcile_count += 1
        rayjobs = await self.kube.list("rayjobs")
        await self.kueue.admit(rayjobs)  # Kueue's own controller; KubeRay sees the admission on its next pass
        for rj in rayjobs:
            try:
                await self.rayjobs.reconcile(rj)
            except KubeError as err:
                log.info("rayjob %s: %s", rj["metadata"]["name"], err)
        await self.rayclusters.reconcile_all(await self.kube.list("rayclusters"))
        await self.submitters.reconcile_all(await self.kube.list("jobs"),
                                            {rj["metadata"]["uid"]: rj for rj in rayjobs})
        await self.collect_garbage()

    async def collect_garbage(self) -> None:
        """Delete dependents whose owners are gone; finish Foreground and Orphan deletions."""
        objects = [(plural, obj) for plural in GC_PLURALS for obj in await self.kube.list(plural)]
        owners = {obj["metadata"]["uid"]: (plural, obj) for plural, obj in objects}
        owners.update({obj["metadata"]["uid"]: ("rayjobs", obj) for obj in await self.kube.list("rayjobs")})
        dependents: dict[str, list[tuple[str, JSON]]] = {}
        for plural, obj in objects:
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("kind") in OWNER_KINDS]
            if not refs:
                continue
            live = [r for r in refs if r["uid"] in owners]
            for ref in live:
                dependents.setdefault(ref["uid"], []).append((plural, obj))
            if not live and not obj["metadata"].get("deletionTimestamp"):
                await self.kube.delete(plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
        for uid, (plural, owner) in owners.items():
            meta = owner["metadata"]
            finalizers = meta.get("finalizers") or []
            if not meta.get("deletionTimestamp"):
                continue
            children = dependents.get(uid, [])
            if "orphan" in finalizers:
                for child_plural, child in children:
                    refs = [r for r in child["metadata"]["ownerReferences"] if r["uid"] != uid]
                    await self.kube.patch(child_plural, child["metadata"]["namespace"], child["metadata"]["name"],
                                          {"metadata": {"ownerReferences": refs or None}})
                await self._drop_finalizer(plural, owner, "orphan")
            elif "foregroundDeletion" in finalizers:
                for child_plural, child in children:
                    if not child["metadata"].get("deletionTimestamp"):
                        await self.kube.delete(child_plural, child["metadata"]["namespace"],
                                               child["metadata"]["name"], "Foreground")
                if not children:
                    await self._drop_finalizer(plural, owner, "foregroundDeletion")

    async def _drop_finalizer(self, plural: str, obj: JSON, finalizer: str) -> None:
        meta = obj["metadata"]
        remaining = [f for f in meta.get("finalizers") or [] if f != finalizer]
        with contextlib.suppress(KubeError):
            await self.kube.patch(plural, meta["namespace"], meta["name"],
                                  {"metadata": {"finalizers": remaining or None}})
