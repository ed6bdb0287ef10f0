"""Reconciles RayCluster objects: head/worker Pods, the head Service, a real local Ray cluster and the status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from kuberay_provider.local import pods
from kuberay_provider.local.apiserver import now_iso, random_suffix
from kuberay_provider.local.kube import Kube, KubeError, owner_reference
from kuberay_provider.local.names import RAY_CLUSTER_LABEL, RAY_NODE_TYPE_LABEL
from kuberay_provider.local.rayruntime import LocalRayCluster, RayRuntime, ray_start_flags

JSON = dict[str, Any]
log = logging.getLogger(__name__)

SIMULATE_ANNOTATION = "kuberay-local.dev/simulate"
READY_TIMEOUT_SECONDS = 180.0
COMPONENT = "raycluster-controller"


def parse_cpu(quantity: Any) -> float:
    """A Kubernetes CPU quantity (``2``, ``500m``, ``1.5``) in cores."""
    text = str(quantity).strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def container_cpus(pod_template: JSON, ray_start_params: JSON | None) -> int:
    """Logical Ray CPUs of a node: ``rayStartParams.num-cpus`` or the first container's cpu (rounded up, min 1)."""
    params = ray_start_params or {}
    if "num-cpus" in params:
        return max(0, math.ceil(float(params["num-cpus"])))
    containers = (pod_template.get("spec") or {}).get("containers") or [{}]
    resources = containers[0].get("resources") or {}
    cpu = (resources.get("requests") or {}).get("cpu") or (resources.get("limits") or {}).get("cpu")
    return max(1, math.ceil(parse_cpu(cpu))) if cpu is not None else 1


def ray_image(pod_template: JSON) -> str | None:
    """The image of a Ray node's container (the first one, as KubeRay assumes), which decides what it can import."""
    containers = (pod_template.get("spec") or {}).get("containers") or [{}]
    return containers[0].get("image")


def worker_replicas(group: JSON) -> int:
    """Desired replicas of a worker group (clamped to min/max, times ``numOfHosts``, 0 if suspended)."""
    if group.get("suspend"):
        return 0
    low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
    replicas = group.get("replicas", low)
    return max(low, min(high, replicas)) * max(1, group.get("numOfHosts", 1))


def pod_labels(rc: JSON, node_type: str, group: str) -> dict[str, str]:
    """Labels KubeRay puts on Ray pods (template labels cannot override the ray.io ones)."""
    name = rc["metadata"]["name"]
    return {
        RAY_CLUSTER_LABEL: name,
        RAY_NODE_TYPE_LABEL: node_type,
        "ray.io/group": group,
        "ray.io/identifier": f"{name}-{node_type}",
        "ray.io/is-ray-node": "yes",
        "app.kubernetes.io/name": "kuberay",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }


class RayClusterReconciler:
    """Drives every RayCluster, standalone or owned by a RayJob."""

    def __init__(self, kube: Kube, runtime: RayRuntime) -> None:
        self.kube = kube
        self.runtime = runtime
        self._starting: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._restarts: dict[tuple[str, str], int] = {}

    async def reconcile_all(self, clusters: list[JSON]) -> None:
        """Stop Ray for vanished/deleting RayClusters, then reconcile the others."""
        live = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in clusters
                if not c["metadata"].get("deletionTimestamp")}
        for key in self.runtime.active():
            cluster = self.runtime.get(key)
            rc = live.get(key)
            if rc is None or (cluster is not None and rc["metadata"]["uid"] != cluster.owner_uid):
                await self.stop(key)
        for rc in live.values():
            try:
                await self.reconcile(rc)
            except KubeError as err:
                log.info("raycluster %s: %s", rc["metadata"]["name"], err)

    async def stop(self, key: tuple[str, str]) -> None:
        """Stop the local Ray cluster of ``key`` (if any)."""
        task = self._starting.pop(key, None)
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        seconds = await asyncio.to_thread(self.runtime.stop, key)
        log.info("stopped Ray cluster %s/%s in %.1fs", key[0], key[1], seconds)

    async def reconcile(self, rc: JSON) -> None:
        """One reconcile pass of a RayCluster."""
        meta, spec = rc["metadata"], rc.get("spec") or {}
        if spec.get("managedBy") not in (None, "ray.io/kuberay-operator"):
            return
        ns, name = meta["namespace"], meta["name"]
        key = (ns, name)
        simulate = (meta.get("annotations") or {}).get(SIMULATE_ANNOTATION, "")
        owner = owner_reference(rc)
        await self._ensure_service(rc, owner)
        if spec.get("suspend"):
            await self.stop(key)
            for pod in await self.kube.list("pods", ns, f"{RAY_CLUSTER_LABEL}={name}"):
                await self.kube.delete("pods", ns, pod["metadata"]["name"])
            await self._write_status(rc, {**self._desired(rc), "state": "suspended"})
            return
        head_spec = spec.get("headGroupSpec") or {}
        head_pod = await self._ensure_pods(rc, owner)
        cluster = self.runtime.get(key)
        ready = False
        if simulate == "image-pull-error":
            already = any("ErrImagePull" in str(cs.get("state")) or "ImagePullBackOff" in str(cs.get("state"))
                          for cs in (head_pod.get("status") or {}).get("containerStatuses") or [])
            reason = "ImagePullBackOff" if already else "ErrImagePull"
            head_status = pods.waiting(head_pod, reason, "simulated image pull failure (kuberay-local)")
        elif simulate == "unschedulable":
            head_status = pods.unschedulable(head_pod)
        elif cluster is None:
            workers, worker_images, worker_flags = [], [], []
            for group in spec.get("workerGroupSpecs") or []:
                cpus = container_cpus(group.get("template") or {}, group.get("rayStartParams"))
                workers += [cpus] * worker_replicas(group)
                worker_images += [ray_image(group.get("template") or {})] * worker_replicas(group)
                worker_flags += [ray_start_flags(group.get("rayStartParams"), group.get("template"))] * worker_replicas(group)
            head_cpus = container_cpus(head_spec.get("template") or {}, head_spec.get("rayStartParams"))
            cluster = self.runtime.reserve(key, head_cpus, workers, meta["uid"], head_flags=ray_start_flags(
                head_spec.get("rayStartParams"), head_spec.get("template")), worker_flags=worker_flags)
            if cluster is None:
                head_status = pods.unschedulable(head_pod)
            else:
                cluster.image = ray_image(head_spec.get("template") or {})
                cluster.worker_images = worker_images
                self._starting[key] = asyncio.create_task(self._start(cluster))
                head_status = pods.waiting(head_pod, "ContainerCreating")
        elif not cluster.head_alive() and (cluster.ready_at is not None or self._start_finished(key)):
            # The head died (after it was ready, or while it was starting): record the container crash, drop the
            # cluster; the next pass starts a new one, as kubelet restarts a crashed container.
            self._restarts[key] = self._restarts.get(key, 0) + 1
            head_status = pods.terminated(head_pod, 1, self._restarts[key], final=False)
            await self.stop(key)
        elif cluster.ready_at is not None:
            ready = True
            head_status = pods.running(head_pod, self._restarts.get(key, 0))
            if await asyncio.to_thread(self.runtime.restart_exited_workers, cluster):
                log.info("Ray cluster %s/%s: restarted a worker node that exited", *key)
        else:
            head_status = pods.waiting(head_pod, "ContainerCreating")
        await self._write_pod_status(head_pod, head_status)
        for pod in await self.kube.list("pods", ns, f"{RAY_CLUSTER_LABEL}={name},{RAY_NODE_TYPE_LABEL}=worker"):
            await self._write_pod_status(pod, pods.running(pod) if ready else pods.waiting(pod, "PodInitializing"))
        await self._write_status(rc, self._status(rc, head_pod, ready))

    def _start_finished(self, key: tuple[str, str]) -> bool:
        task = self._starting.get(key)
        return task is not None and task.done()

    async def _start(self, cluster: LocalRayCluster) -> None:
        await asyncio.to_thread(self.runtime.start, cluster)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and cluster.head_alive():
            if await asyncio.to_thread(cluster.dashboard_ready):
                cluster.ready_at = time.monotonic()
                log.info("Ray cluster %s/%s ready in %.1fs", *cluster.key, cluster.ready_at - cluster.started_at)
                return
            await asyncio.sleep(0.5)
        head_log = cluster.log_dir / "head.log"
        last = head_log.read_text(errors="replace").splitlines()[-5:] if head_log.exists() else []
        log.warning("Ray cluster %s/%s did not become ready; head log ends: %s", *cluster.key, " | ".join(last))

    async def _ensure_service(self, rc: JSON, owner: JSON) -> None:
        ns, name = rc["metadata"]["namespace"], rc["metadata"]["name"]
        svc_name = f"{name}-head-svc"
        if await self.kube.get("services", ns, svc_name) is not None:
            return
        labels = {RAY_CLUSTER_LABEL: name, RAY_NODE_TYPE_LABEL: "head", "ray.io/identifier": f"{name}-head",
                  "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"}
        ports = [{"name": n, "port": p, "protocol": "TCP", "targetPort": p}
                 for n, p in (("client", 10001), ("dashboard", 8265), ("gcs-server", 6379), ("metrics", 8080))]
        body = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": svc_name, "namespace": ns, "labels": labels, "ownerReferences": [owner]},
                "spec": {"type": "ClusterIP", "clusterIP": "None", "ports": ports,
                         "selector": {RAY_CLUSTER_LABEL: name, RAY_NODE_TYPE_LABEL: "head"}}}
        with contextlib.suppress(KubeError):
            await self.kube.create("services", ns, body)

    async def _ensure_pods(self, rc: JSON, owner: JSON) -> JSON:
        """Create missing head/worker pods; return the head pod."""
        ns, name = rc["metadata"]["namespace"], rc["metadata"]["name"]
        spec = rc.get("spec") or {}
        existing = await self.kube.list("pods", ns, f"{RAY_CLUSTER_LABEL}={name}")
        heads = [p for p in existing if p["metadata"]["labels"].get(RAY_NODE_TYPE_LABEL) == "head"]
        if heads:
            head = heads[0]
        else:
            template = (spec.get("headGroupSpec") or {}).get("template") or {}
            labels = {**((template.get("metadata") or {}).get("labels") or {}), **pod_labels(rc, "head", "headgroup")}
            head = await self.kube.create("pods", ns, pods.pod_object(
                f"{name}-head-{random_suffix()}", ns, labels, owner, template.get("spec") or {}))
        for group in spec.get("workerGroupSpecs") or []:
            group_name = group.get("groupName", "workers")
            have = [p for p in existing if p["metadata"]["labels"].get("ray.io/group") == group_name]
            for _ in range(worker_replicas(group) - len(have)):
                template = group.get("template") or {}
                labels = {**((template.get("metadata") or {}).get("labels") or {}),
                          **pod_labels(rc, "worker", group_name)}
                await self.kube.create("pods", ns, pods.pod_object(
                    f"{name}-{group_name}-worker-{random_suffix()}", ns, labels, owner, template.get("spec") or {}))
        return head

    async def _write_pod_status(self, pod: JSON, status: JSON) -> None:
        if pod.get("status") == status:
            return
        meta = pod["metadata"]
        problem = pods.warning_for(pod.get("status") or {}, status)
        with contextlib.suppress(KubeError):
            await self.kube.set_status("pods", meta["namespace"], meta["name"], status)
            pod["status"] = status
            if problem:  # what kubelet / the scheduler record; Events outlive the Pod, so diagnostics survive cleanup
                await self.kube.event(pod, "Warning", *problem)

    @staticmethod
    def _desired(rc: JSON) -> JSON:
        spec = rc.get("spec") or {}
        groups = spec.get("workerGroupSpecs") or []
        head = spec.get("headGroupSpec") or {}
        cpus = container_cpus(head.get("template") or {}, head.get("rayStartParams")) + sum(
            container_cpus(g.get("template") or {}, g.get("rayStartParams")) * worker_replicas(g) for g in groups)
        return {
            "desiredWorkerReplicas": sum(worker_replicas(g) for g in groups),
            "minWorkerReplicas": sum(g.get("minReplicas", 0) * max(1, g.get("numOfHosts", 1)) for g in groups),
            "maxWorkerReplicas": sum(g.get("maxReplicas", 0) * max(1, g.get("numOfHosts", 1)) for g in groups),
            "desiredCPU": str(cpus),
        }

    def _status(self, rc: JSON, head_pod: JSON, ready: bool) -> JSON:
        name = rc["metadata"]["name"]
        old = rc.get("status") or {}
        status = self._desired(rc)
        status["readyWorkerReplicas"] = status["desiredWorkerReplicas"] if ready else 0
        status["availableWorkerReplicas"] = status["readyWorkerReplicas"]
        status["endpoints"] = {"client": "10001", "dashboard": "8265", "gcs-server": "6379", "metrics": "8080"}
        status["head"] = {"podName": head_pod["metadata"]["name"], "serviceName": f"{name}-head-svc"}
        status["observedGeneration"] = rc["metadata"].get("generation", 1)
        status["conditions"] = [
            {"type": "HeadPodReady", "status": "True" if ready else "False", "message": "",
             "reason": "HeadPodRunningAndReady" if ready else "HeadPodNotReady"},
            {"type": "RayClusterProvisioned", "status": "True" if ready or self._provisioned(old) else "False",
             "message": "" if ready or self._provisioned(old) else "RayCluster Pods are being provisioned for first time",
             "reason": "AllPodRunningAndReadyFirstTime" if ready or self._provisioned(old) else "RayClusterPodsProvisioning"},
        ]
        if ready:
            status["head"].update(podIP="127.0.0.1", serviceIP="127.0.0.1")
            status["state"] = "ready"
            transitions = dict(old.get("stateTransitionTimes") or {})
            transitions.setdefault("ready", now_iso() if old.get("state") != "ready" else transitions.get("ready"))
            status["stateTransitionTimes"] = transitions
        return status

    @staticmethod
    def _provisioned(old: JSON) -> bool:
        return any(c.get("type") == "RayClusterProvisioned" and c.get("status") == "True"
                   for c in old.get("conditions") or [])

    async def _write_status(self, rc: JSON, status: JSON) -> None:
        for cond in status.get("conditions") or []:
            prior = next((c for c in (rc.get("status") or {}).get("conditions") or []
                          if c.get("type") == cond["type"]), None)
            cond["lastTransitionTime"] = (prior or {}).get("lastTransitionTime") if prior and prior.get(
                "status") == cond["status"] else now_iso()
        if rc.get("status") == status:
            return
        body = dict(rc, status=status)
        try:
            updated = await self.kube.replace("rayclusters", body, sub="status")
            rc.update(updated)
        except KubeError as err:
            if err.status not in (404, 409):
                raise
