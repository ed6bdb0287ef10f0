"""A small Kubernetes API server (aiohttp) good enough for the official clients, kubectl and Airflow's KubernetesHook.

Why not a kmock subclass: kmock 0.8 misses most of what the clients rely on (watch parsing, 201, resourceVersions,
selectors, PUT, /status separation, watch resume/410, bookmarks). Overriding all of that leaves little of kmock, so this
module is a self-contained aiohttp app with its own in-memory store, which is shorter and easier to reason about.

Everything runs on one asyncio loop; store mutations are synchronous, so they are atomic with respect to watches.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import datetime as dt
import json
import pickle
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from kuberay_provider.local import podlogs, schema, service_proxy
from kuberay_provider.local import resources as res_mod
from kuberay_provider.local.faults import CONTROLLER_USER_AGENT, Faults, RequestRecord
from kuberay_provider.local.resources import BY_PATH, GROUPS, Resource
from kuberay_provider.local.selectors import (
    Predicate,
    SelectorError,
    field_selector,
    json_patch,
    label_selector,
    merge_patch,
    required_labels,
)

JSON = dict[str, Any]
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
EXTERNAL = web.RequestKey("external", bool)
WATCH_BATCH = 500  # queued watch events written at once
RECORDED = web.RequestKey("recorded", bool)  # a stream (watch, log follow) is recorded when its headers go out
KUBE_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-kuberay-local",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def clone(obj: Any) -> Any:
    """A deep copy of a JSON object (what ``copy.deepcopy`` returns, three to four times faster: the store copies
    every object it stores, serves and sends to a watcher)."""
    return pickle.loads(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))


def now_iso() -> str:
    """Current UTC time in Kubernetes' RFC 3339 seconds format."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error answered as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> JSON:
        """The ``v1.Status`` body."""
        body: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def _error_response(err: ApiError, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response(err.status(), status=err.code, headers=headers)


def _not_found(res: Resource, name: str) -> ApiError:
    group = f".{res.group}" if res.group else ""
    return ApiError(404, "NotFound", f'{res.plural}{group} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


@dataclass
class WatchEvent:
    """One change recorded in the history window."""

    rv: int
    storage: tuple[str, str]
    type: str
    obj: JSON


@dataclass(eq=False)
class Watcher:
    """An open watch stream."""

    storage: tuple[str, str]
    namespace: str | None
    predicate: Predicate
    queue: asyncio.Queue[WatchEvent | str]
    external: bool

    def wants(self, event: WatchEvent) -> bool:
        """Whether the event belongs to this watch."""
        ns = event.obj["metadata"].get("namespace")
        return (
            event.storage == self.storage
            and (self.namespace is None or ns == self.namespace)
            and self.predicate(event.obj)
        )


@dataclass
class LogSource:
    """Where a pod container's log lives (registered by the controller).

    ``cri``: the file holds kubelet-style CRI records (see :mod:`kuberay_provider.local.podlogs`), which lets the
    endpoint honour ``timestamps`` and ``sinceSeconds``; otherwise it is served as raw bytes.
    """

    path: Path
    cri: bool = False


@dataclass(frozen=True)
class Selection:
    """A compiled label + field selector; ``labels``: the ``key=value`` terms a label index can answer."""

    match: Predicate
    labels: dict[str, str]

    def __call__(self, obj: JSON) -> bool:
        return self.match(obj)


def _labels_of(obj: JSON | None) -> set[tuple[str, str]]:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return {(k, str(v)) for k, v in labels.items()} if isinstance(labels, dict) else set()


class ObjectStore:
    """In-memory objects, a global resourceVersion counter and a bounded history of changes for watches.

    Indexes (kept by :meth:`commit`, the only writer): each storage key's object keys in sorted order (lists and
    their pages cost what they return, not what is stored) and its objects by label ``(key, value)``.
    """

    def __init__(self, history_size: int) -> None:
        self.objects: dict[tuple[str, str], dict[tuple[str, str], JSON]] = {}
        self.rv = 0
        self.history: deque[WatchEvent] = deque(maxlen=history_size)
        self.expired_before = 0  # resourceVersions below this cannot be watched from any more
        self.watchers: set[Watcher] = set()
        self._sorted: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._by_label: dict[tuple[str, str], dict[tuple[str, str], set[tuple[str, str]]]] = {}

    def bucket(self, storage: tuple[str, str]) -> dict[tuple[str, str], JSON]:
        """The object map of one storage key."""
        return self.objects.setdefault(storage, {})

    def sorted_keys(self, storage: tuple[str, str]) -> list[tuple[str, str]]:
        """The ``(namespace, name)`` keys of one storage key, sorted (do not modify)."""
        return self._sorted.get(storage, [])

    def keys_with_labels(self, storage: tuple[str, str], labels: dict[str, str]) -> list[tuple[str, str]]:
        """The sorted keys of the objects carrying every ``labels`` item (from the label index)."""
        index = self._by_label.get(storage, {})
        sets = sorted((index.get((k, v), set()) for k, v in labels.items()), key=len)
        if not sets or not sets[0]:
            return []
        return sorted(sets[0].intersection(*sets[1:]))

    def _reindex(self, storage: tuple[str, str], key: tuple[str, str], old: JSON | None, new: JSON | None) -> None:
        keys = self._sorted.setdefault(storage, [])
        if old is None and new is not None:
            bisect.insort(keys, key)
        elif old is not None and new is None:
            at = bisect.bisect_left(keys, key)
            if at < len(keys) and keys[at] == key:
                del keys[at]
        index = self._by_label.setdefault(storage, {})
        before, after = _labels_of(old), _labels_of(new)
        for item in before - after:
            members = index.get(item)
            if members is not None:
                members.discard(key)
                if not members:
                    del index[item]
        for item in after - before:
            index.setdefault(item, set()).add(key)

    def oldest_servable(self) -> int:
        """The oldest resourceVersion a watch may resume from."""
        oldest = self.history[0].rv - 1 if len(self.history) == self.history.maxlen else 0
        return max(oldest, self.expired_before)

    def commit(self, storage: tuple[str, str], kind: str, obj: JSON) -> JSON:
        """Give ``obj`` a new resourceVersion, store or remove it, and notify watchers."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        bucket = self.bucket(storage)
        old = bucket.get(key)
        if kind == "DELETED":
            bucket.pop(key, None)
            self._reindex(storage, key, old, None)
        else:
            bucket[key] = obj
            self._reindex(storage, key, old, obj)
        event = WatchEvent(self.rv, storage, kind, clone(obj))
        self.history.append(event)
        for watcher in list(self.watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)
        return obj


class KubeAPIServer:
    """The local Kubernetes API server.

    Test hooks: :attr:`requests` (list of :class:`RequestRecord`), :attr:`faults` (:class:`Faults`),
    :meth:`register_log` (pod logs), and synchronous helpers that run on the server loop.
    """

    def __init__(self, *, history_size: int = 20000, bookmark_interval: float = 5.0) -> None:
        self.store = ObjectStore(history_size)
        self.faults = Faults()
        self.faults.expire_watches_hook = self._threadsafe(self._expire_watches)
        self.faults.drop_watches_hook = self._threadsafe(self._drop_watches)
        self.requests: list[RequestRecord] = []
        self.bookmark_interval = bookmark_interval
        self.log_sources: dict[tuple[str, str, str], LogSource] = {}
        self.url = ""
        self.started_at = now_iso()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._streams: set[web.StreamResponse] = set()
        # HTTPS + bearer tokens (GKE mode of the local stack): see start_tls. The plain-HTTP site stays for the
        # controllers (the cluster's own components) on loopback.
        self.tls_url = ""
        self.authenticate: Callable[[str | None], str | None] | None = None  # token -> principal, None: refuse
        self.authorize: Callable[[str, JSON], bool] | None = None  # (principal, resourceAttributes) -> allowed
        self.unauthorized = 0  # 401s answered
        # The service proxy's endpoints (set by LocalStack, answered by the controller): see service_proxy.
        self.resolve_service: service_proxy.Resolver | None = None
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_response_prepare.append(self._record_stream)
        self.app = app

    # ----------------------------------------------------------------- lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns the base URL."""
        self.loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    async def start_tls(self, ssl_context: Any, host: str = "127.0.0.1", port: int = 0,
                        authenticate: Callable[[str | None], str | None] | None = None) -> str:
        """Also serve HTTPS with ``ssl_context`` (after :meth:`start`); with ``authenticate``, requests over it
        need a bearer token it accepts (401 otherwise). Returns the ``https://`` URL."""
        assert self._runner is not None, "start() first"
        self.authenticate = authenticate
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.tls_url = f"https://{host}:{sock.getsockname()[1]}"
        return self.tls_url

    def _authenticated(self, request: web.Request) -> tuple[bool, str]:
        """(accepted, principal) of an HTTPS request; plain-HTTP requests are the loopback controllers'."""
        if not request.secure or self.authenticate is None:
            return True, "system:anonymous" if request.secure else "system:kuberay-local"
        auth = request.headers.get("Authorization", "")
        principal = self.authenticate(auth[7:] if auth.startswith("Bearer ") else None)
        return principal is not None, principal or ""

    def _access_review(self, principal: str, body: Any) -> web.Response:
        """A SelfSubjectAccessReview answered by :attr:`authorize` (everything allowed without one)."""
        spec = (body or {}).get("spec") or {}
        attributes = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
        allowed = self.authorize(principal, attributes) if self.authorize else True
        status: JSON = {"allowed": bool(allowed)}
        if not allowed:
            status["reason"] = f"RBAC: {principal} may not {attributes.get('verb')} {attributes.get('resource')}"
        return web.json_response({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                                  "metadata": {"creationTimestamp": None}, "spec": spec, "status": status},
                                 status=201)

    async def stop(self) -> None:
        """Close open watches and stop listening."""
        for watcher in list(self.store.watchers):
            watcher.queue.put_nowait("close")
        if self._runner:
            await self._runner.cleanup()

    def register_log(self, namespace: str, pod: str, container: str, path: Path, *, cri: bool = False) -> None:
        """Serve the file at ``path`` as the log of ``container`` in ``namespace/pod`` (``cri``: CRI records)."""
        self.log_sources[(namespace, pod, container)] = LogSource(path, cri)

    def external_requests(self) -> list[RequestRecord]:
        """The request log without the controller's own requests."""
        return [r for r in self.requests if r.external]

    def _threadsafe(self, func: Callable[[], None]) -> Callable[[], None]:
        def call() -> None:
            if self.loop is None:
                return
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self.loop:
                func()
            else:
                self.loop.call_soon_threadsafe(func)

        return call

    async def _proxy_to_service(self, request: web.Request, target: service_proxy.ProxyTarget) -> web.StreamResponse:
        service = self.get(BY_PATH[("", "v1", "services")], target.namespace, target.service)  # 404 if absent
        port = service_proxy.port_of(service, target.port)
        if port is None:
            raise ApiError(404, "NotFound", f"no such port {target.port!r} on service {target.service!r}")
        endpoint = self.resolve_service(target.namespace, service, port) if self.resolve_service else None
        if endpoint is None:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{target.service}"')
        return await service_proxy.forward(request, *endpoint, target.path)

    def _expire_watches(self) -> None:
        self.store.expired_before = self.store.rv + 1
        for watcher in list(self.store.watchers):
            if watcher.external:
                watcher.queue.put_nowait("expire")

    def _drop_watches(self) -> None:
        for watcher in list(self.store.watchers):
            if watcher.external:
                watcher.queue.put_nowait("drop")

    # ----------------------------------------------------------------- middleware
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        external = request.headers.get("User-Agent", "") != CONTROLLER_USER_AGENT
        request[EXTERNAL] = external
        response: web.StreamResponse
        accepted, principal = self._authenticated(request)
        if not accepted:
            self.unauthorized += 1
            response = _error_response(ApiError(401, "Unauthorized", "Unauthorized"))
            self._record(request, response.status, external)
            return response
        if request.method == "POST" and request.path.rstrip("/") == \
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            response = self._access_review(principal, await self._body(request, allow_empty=True))
            self._record(request, response.status, external)
            return response
        if external:
            status, retry_after, delay = self.faults.take(request.method, request.path)
            if delay:
                await asyncio.sleep(delay)
            if status:
                reason = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "InternalError")
                response = _error_response(ApiError(status, reason, f"injected fault: HTTP {status}"), retry_after)
                self._record(request, response.status, external)
                return response
        try:
            response = await handler(request)
        except ApiError as err:
            response = _error_response(err)
        if not request.get(RECORDED):
            self._record(request, response.status, external)
        return response

    async def _record_stream(self, request: web.Request, response: web.StreamResponse) -> None:
        """Record a streamed response (watch, log follow) once it is served: its client may close it at any time,
        and the handler only notices when it next writes."""
        if type(response) is web.StreamResponse:
            request[RECORDED] = True
            self._record(request, response.status, request.get(EXTERNAL, True))

    def _record(self, request: web.Request, status: int, external: bool) -> None:
        self.requests.append(RequestRecord(request.method, request.path, dict(request.query), status, external,
                                           user_agent=request.headers.get("User-Agent", "")))

    # ----------------------------------------------------------------- routing
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        proxied = service_proxy.parse(request.path)
        if proxied is not None:
            return await self._proxy_to_service(request, proxied)
        parts = [p for p in request.path.split("/") if p]
        if parts in (["version"], ["healthz"], ["readyz"], ["livez"]):
            return web.json_response(KUBE_VERSION) if parts[0] == "version" else web.Response(text="ok")
        if parts == ["api"]:
            return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})
        if parts == ["apis"]:
            return web.json_response(res_mod.group_list())
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            group, rest = "", parts[1:]
        else:
            group, rest = parts[1], parts[2:]
        if group not in GROUPS:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return web.json_response(res_mod.group_document(group))
        version, rest = rest[0], rest[1:]
        if version not in GROUPS[group]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return web.json_response(res_mod.resource_list(group, version))
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_PATH:
            namespace, rest = rest[1], rest[2:]
        res = BY_PATH.get((group, version, rest[0]))
        if res is None or len(rest) > 3 or (namespace is not None and not res.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in res.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and name is not None and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await self._handle(request, res, namespace, name, sub)

    async def _handle(
        self, request: web.Request, res: Resource, namespace: str | None, name: str | None, sub: str | None
    ) -> web.StreamResponse:
        method, query = request.method, request.query
        if name is None:
            if method == "GET":
                pred = self._predicate(query)
                if query.get("watch", "").lower() in ("true", "1"):
                    return await self._watch(request, res, namespace, pred)
                try:
                    limit = int(query["limit"]) if query.get("limit") else None
                except ValueError as exc:
                    raise ApiError(400, "BadRequest", f"invalid limit {query.get('limit')!r}") from exc
                return web.json_response(self.list_objects(res, namespace, pred, limit=limit,
                                                           continue_token=query.get("continue") or None))
            if method == "POST":
                body = await self._body(request)
                return web.json_response(self.create(res, namespace, body), status=201)
            if method == "DELETE":
                items = self.list_objects(res, namespace, self._predicate(query))["items"]
                for item in items:
                    self.delete(res, namespace, item["metadata"]["name"], None)
                return web.json_response({"kind": f"{res.kind}List", "apiVersion": res.api_version,
                                          "metadata": {"resourceVersion": str(self.store.rv)}, "items": items})
            raise ApiError(405, "MethodNotAllowed", f"method {method} not allowed")
        if sub == "log":
            return await self._pod_log(request, namespace or "", name)
        if method == "GET":
            return web.json_response(self.get(res, namespace, name))
        if method == "PUT":
            body = await self._body(request)
            return web.json_response(self.replace(res, namespace, name, body, sub))
        if method == "PATCH":
            body = await self._body(request)
            return web.json_response(self.patch(res, namespace, name, body, request.content_type, sub))
        if method == "DELETE":
            options = await self._body(request, allow_empty=True)
            policy = options.get("propagationPolicy") or query.get("propagationPolicy")
            preconditions = options.get("preconditions") or {}
            return web.json_response(self.delete(res, namespace, name, policy, preconditions))
        raise ApiError(405, "MethodNotAllowed", f"method {method} not allowed")

    @staticmethod
    async def _body(request: web.Request, allow_empty: bool = False) -> Any:
        if "protobuf" in request.content_type or "yaml" in request.content_type:
            raise ApiError(415, "UnsupportedMediaType", f"the body content type {request.content_type!r} is not "
                           "supported; send JSON")
        raw = await request.read()
        if not raw:
            if allow_empty:
                return {}
            raise ApiError(400, "BadRequest", "empty request body")
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ApiError(400, "BadRequest", f"invalid JSON: {exc}") from exc

    @staticmethod
    def _predicate(query: Any) -> Selection:
        try:
            labels = label_selector(query.get("labelSelector"))
            fields = field_selector(query.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc
        return Selection(lambda obj: labels(obj) and fields(obj), required_labels(query.get("labelSelector")))

    # ----------------------------------------------------------------- views
    @staticmethod
    def _view(res: Resource, obj: JSON) -> JSON:
        if res.storage:
            return res_mod.core_event_to_events_v1(obj)
        return obj

    def _stored(self, res: Resource, namespace: str | None, name: str) -> JSON | None:
        return self.store.bucket(res.storage_key).get((namespace or "", name))

    # ----------------------------------------------------------------- operations (synchronous, on the loop)
    def list_objects(self, res: Resource, namespace: str | None, pred: Predicate | None = None, *,
                     limit: int | None = None, continue_token: str | None = None) -> JSON:
        """A ``<Kind>List`` of the matching objects, with the current resourceVersion.

        ``limit``/``continue`` page through the objects in key order as the real API server does; the pages after
        the first report the first page's resourceVersion (so a watch resumed from it replays what changed
        meanwhile: a client sees every change at least once, as with a real server's consistent pages).
        """
        rv, after = str(self.store.rv), None
        if continue_token:
            try:
                state = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                rv, after = str(state["rv"]), tuple(state["after"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError(400, "BadRequest", "invalid continue token") from exc
        items, last, more = [], None, False
        bucket = self.store.bucket(res.storage_key)
        required = getattr(pred, "labels", None) if not res.storage else None  # (events.k8s.io: a view)
        keys = self.store.keys_with_labels(res.storage_key, required) if required \
            else self.store.sorted_keys(res.storage_key)
        start = bisect.bisect_left(keys, (namespace, "")) if namespace is not None else 0
        if after is not None:
            start = max(start, bisect.bisect_right(keys, after))
        for at in range(start, len(keys)):
            key = keys[at]
            ns = key[0]
            if namespace is not None and ns != namespace:
                if ns > namespace:
                    break
                continue
            view = self._view(res, bucket[key])
            if pred is None or pred(view):
                if limit and len(items) >= limit:
                    more = True
                    break
                items.append(clone(view))
                last = key
        if res.plural == "namespaces" and not res.group:
            items = self._with_implicit_namespaces(items, pred)
        meta: JSON = {"resourceVersion": rv}
        if more and last is not None:
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"rv": rv, "after": list(last)}).encode()).decode()
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items}

    def _implicit_namespace(self, name: str) -> JSON:
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                             "resourceVersion": "1", "creationTimestamp": self.started_at,
                             "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def _with_implicit_namespaces(self, items: list[JSON], pred: Predicate | None) -> list[JSON]:
        names = {i["metadata"]["name"] for i in items}
        used = {"default"} | {ns for bucket in self.store.objects.values() for (ns, _) in bucket if ns}
        for name in sorted(used - names):
            ns_obj = self._implicit_namespace(name)
            if pred is None or pred(ns_obj):
                items.append(ns_obj)
        return items

    def get(self, res: Resource, namespace: str | None, name: str) -> JSON:
        """One object (404 if absent; any namespace implicitly exists)."""
        obj = self._stored(res, namespace, name)
        if obj is None:
            if res.plural == "namespaces" and not res.group:
                return self._implicit_namespace(name)
            raise _not_found(res, name)
        return clone(self._view(res, obj))

    def create(self, res: Resource, namespace: str | None, body: Any) -> JSON:
        """Create an object (409 if it exists, 422 if invalid)."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        obj = clone(body)
        if res.storage:
            obj = res_mod.events_v1_to_core_event(obj)
        meta = obj.setdefault("metadata", {})
        if namespace is not None:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(400, "BadRequest",
                               "the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
        elif res.namespaced:
            raise ApiError(405, "MethodNotAllowed", "create needs a namespace")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(GENERATE_CHARS, k=5))
        name = meta.get("name") or ""
        self._check_name(res, name)
        if self._stored(res, namespace, name) is not None:
            group = f".{res.group}" if res.group else ""
            raise ApiError(409, "AlreadyExists", f'{res.plural}{group} "{name}" already exists',
                           {"name": name, "group": res.group, "kind": res.plural})
        store_kind = "Event" if res.storage else res.kind
        obj["kind"], obj["apiVersion"] = store_kind, ("v1" if res.storage else res.api_version)
        if res.has_status and res.group:
            obj.pop("status", None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso(), generation=1)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(key, None)
        self._admit(res, obj, None)
        self.store.commit(res.storage_key, "ADDED", obj)
        return clone(self._view(res, obj))

    @staticmethod
    def _check_name(res: Resource, name: str) -> None:
        if not name:
            raise ApiError(422, "Invalid", f"{res.kind} is invalid: metadata.name: Required value: name or "
                           "generateName is required")
        if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            raise ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: metadata.name: Invalid value: '
                           f'"{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                           "characters, '-' or '.', and must start and end with an alphanumeric character")

    @staticmethod
    def _admit(res: Resource, obj: JSON, old: JSON | None) -> None:
        if res.group != "ray.io":
            return
        errors = schema.admit(res.plural, obj, old, res.version)
        if errors:
            name = obj["metadata"].get("name", "")
            raise ApiError(
                422, "Invalid", f'{res.kind}.{res.group} "{name}" is invalid: ' + ", ".join(errors),
                {"name": name, "group": res.group, "kind": res.kind,
                 "causes": [{"reason": "FieldValueInvalid", "message": e} for e in errors]},
            )

    def replace(self, res: Resource, namespace: str | None, name: str, body: Any, sub: str | None) -> JSON:
        """PUT: full replacement with optimistic concurrency (409 on a stale resourceVersion)."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        if res.storage:
            body = res_mod.events_v1_to_core_event(body)
        return self._update(res, namespace, name, clone(body), sub)

    def patch(self, res: Resource, namespace: str | None, name: str, body: Any, content_type: str,
              sub: str | None) -> JSON:
        """PATCH: merge, strategic merge (treated as merge) or JSON patch."""
        current = self._stored(res, namespace, name)
        if current is None:
            raise _not_found(res, name)
        view = self._view(res, current)
        if content_type == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
            try:
                patched = json_patch(view, body)
            except ValueError as exc:
                raise ApiError(422, "Invalid", str(exc)) from exc
        elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be an object")
            patched = merge_patch(view, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the patch content type {content_type!r} is not supported")
        if not (isinstance(body, dict) and (body.get("metadata") or {}).get("resourceVersion")):
            patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        if res.storage:
            patched = res_mod.events_v1_to_core_event(patched)
        return self._update(res, namespace, name, patched, sub)

    def _update(self, res: Resource, namespace: str | None, name: str, new: JSON, sub: str | None) -> JSON:
        old = self._stored(res, namespace, name)
        if old is None:
            raise _not_found(res, name)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            group = f".{res.group}" if res.group else ""
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural}{group} "{name}": the '
                           "object has been modified; please apply your changes to the latest version and try again",
                           {"name": name, "group": res.group, "kind": res.plural})
        if sub == "status":
            result = clone(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            for key in ("uid", "creationTimestamp", "namespace", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "generation", "name"):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
            result["kind"], result["apiVersion"] = old["kind"], old["apiVersion"]
            if res.has_status:
                if "status" in old:
                    result["status"] = clone(old["status"])
                else:
                    result.pop("status", None)
            if self._spec_part(result) != self._spec_part(old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        result["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if result == old:
            return clone(self._view(res, old))
        self._admit(res, result, old)
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            self.store.commit(res.storage_key, "DELETED", result)
        else:
            self.store.commit(res.storage_key, "MODIFIED", result)
        return clone(self._view(res, result))

    @staticmethod
    def _spec_part(obj: JSON) -> JSON:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}

    def delete(self, res: Resource, namespace: str | None, name: str, policy: str | None,
               preconditions: JSON | None = None) -> JSON:
        """DELETE: immediate without finalizers, otherwise mark with deletionTimestamp.

        ``Foreground`` adds the ``foregroundDeletion`` finalizer, ``Orphan`` the ``orphan`` one; the controller,
        acting as garbage collector, handles the dependents and removes them.
        """
        obj = self._stored(res, namespace, name)
        if obj is None:
            raise _not_found(res, name)
        if preconditions:
            for key in ("uid", "resourceVersion"):
                if preconditions.get(key) and preconditions[key] != obj["metadata"].get(key):
                    raise ApiError(409, "Conflict", f"Precondition failed: {key} does not match")
        obj = clone(obj)
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy or "")
        if extra and extra not in finalizers and not meta.get("deletionTimestamp"):
            finalizers.append(extra)
        if not finalizers:
            self.store.commit(res.storage_key, "DELETED", obj)
            return clone(self._view(res, obj))
        if not meta.get("deletionTimestamp"):
            meta["finalizers"] = finalizers
            meta["deletionTimestamp"] = now_iso()
            meta["deletionGracePeriodSeconds"] = 0
            self.store.commit(res.storage_key, "MODIFIED", obj)
        return clone(self._view(res, obj))

    # ----------------------------------------------------------------- watch
    async def _watch(
        self, request: web.Request, res: Resource, namespace: str | None, pred: Predicate
    ) -> web.StreamResponse:
        query = request.query
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        except ValueError as exc:
            raise ApiError(400, "BadRequest", "invalid timeoutSeconds") from exc
        rv_text = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        backlog: list[WatchEvent] = []
        expired = False
        if rv_text not in ("", "0"):
            try:
                since = int(rv_text)
            except ValueError as exc:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from exc
            if since < self.store.oldest_servable():
                expired = True
            else:
                backlog = [e for e in self.store.history if e.rv > since]
        else:
            for obj in self.store.bucket(res.storage_key).values():
                backlog.append(WatchEvent(int(obj["metadata"]["resourceVersion"]), res.storage_key, "ADDED",
                                          clone(obj)))
            backlog.sort(key=lambda e: e.rv)
        watcher = Watcher(res.storage_key, namespace, lambda o: pred(self._view(res, o)), asyncio.Queue(),
                          request[EXTERNAL])
        for event in backlog:
            if watcher.wants(event):
                watcher.queue.put_nowait(event)
        response = web.StreamResponse(headers={"Content-Type": "application/json",
                                               "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        if expired:
            await response.write(self._expired_line(rv_text))
            await response.write_eof()
            return response
        self.store.watchers.add(watcher)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                wait = self.bookmark_interval if bookmarks else None
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = left if wait is None else min(wait, left)
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    mark = self.bookmark(watcher, res) if bookmarks else None
                    if mark is not None:
                        await response.write(mark)
                    continue
                # Everything queued goes out in one write: one event per loop turn (``wait_for`` schedules a task
                # per get) falls behind a busy server's commits, and its watchers see events seconds late.
                items = [item]
                while len(items) < WATCH_BATCH and not watcher.queue.empty():
                    items.append(watcher.queue.get_nowait())
                lines, control = [], None
                for item in items:
                    if not isinstance(item, WatchEvent):
                        control = item  # the watch ends: what was queued after it is never sent
                        break
                    lines.append(json.dumps({"type": item.type, "object": self._view(res, item.obj)}).encode() + b"\n")
                if lines:
                    await response.write(b"".join(lines))
                if control == "close":
                    break
                if control == "expire":
                    await response.write(self._expired_line(rv_text))
                    break
                if control == "drop":
                    if request.transport is not None:
                        request.transport.abort()
                    return response
        except (ConnectionResetError, asyncio.CancelledError):
            return response
        finally:
            self.store.watchers.discard(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def bookmark(self, watcher: Watcher, res: Resource) -> bytes | None:
        """The BOOKMARK line for ``watcher`` now, or None while an event for it is still queued.

        A bookmark promises "you have seen everything up to this resourceVersion"; sending the global one while
        an event committed as the wait timed out is still queued would make the client resume past that event.
        """
        if not watcher.queue.empty():
            return None
        mark = {"kind": res.kind, "apiVersion": res.api_version, "metadata": {"resourceVersion": str(self.store.rv)}}
        return json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n"

    def _expired_line(self, rv_text: str) -> bytes:
        err = ApiError(410, "Expired", f"too old resource version: {rv_text} ({self.store.oldest_servable() + 1})")
        return json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n"

    # ----------------------------------------------------------------- pod logs
    def _container_state(self, pod: JSON, container: str) -> tuple[bool, bool]:
        """``(started, terminated)`` of a container, from the pod status."""
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return True, True
        for cs in status.get("containerStatuses") or []:
            if cs.get("name") == container:
                state = cs.get("state") or {}
                return ("running" in state or "terminated" in state), "terminated" in state
        return False, False

    async def _pod_log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pods = BY_PATH[("", "v1", "pods")]
        pod = self._stored(pods, namespace, name)
        if pod is None:
            raise _not_found(pods, name)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container") or (containers[0] if len(containers) == 1 else "")
        if container not in containers:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: "
                           f"{containers}" if not container else f"container {container} is not valid for pod {name}")
        started, terminated = self._container_state(pod, container)
        source = self.log_sources.get((namespace, name, container))
        if not started:
            raise ApiError(400, "BadRequest",
                           f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
        follow = request.query.get("follow", "").lower() in ("true", "1")
        tail = request.query.get("tailLines")
        data = source.path.read_bytes() if source and source.path.exists() else b""
        read_up_to = len(data)  # a follow goes on from what was read, not from the file's size once headers are out
        cri = bool(source and source.cri)
        stamps = request.query.get("timestamps", "").lower() in ("true", "1")
        consumed = len(podlogs.complete_lines(data)) if cri else None
        if cri:
            since = request.query.get("sinceSeconds")
            data = podlogs.render(data, timestamps=stamps, since_seconds=int(since) if since else None,
                                  tail_lines=int(tail) if tail is not None else None)
        elif tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(tail):]) if int(tail) > 0 else b""
        if not follow or terminated:
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
        await response.prepare(request)
        await response.write(data)
        offset = consumed if consumed is not None else read_up_to
        try:
            while True:
                pod = self._stored(pods, namespace, name)
                done = pod is None or self._container_state(pod, container)[1]
                source = self.log_sources.get((namespace, name, container))
                if source and source.path.exists():
                    with source.path.open("rb") as fh:
                        fh.seek(offset)
                        chunk = fh.read()
                    if cri:
                        chunk = podlogs.complete_lines(chunk)
                    if chunk:
                        offset += len(chunk)
                        await response.write(podlogs.render(chunk, timestamps=stamps) if cri else chunk)
                if done:
                    break
                await asyncio.sleep(0.2)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response


def random_suffix(k: int = 5) -> str:
    """``k`` characters from KubeRay's alphabet."""
    return "".join(random.choices(GENERATE_CHARS, k=k))


