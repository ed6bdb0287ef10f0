"""The resource types the local API server serves, their discovery documents and the events.k8s.io view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kuberay_provider.local.names import RAY_GROUP, RAYCLUSTER_KIND, RAYCLUSTER_PLURAL, RAYJOB_KIND, RAYJOB_PLURAL

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    """One served resource type."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Resources sharing storage with another one (events.k8s.io/v1 events are core/v1 events).
    storage: tuple[str, str] | None = None

    @property
    def api_version(self) -> str:
        """``group/version`` or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """Key of the object map this resource is stored in."""
        return self.storage or (self.group, self.plural)

    @property
    def singular(self) -> str:
        """Lower-case kind."""
        return self.kind.lower()

    @property
    def has_status(self) -> bool:
        """Whether ``/status`` is a separate subresource."""
        return "status" in self.subresources


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, subresources=("status",), short_names=("ns",)),
    Resource("", "v1", "pods", "Pod", subresources=("status", "log"), short_names=("po",), categories=("all",)),
    Resource("", "v1", "services", "Service", subresources=("status",), short_names=("svc",), categories=("all",)),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource("batch", "v1", "jobs", "Job", subresources=("status",), categories=("all",)),
    Resource("events.k8s.io", "v1", "events", "Event", short_names=("ev",), storage=("", "events")),
    Resource(RAY_GROUP, "v1", RAYJOB_PLURAL, RAYJOB_KIND, subresources=("status",), categories=("all",)),
    Resource(RAY_GROUP, "v1", RAYCLUSTER_PLURAL, RAYCLUSTER_KIND, subresources=("status",), categories=("all",)),
    # Served for the local spark-operator double (kuberay_provider.local.sparkapps).
    Resource("sparkoperator.k8s.io", "v1beta2", "sparkapplications", "SparkApplication", subresources=("status",),
             short_names=("sparkapp",), categories=("all",)),
)
BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
GROUPS: dict[str, list[str]] = {}
for _r in RESOURCES:
    GROUPS.setdefault(_r.group, [])
    if _r.version not in GROUPS[_r.group]:
        GROUPS[_r.group].append(_r.version)


def resource_list(group: str, version: str) -> dict[str, Any]:
    """The ``APIResourceList`` discovery document of one group version."""
    items: list[dict[str, Any]] = []
    for res in RESOURCES:
        if (res.group, res.version) != (group, version):
            continue
        entry = {
            "name": res.plural,
            "singularName": res.singular,
            "namespaced": res.namespaced,
            "kind": res.kind,
            "verbs": VERBS,
        }
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.categories:
            entry["categories"] = list(res.categories)
        items.append(entry)
        for sub in res.subresources:
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            kind = "Pod" if sub == "log" else res.kind
            items.append({"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": res.namespaced,
                          "kind": kind, "verbs": verbs})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
            "resources": items}


def group_list() -> dict[str, Any]:
    """The ``APIGroupList`` served at ``/apis``."""
    groups = []
    for group, versions in GROUPS.items():
        if not group:
            continue
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group_document(group: str) -> dict[str, Any]:
    """The ``APIGroup`` document served at ``/apis/<group>``."""
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in GROUPS[group]]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}


def _micro(stamp: str | None) -> str | None:
    """``2026-01-01T00:00:00Z`` as a MicroTime (events.k8s.io requires ``eventTime``)."""
    return stamp.replace("Z", ".000000Z") if stamp and "." not in stamp else stamp


def core_event_to_events_v1(event: dict[str, Any]) -> dict[str, Any]:
    """Present a core/v1 Event as an events.k8s.io/v1 Event."""
    out = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": event.get("metadata", {}),
        "regarding": event.get("involvedObject", {}),
        "note": event.get("message", ""),
        "reason": event.get("reason", ""),
        "type": event.get("type", "Normal"),
        "action": event.get("action") or event.get("reason", ""),
        "eventTime": event.get("eventTime") or _micro(event.get("firstTimestamp")
                                                      or event.get("metadata", {}).get("creationTimestamp")),
        "reportingController": event.get("reportingComponent") or (event.get("source") or {}).get("component", ""),
        "reportingInstance": event.get("reportingInstance", ""),
        "deprecatedCount": event.get("count", 1),
        "deprecatedFirstTimestamp": event.get("firstTimestamp"),
        "deprecatedLastTimestamp": event.get("lastTimestamp"),
    }
    if event.get("related"):
        out["related"] = event["related"]
    return out


def events_v1_to_core_event(event: dict[str, Any]) -> dict[str, Any]:
    """Store an events.k8s.io/v1 Event as a core/v1 Event."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": event.get("metadata", {}),
        "involvedObject": event.get("regarding", {}),
        "message": event.get("note", ""),
        "reason": event.get("reason", ""),
        "type": event.get("type", "Normal"),
        "action": event.get("action", ""),
        "eventTime": event.get("eventTime"),
        "firstTimestamp": event.get("deprecatedFirstTimestamp") or event.get("eventTime"),
        "lastTimestamp": event.get("deprecatedLastTimestamp") or event.get("eventTime"),
        "count": event.get("deprecatedCount", 1),
        "reportingComponent": event.get("reportingController", ""),
        "reportingInstance": event.get("reportingInstance", ""),
        "source": {"component": event.get("reportingController", "")},
    }
