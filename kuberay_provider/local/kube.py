"""A tiny async Kubernetes REST client used by the local controller (User-Agent ``kuberay-local-controller``)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import aiohttp

from kuberay_provider.local.faults import CONTROLLER_USER_AGENT

JSON = dict[str, Any]

PATHS = {
    "rayjobs": "/apis/ray.io/v1",
    "rayclusters": "/apis/ray.io/v1",
    "jobs": "/apis/batch/v1",
    "pods": "/api/v1",
    "services": "/api/v1",
    "events": "/api/v1",
}


class KubeError(Exception):
    """A non-2xx answer."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Kube:
    """Minimal CRUD over HTTP against the local API server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the HTTP session."""
        self.session = aiohttp.ClientSession(headers={"User-Agent": CONTROLLER_USER_AGENT},
                                             timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        """Close the HTTP session."""
        if self.session:
            await self.session.close()

    def url(self, plural: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """The REST URL of a collection or object."""
        url = self.base_url + PATHS[plural]
        if namespace is not None:
            url += f"/namespaces/{namespace}"
        url += f"/{plural}"
        if name is not None:
            url += f"/{name}"
        if sub is not None:
            url += f"/{sub}"
        return url

    async def request(self, method: str, url: str, body: Any = None, content_type: str = "application/json",
                      params: dict[str, str] | None = None) -> Any:
        """Send one request; raise :class:`KubeError` on a non-2xx answer."""
        assert self.session is not None
        headers = {"Content-Type": content_type} if body is not None else {}
        async with self.session.request(method, url, json=body, params=params, headers=headers) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 300:
                raise KubeError(resp.status, data)
            return data

    async def list(self, plural: str, namespace: str | None = None, label_selector: str | None = None) -> list[JSON]:
        """List objects (all namespaces when ``namespace`` is None)."""
        params = {"labelSelector": label_selector} if label_selector else None
        return (await self.request("GET", self.url(plural, namespace), params=params))["items"]

    async def get(self, plural: str, namespace: str, name: str) -> JSON | None:
        """One object, or None if absent."""
        try:
            return await self.request("GET", self.url(plural, namespace, name))
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    async def create(self, plural: str, namespace: str, body: JSON) -> JSON:
        """Create an object."""
        return await self.request("POST", self.url(plural, namespace), body)

    async def replace(self, plural: str, obj: JSON, sub: str | None = None) -> JSON:
        """PUT an object (optimistic concurrency through its resourceVersion)."""
        meta = obj["metadata"]
        return await self.request("PUT", self.url(plural, meta["namespace"], meta["name"], sub), obj)

    async def patch(self, plural: str, namespace: str, name: str, patch: JSON, sub: str | None = None) -> JSON:
        """Merge-patch an object."""
        return await self.request("PATCH", self.url(plural, namespace, name, sub), patch,
                                  "application/merge-patch+json")

    async def set_status(self, plural: str, namespace: str, name: str, status: JSON) -> JSON:
        """Replace ``status`` through the /status subresource (JSON patch, no resourceVersion check)."""
        return await self.request("PATCH", self.url(plural, namespace, name, "status"),
                                  [{"op": "add", "path": "/status", "value": status}], "application/json-patch+json")

    async def delete(self, plural: str, namespace: str, name: str, policy: str = "Background") -> bool:
        """Delete an object; False if it was already gone."""
        try:
            await self.request("DELETE", self.url(plural, namespace, name), {"propagationPolicy": policy})
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def event(self, obj: JSON, event_type: str, reason: str, message: str, component: str) -> None:
        """Record a core/v1 Event about ``obj``."""
        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message, "type": event_type, "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "source": {"component": component}, "reportingComponent": component,
            "reportingInstance": "kuberay-local", "action": reason,
        }
        await self.create("events", meta["namespace"], body)


def owner_reference(obj: JSON) -> JSON:
    """A controller ownerReference pointing at ``obj``."""
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
