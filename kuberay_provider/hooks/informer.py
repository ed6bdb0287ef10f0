"""Process-wide Kubernetes machinery shared by every trigger of one event loop (the triggerer's).

* :class:`SharedClients`: **one** kubernetes_asyncio API client per connection, built off the event loop
  (kubeconfig parsing, secret masking and the TLS context run in a worker thread), reference-counted: the
  last user closes it.
* :class:`Informer`: **one** list + watch per (connection, namespace, kind), driven by the sans-I/O
  :class:`~kuberay_provider.hooks.watching.CollectionWatcher` (resume from the resourceVersion, bookmarks,
  re-list on 410 and periodically, bounded jittered backoff). Triggers subscribe for one key (a RayJob's
  name; for submitter pods, the RayJob they belong to) and receive that key's changes in their own queue.
  The last subscriber leaving closes the watch.
* :class:`LogFollowPool`: at most ``[kuberay] max_log_follows`` concurrent driver-log follows per loop,
  newest waits first; the others read the log's tail when their job ends.

Everything lives in a :class:`Registry` per event loop (``asyncio.run`` in tests and ``airflow dags test``
start a new loop each time; aiohttp sessions cannot cross loops). A subscriber's result never depends on
another subscriber: each has its own queue and its own wait state; the informer only fans events out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from kuberay_provider import constants as c
from kuberay_provider.hooks.retry import ApiFailure
from kuberay_provider.hooks.watching import CollectionWatcher, List, Sleep, WatchEvent, parse_watch_line

log = logging.getLogger(__name__)

#: Items per page when an informer lists its collection (bounds the memory and loop time of one page).
LIST_PAGE_SIZE = 100
#: Concurrent driver-log follows per process unless ``[kuberay] max_log_follows`` says otherwise.
DEFAULT_MAX_LOG_FOLLOWS = 32
#: Connections one shared client may open at once (watches, log follows and short requests share them).
CONNECTION_LIMIT = 100
#: Short requests (GET, list, log tail, diagnostics) in flight at once per loop; with the watches and the log
#: follows this stays below :data:`CONNECTION_LIMIT`, so no request waits for a connection inside its timeout.
REQUESTS_IN_FLIGHT = 64
#: Watch events handled before the informer yields to the loop (a burst must not stall other coroutines, and
#: each event may wake a wait whose next step -- a log-tail read, the TriggerEvent -- runs in the next loop
#: iteration: the events of one slice and the steps they wake make one iteration each, so both stay short).
EVENTS_PER_YIELD = 10
#: ... or after this many seconds of handling one chunk of events, whichever comes first.
SLICE_SECONDS = 0.005


@dataclass(frozen=True)
class ConnKey:
    """What identifies one Kubernetes client: the connection and the hook parameters that override it."""

    conn_id: str
    cluster_context: str | None = None
    config_file: str | None = None
    in_cluster: bool | None = None

    def hook(self) -> Any:
        from kuberay_provider.hooks.kuberay import AsyncKubeRayHook

        return AsyncKubeRayHook(kubernetes_conn_id=self.conn_id, cluster_context=self.cluster_context,
                                config_file=self.config_file, in_cluster=self.in_cluster)


# ------------------------------------------------------------------------------------------------ clients
def _tls_context(configuration: Any) -> Any:
    """The TLS context kubernetes_asyncio would build on the loop (``ssl.create_default_context`` costs ~25 ms)."""
    import ssl

    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if getattr(configuration, "disable_strict_ssl_verification", False):
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


def env_proxy(host: str) -> tuple[Any, Any] | None:
    """The proxy (and its auth) the environment (``HTTPS_PROXY``, ``NO_PROXY`` ...) names for the API ``host`` URL,
    as aiohttp's ``trust_env`` would find it on every request; None for none. Reads files (netrc): off the loop."""
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        return get_env_proxy_for_url(URL(host))
    except (LookupError, ValueError):
        return None


def _load_blocking(hook: Any, extras: dict[str, Any]) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """In a worker thread: mask the connection's secrets, load the kubeconfig, build the TLS context, find the
    environment's proxy for the API server."""
    from kubernetes_asyncio.client import ApiClient, Configuration

    from kuberay_provider.hooks.secrets import default_kubeconfig_paths, mask_connection_secrets

    mask_connection_secrets(extras, default_kubeconfig_paths(hook.config_file))

    async def load() -> Any:
        result = await hook._load_config()  # the cncf hook's connection handling, on this thread's own loop
        if isinstance(result, ApiClient):  # older cncf providers return a client
            await result.close()
            return result.configuration
        return getattr(hook, "client_configuration", None) or Configuration.get_default_copy()

    configuration = asyncio.run(load())
    return configuration, _tls_context(configuration), env_proxy(configuration.host)


def _session(connector: Any, proxy: tuple[Any, Any] | None) -> Any:
    """The client's aiohttp session. kubernetes_asyncio's uses ``trust_env=True``, which makes aiohttp look up the
    environment's proxy and netrc in a worker thread on *every* request (two thread hops each, thousands a minute
    when thousands of jobs end together); here the proxy is resolved once (``proxy``) and netrc is not read
    (a netrc login for the API server would clash with the client's own Authorization header anyway)."""
    import aiohttp

    kwargs: dict[str, Any] = {"connector": connector, "read_bufsize": 2**21}
    if proxy is not None:
        kwargs.update(proxy=proxy[0], proxy_auth=proxy[1])
    try:
        return aiohttp.ClientSession(trust_env=False, **kwargs)
    except TypeError:  # an aiohttp without session-wide proxies: let it find the proxy per request
        kwargs.pop("proxy", None)
        kwargs.pop("proxy_auth", None)
        return aiohttp.ClientSession(trust_env=True, **kwargs)


def _api_client(configuration: Any, tls: Any, proxy: tuple[Any, Any] | None = None) -> Any:
    """A kubernetes_asyncio ApiClient whose connector uses the prebuilt TLS context (cheap, on the loop)."""
    import aiohttp
    from kubernetes_asyncio.client import ApiClient, rest

    from kuberay_provider.hooks.kuberay import USER_AGENT

    class _Rest(rest.RESTClientObject):
        def __init__(self) -> None:  # the parent's body without its TLS work
            self.server_hostname = getattr(configuration, "tls_server_name", None)
            self.proxy = configuration.proxy
            self.proxy_headers = configuration.proxy_headers
            connector = aiohttp.TCPConnector(limit=CONNECTION_LIMIT + max_log_follows(), ssl=tls)
            self.pool_manager = _session(connector, proxy)

    class _Shared(ApiClient):
        def __init__(self) -> None:  # ApiClient.__init__ with the rest client above
            self.configuration = configuration
            self.pool_threads = 1
            self.rest_client = _Rest()
            self.default_headers = {}
            self.cookie = None
            self.user_agent = USER_AGENT
            self.client_side_validation = configuration.client_side_validation

    return _Shared()


@dataclass
class SharedClient:
    """A live API client and the connection's ``request_timeout``."""

    api: Any
    request_timeout: float
    refs: int = 0


class SharedClients:
    """One client per :class:`ConnKey` on this loop, created once (off the loop) and closed by its last user."""

    def __init__(self) -> None:
        self._entries: dict[ConnKey, asyncio.Future[SharedClient]] = {}
        self.created = 0

    async def acquire(self, key: ConnKey) -> SharedClient:
        future = self._entries.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._entries[key] = future
            try:
                future.set_result(await self._create(key))
            except BaseException as exc:
                self._entries.pop(key, None)
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
                raise
        shared = await asyncio.shield(future)
        shared.refs += 1
        return shared

    async def release(self, key: ConnKey, shared: SharedClient) -> None:
        shared.refs -= 1
        if shared.refs > 0:
            return
        future = self._entries.get(key)
        if future is not None and future.done() and not future.cancelled() and future.exception() is None \
                and future.result() is shared:
            del self._entries[key]
        with contextlib.suppress(Exception):
            await shared.api.close()

    async def _create(self, key: ConnKey) -> SharedClient:
        from kuberay_provider.hooks.kuberay import request_timeout_from

        hook = key.hook()
        extras = await hook.get_conn_extras()  # on the loop: Airflow's connection access is loop-bound
        timeout = request_timeout_from(extras)
        from kuberay_provider.hooks.conn_mode import resolve_mode

        mode = resolve_mode(extras) if not (key.config_file or key.in_cluster) else None
        if mode is not None and mode.is_gke:  # GKE mode: endpoint + CA from the GKE API, a refreshing token
            from kuberay_provider.hooks import gke

            access = await asyncio.to_thread(gke.connect, mode.gke)
            configuration = gke.async_configuration(access)
            tls = await asyncio.to_thread(_tls_context, configuration)
            proxy = await asyncio.to_thread(env_proxy, configuration.host)
            self.created += 1
            return SharedClient(gke.install_async(_api_client(configuration, tls, proxy), access.tokens), timeout)
        configuration, tls, proxy = await asyncio.to_thread(_load_blocking, hook, dict(extras))
        self.created += 1
        return SharedClient(_api_client(configuration, tls, proxy), timeout)

    @contextlib.asynccontextmanager
    async def lease(self, key: ConnKey) -> AsyncIterator[SharedClient]:
        shared = await self.acquire(key)
        try:
            yield shared
        finally:
            await self.release(key, shared)


# ------------------------------------------------------------------------------------------------ kinds
def _trim_meta(obj: dict[str, Any], *extra: str) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    keep = ("name", "namespace", "resourceVersion", "deletionTimestamp", "creationTimestamp", *extra)
    return {k: meta[k] for k in keep if k in meta}


def _trim_status_object(obj: dict[str, Any]) -> dict[str, Any]:
    """What a status snapshot needs (metadata and status, no spec): informers keep thousands of these."""
    spec = obj.get("spec") or {}
    trimmed: dict[str, Any] = {"metadata": _trim_meta(obj), "status": obj.get("status") or {}}
    kept = {k: spec[k] for k in ("clusterSelector", "suspend") if k in spec}  # suspend: queued (Kueue), see status.py
    if kept:
        trimmed["spec"] = kept
    queue = ((obj.get("metadata") or {}).get("labels") or {}).get(c.KUEUE_QUEUE_LABEL)
    if queue:
        trimmed["metadata"]["labels"] = {c.KUEUE_QUEUE_LABEL: queue}
    return trimmed


def _trim_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """What picking the driver-log pod and :func:`~kuberay_provider.hooks.pods.describe_pod_problems` read."""
    status = obj.get("status") or {}
    meta = _trim_meta(obj)
    meta["labels"] = {c.JOB_NAME_LABEL: ((obj.get("metadata") or {}).get("labels") or {}).get(c.JOB_NAME_LABEL)}
    trimmed = {"phase": status.get("phase"), "containerStatuses": status.get("containerStatuses") or []}
    problems = [cond for cond in status.get("conditions") or [] if cond.get("status") == "False"]
    if problems:
        trimmed["conditions"] = problems
    if status.get("initContainerStatuses"):
        trimmed["initContainerStatuses"] = status["initContainerStatuses"]
    return {"metadata": meta, "status": trimmed}


def _name_of(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("name")


def _job_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(c.JOB_NAME_LABEL)


@dataclass(frozen=True)
class Kind:
    """A collection an informer can watch: how to list/watch it, which key subscribers use, what to keep."""

    plural: str
    custom: bool
    label_selector: str
    key_of: Callable[[dict[str, Any]], str | None]
    trim: Callable[[dict[str, Any]], dict[str, Any]]


RAYJOBS = Kind(c.RAYJOB_PLURAL, True, "", _name_of, _trim_status_object)
RAYCLUSTERS = Kind(c.RAYCLUSTER_PLURAL, True, "", _name_of, _trim_status_object)
#: K8sJobMode submitter pods, keyed by the RayJob (their Job is named like it). The Job controller's
#: ``batch.kubernetes.io/job-name`` label is the only one KubeRay's submitter pods are guaranteed to carry.
SUBMITTER_PODS = Kind("pods", False, c.JOB_NAME_LABEL, _job_of, _trim_pod)


def _rv_int(obj: dict[str, Any] | None) -> int | None:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion"))
    except (TypeError, ValueError):
        return None


def newer(candidate: dict[str, Any] | None, current: dict[str, Any] | None) -> bool:
    """Whether ``candidate`` may replace ``current`` (same object): not older by resourceVersion."""
    a, b = _rv_int(candidate), _rv_int(current)
    return a is None or b is None or a >= b


# ------------------------------------------------------------------------------------------------ informer
class Feed:
    """A subscriber's inbox, in delivery order: a lighter :class:`asyncio.Queue` (a triggerer holds one per wait,
    ten thousand of them: two objects each instead of eight, and a timed :meth:`get` without a task per wait)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def get_nowait(self) -> Any:
        """The oldest item; raises :class:`asyncio.QueueEmpty` if there is none."""
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self, timeout: float | None = None) -> Any:
        """The oldest item, waiting for one; raises :class:`TimeoutError` after ``timeout`` seconds (None: never)."""
        if not self._items:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(max(0.0, timeout), _expire, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._items:
                raise TimeoutError
        return self._items.popleft()


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass(eq=False)
class Subscription:
    """One subscriber's interest in one key; items land in its own ``feed`` as ``(source, type, object)``.

    ``type`` is a watch event type (ADDED, MODIFIED, DELETED) or ``ERROR`` (object: an :class:`~.ApiFailure`
    that no retry will fix, e.g. 403).
    """

    key: str
    feed: Feed | asyncio.Queue
    source: str


@dataclass(eq=False)
class Informer:
    """List + watch of one collection, fanned out to subscribers by key (see the module docstring)."""

    registry: Registry
    conn: ConnKey
    namespace: str
    kind: Kind
    watch_timeout: int = 60
    relist_every: float = 120.0
    cache: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    subscribers: dict[str, set[Subscription]] = field(default_factory=dict)
    error: ApiFailure | None = None

    def __post_init__(self) -> None:
        self.watcher = CollectionWatcher(watch_timeout=self.watch_timeout, relist_every=self.relist_every)
        self.ready = asyncio.Event()  # the first list is done (or failed for good: see ``error``)
        self.task: asyncio.Task | None = None
        self.hook: Any = None
        self.requests = 0

    # -- subscribers --------------------------------------------------------------------------------
    def add(self, sub: Subscription) -> None:
        self.subscribers.setdefault(sub.key, set()).add(sub)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name=f"informer-{self.kind.plural}"
                                                               f"-{self.namespace}")

    def remove(self, sub: Subscription) -> None:
        subs = self.subscribers.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.key]
        if not self.subscribers:
            self.close()

    def close(self) -> None:
        """Stop the watch (the last subscriber left)."""
        self.registry._forget(self)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    async def current(self, key: str) -> dict[str, dict[str, Any]]:
        """The objects of ``key`` as of the first complete list (waits for it). Raises on a lasting API error."""
        await self.ready.wait()
        if self.error is not None and not self.watcher.synced:
            from kuberay_provider.hooks.watching import RayJobWaitError

            raise RayJobWaitError(f"Kubernetes API error {self.error.status} while listing {self.kind.plural} in "
                                  f"{self.namespace}: {self.error.message}")
        return dict(self.cache.get(key) or {})

    def _deliver(self, key: str | None, type_: str, obj: Any) -> None:
        for sub in self.subscribers.get(key or "", ()):
            sub.feed.put_nowait((sub.source, type_, obj))

    def _broadcast_error(self, failure: ApiFailure) -> None:
        self.error = failure
        self.ready.set()
        for subs in self.subscribers.values():
            for sub in subs:
                sub.feed.put_nowait((sub.source, "ERROR", failure))

    # -- the loop -----------------------------------------------------------------------------------
    async def _run(self) -> None:
        from kuberay_provider.hooks.kuberay import classify_async_error

        try:
            async with self.registry.clients.lease(self.conn) as shared:
                self.hook = self.registry.hook_for(self.conn, shared)
                while True:
                    action = self.watcher.next_action()
                    if isinstance(action, Sleep):
                        await asyncio.sleep(action.seconds)
                        continue
                    try:
                        if isinstance(action, List):
                            await self._list(shared)
                        else:
                            await self._watch(shared, action)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        failure = classify_async_error(exc) or ApiFailure(None, f"{type(exc).__name__}: {exc}")
                        log.warning("%s %s in %s failed (%s); %s", "Listing" if isinstance(action, List) else
                                    "Watching", self.kind.plural, self.namespace, failure.message,
                                    "re-listing" if failure.status in (404, 410) else "backing off")
                        self.watcher.on_failure(failure)
                        if not failure.retryable and failure.status not in (404, 410):
                            self._broadcast_error(failure)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the client could not be built: every subscriber learns why
            log.warning("Could not start the %s informer in %s: %s", self.kind.plural, self.namespace, exc)
            self._broadcast_error(ApiFailure(None, f"{type(exc).__name__}: {exc}"))

    async def _request(self, shared: SharedClient, timeout: Any, **query: Any) -> Any:
        """One list or watch request (raw response; HTTP errors raise)."""
        from kubernetes_asyncio import client

        from kuberay_provider.hooks.kuberay import araise_for_status

        self.requests += 1
        if self.kind.label_selector:
            query["label_selector"] = self.kind.label_selector
        query.update(_preload_content=False, _request_timeout=timeout)
        if self.kind.custom:
            call = client.CustomObjectsApi(shared.api).list_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, self.namespace, self.kind.plural, **query)
        else:
            call = client.CoreV1Api(shared.api).list_namespaced_pod(self.namespace, **query)
        return await araise_for_status(await call)

    async def _list(self, shared: SharedClient) -> None:
        fresh: dict[str, dict[str, dict[str, Any]]] = {}
        token, rv = None, None
        while True:
            query: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
            if token:
                query["_continue"] = token
            response = await self._request(shared, shared.request_timeout, **query)
            page = json.loads(await response.read())
            response.release()
            meta = page.get("metadata") or {}
            rv = rv or meta.get("resourceVersion")
            for item in page.get("items") or []:
                key = self.kind.key_of(item)
                if key is not None:
                    fresh.setdefault(key, {})[_name_of(item) or ""] = self.kind.trim(item)
            del page
            token = meta.get("continue")
            if not token:
                break
            await asyncio.sleep(0)
        old, self.cache = self.cache, fresh
        for key in list(self.subscribers):  # what a subscriber missed while the informer was not watching
            before, after = old.get(key) or {}, fresh.get(key) or {}
            for name, obj in after.items():
                if name not in before or _rv_int(before[name]) != _rv_int(obj):
                    self._deliver(key, "MODIFIED", obj)
            for name, obj in before.items():
                if name not in after and self.watcher.synced:
                    self._deliver(key, "DELETED", obj)
        self.watcher.on_list(rv)
        self.error = None
        self.ready.set()

    async def _watch(self, shared: SharedClient, action: Any) -> None:
        query: dict[str, Any] = {"watch": True, "allow_watch_bookmarks": True, "timeout_seconds": action.timeout_seconds}
        if action.resource_version:
            query["resource_version"] = action.resource_version
        import aiohttp

        # A ClientTimeout (not a tuple: older kubernetes_asyncio hands the value to aiohttp as is): no total bound
        # beyond the server-side timeout, a read bound in case the connection silently dies.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=action.timeout_seconds + 15)
        response = await self._request(shared, timeout, **query)
        started, seen = time.monotonic(), 0
        slice_from, in_slice = time.perf_counter(), 0
        try:
            while True:
                line = await response.content.readline()
                if not line:
                    break
                seen += 1
                parsed = parse_watch_line(line)
                event = self.watcher.on_event(parsed)
                if event is not None:
                    self._apply(event)
                elif parsed is not None and parsed.type == "ERROR":
                    failure = ApiFailure(parsed.error_code, str(parsed.object.get("message") or parsed.object))
                    log.warning("Watching %s in %s: %s (%s)", self.kind.plural, self.namespace, failure.message,
                                "re-listing" if failure.status in (404, 410) else "backing off")
                    if not failure.retryable and failure.status not in (404, 410):
                        self._broadcast_error(failure)
                    return  # the server ends the stream after an ERROR
                in_slice += 1
                if in_slice >= EVENTS_PER_YIELD or time.perf_counter() - slice_from > SLICE_SECONDS:
                    await asyncio.sleep(0)
                    slice_from, in_slice = time.perf_counter(), 0
        finally:
            response.release()
        self.watcher.on_watch_closed(seen, time.monotonic() - started)

    def _apply(self, event: WatchEvent) -> None:
        key = self.kind.key_of(event.object)
        if key is None:
            return
        name = _name_of(event.object) or ""
        trimmed = self.kind.trim(event.object)
        bucket = self.cache.setdefault(key, {})
        if event.type == "DELETED":
            bucket.pop(name, None)
            if not bucket:
                self.cache.pop(key, None)
        elif newer(trimmed, bucket.get(name)):
            bucket[name] = trimmed
        self._deliver(key, event.type, trimmed)


# ------------------------------------------------------------------------------------------------ log follows
class LogTicket:
    """A wait that wants to follow a driver log; the pool calls ``grant()`` / ``revoke()`` (by default
    ``on_grant`` / ``on_revoke``; a subclass may override the methods instead and keep no callbacks)."""

    __slots__ = ("active", "on_grant", "on_revoke", "started")

    def __init__(self, started: float, on_grant: Callable[[], None] | None = None,
                 on_revoke: Callable[[], None] | None = None, active: bool = False) -> None:
        self.started, self.on_grant, self.on_revoke, self.active = started, on_grant, on_revoke, active

    def grant(self) -> None:
        if self.on_grant is not None:
            self.on_grant()

    def revoke(self) -> None:
        if self.on_revoke is not None:
            self.on_revoke()


class LogFollowPool:
    """At most ``limit`` concurrent log follows; the newest waits win (an older follow is revoked for a newer
    one, and a freed slot goes to the newest waiting)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active: set[LogTicket] = set()
        self.waiting: set[LogTicket] = set()
        self.peak = 0

    def request(self, ticket: LogTicket) -> None:
        if ticket.active or ticket in self.waiting:
            return
        if len(self.active) < self.limit:
            self._grant(ticket)
            return
        oldest = min(self.active, key=lambda t: t.started, default=None)
        if oldest is not None and oldest.started < ticket.started:
            self.active.discard(oldest)
            oldest.active = False
            self.waiting.add(oldest)
            oldest.revoke()
            self._grant(ticket)
        else:
            self.waiting.add(ticket)

    def release(self, ticket: LogTicket) -> None:
        self.waiting.discard(ticket)
        if ticket.active:
            ticket.active = False
            self.active.discard(ticket)
            if self.waiting:
                newest = max(self.waiting, key=lambda t: t.started)
                self.waiting.discard(newest)
                self._grant(newest)

    def _grant(self, ticket: LogTicket) -> None:
        if self.limit <= 0:
            self.waiting.add(ticket)
            return
        ticket.active = True
        self.active.add(ticket)
        self.peak = max(self.peak, len(self.active))
        ticket.grant()


def max_log_follows() -> int:
    """``[kuberay] max_log_follows`` (concurrent driver-log follows per triggerer process), default 32."""
    try:
        from kuberay_provider.compat import conf

        value = conf.getint("kuberay", "max_log_follows", fallback=DEFAULT_MAX_LOG_FOLLOWS)
    except Exception:
        value = DEFAULT_MAX_LOG_FOLLOWS
    return max(0, int(value))


# ------------------------------------------------------------------------------------------------ registry
class Registry:
    """Everything shared on one event loop: clients, informers, the log-follow pool."""

    def __init__(self) -> None:
        self.clients = SharedClients()
        self.informers: dict[tuple[ConnKey, str, str], Informer] = {}
        self.log_pool = LogFollowPool(max_log_follows())
        self.requests = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
        self._hooks: dict[ConnKey, list[Any]] = {}  # conn -> [hook, shared client, users]
        self.informers_started = 0

    def hook_for(self, conn: ConnKey, shared: SharedClient) -> Any:
        """An :class:`~kuberay_provider.hooks.kuberay.AsyncKubeRayHook` whose calls use the shared client."""
        hook = conn.hook()
        hook.use_shared_client(shared)
        return hook

    async def acquire_hook(self, conn: ConnKey) -> Any:
        """The loop's one :class:`~kuberay_provider.hooks.kuberay.AsyncKubeRayHook` for ``conn``, bound to the
        shared client; pair with ``release_hook()``. (A hook holds no per-call state once bound: ten thousand
        waits share one instead of holding a hook, its retry policy and a client lease each.)"""
        entry = self._hooks.get(conn)
        if entry is None:
            shared = await self.clients.acquire(conn)
            entry = self._hooks.get(conn)
            if entry is None:
                entry = self._hooks[conn] = [self.hook_for(conn, shared), shared, 0]
            else:  # another wait bound it meanwhile
                await self.clients.release(conn, shared)
        entry[2] += 1
        return entry[0]

    async def release_hook(self, conn: ConnKey) -> None:
        entry = self._hooks.get(conn)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] <= 0:
            del self._hooks[conn]
            await self.clients.release(conn, entry[1])

    def informer(self, conn: ConnKey, namespace: str, kind: Kind) -> Informer:
        key = (conn, namespace, kind.plural)
        informer = self.informers.get(key)
        if informer is None:
            informer = Informer(self, conn, namespace, kind)
            self.informers[key] = informer
            self.informers_started += 1
        return informer

    def _forget(self, informer: Informer) -> None:
        key = (informer.conn, informer.namespace, informer.kind.plural)
        if self.informers.get(key) is informer:
            del self.informers[key]

    def join(self, conn: ConnKey, namespace: str, kind: Kind, key: str, feed: Feed | asyncio.Queue,
             source: str) -> tuple[Informer, Subscription]:
        """Start receiving ``key``'s changes in ``feed``; pair with ``Informer.remove()`` of the subscription
        (in a ``finally``: leaving never awaits, so a cancelled subscriber always leaves)."""
        informer = self.informer(conn, namespace, kind)
        sub = Subscription(key, feed, source)
        informer.add(sub)
        return informer, sub

    @contextlib.contextmanager
    def subscribe(self, conn: ConnKey, namespace: str, kind: Kind, key: str, feed: Feed | asyncio.Queue,
                  source: str) -> Any:
        """Receive ``key``'s changes in ``feed`` while inside the block (:meth:`join` and leave)."""
        informer, sub = self.join(conn, namespace, kind, key, feed, source)
        try:
            yield informer
        finally:
            informer.remove(sub)


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Registry] = weakref.WeakKeyDictionary()


def registry() -> Registry:
    """The running loop's :class:`Registry`."""
    loop = asyncio.get_running_loop()
    found = _registries.get(loop)
    if found is None:
        found = _registries[loop] = Registry()
    return found
