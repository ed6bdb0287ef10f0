"""A recording stand-in for KubeRayHook in operator unit tests (the integration tests use the real one)."""

from __future__ import annotations

from typing import Any

from kuberay_provider import constants as c


class FakeHook:
    """Holds objects per (kind, namespace, name); records deletes; ``namespace`` is the connection's."""

    def __init__(self, namespace: str | None = None, objects: list[dict[str, Any]] | None = None,
                 pods: list[dict[str, Any]] | None = None) -> None:
        self.namespace = namespace
        self.objects = list(objects or [])
        self.pods = list(pods or [])
        self.deleted: list[tuple[str, str, str]] = []
        self.requests: list[tuple[str, ...]] = []

    def get_namespace(self) -> str | None:
        return self.namespace

    def _find(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        for obj in self.objects:
            meta = obj["metadata"]
            if obj.get("kind") == kind and meta["name"] == name and meta.get("namespace") == namespace:
                return obj
        return None

    def get_object(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        self.requests.append(("get", kind, namespace, name))
        return self._find(kind, name, namespace)

    def get_rayjob(self, name: str, namespace: str) -> dict[str, Any] | None:
        return self.get_object(c.RAYJOB_KIND, name, namespace)

    def list_objects(self, kind: str, namespace: str | None, label_selector: str = "") -> list[dict[str, Any]]:
        self.requests.append(("list", kind, str(namespace), label_selector))
        return [o for o in self.objects if o.get("kind") == kind and namespace in (None, o["metadata"].get("namespace"))]

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        self.requests.append(("pods", namespace, label_selector))
        return [p for p in self.pods if p["metadata"].get("namespace") == namespace]

    def delete_object(self, kind: str, name: str, namespace: str, propagation: str = "Foreground") -> bool:
        self.deleted.append((kind, namespace, name))
        obj = self._find(kind, name, namespace)
        if obj is None:
            return False
        self.objects.remove(obj)
        return True


def raycluster(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "ray.io/v1", "kind": c.RAYCLUSTER_KIND,
            "metadata": {"name": name, "namespace": namespace}, "status": {"state": "ready"}}
