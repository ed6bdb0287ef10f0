"""KubeRayHook and AsyncKubeRayHook: RayJob and RayCluster objects over the Kubernetes API.

Both build on the cncf-kubernetes provider's connection handling (kubeconfig path or content, in-cluster,
context, namespace), so a ``kubernetes`` connection works unchanged. Retries, the watch state machine and
the reading of pods are shared (:mod:`.retry`, :mod:`.watching`, :mod:`.pods`); the two classes differ
only in how they perform I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from functools import cached_property
from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook

from kuberay_provider import __version__
from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError, RayJobGoneError
from kuberay_provider.hooks.pods import (
    LogTail,
    SubmitterLogPlan,
    describe_pod_problems,
    describe_submitter_job,
    describe_warning_events,
    head_pod_selector,
    newest_started_pod,
    pod_name,
    submitter_pod_selector,
)
from kuberay_provider.hooks.retry import ApiFailure, RetryPolicy, acall_with_retry, call_with_retry, is_certificate_failure
from kuberay_provider.hooks.secrets import default_kubeconfig_paths, mask_connection_secrets
from kuberay_provider.hooks.watching import (
    Finished,
    Get,
    Gone,
    ObjectWaiter,
    RayClusterWaiter,
    RayJobWaiter,
    Sleep,
    TimedOut,
    Watch,
    parse_watch_line,
)
from kuberay_provider.naming import validate_dns_subdomain, validate_namespace
from kuberay_provider.status import RayClusterStatus, RayJobStatus

REQUEST_TIMEOUT = 30.0
#: A log follow with no byte for this long is re-opened (its lines are de-duplicated by :class:`~.LogTail`).
FOLLOW_IDLE_SECONDS = 600.0
#: Sent with every request so API audit logs (and the RBAC test) can tell the provider's calls apart.
USER_AGENT = f"airflow-provider-kuberay/{__version__}"
StatusCallback = Callable[[RayJobStatus], None]


def request_timeout_from(extras: Mapping[str, Any]) -> float:
    """The ``request_timeout`` connection extra (seconds, > 0), else ``REQUEST_TIMEOUT`` (30)."""
    value = extras.get("request_timeout", REQUEST_TIMEOUT)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds > 0:
        raise InvalidParameterError("request_timeout", value, "must be a positive number of seconds (connection extra)")
    return seconds


class RayJobWaitTimeout(TimeoutError):
    """The wait's own timeout passed before the RayJob finished."""

    def __init__(self, last: RayJobStatus | None, message: str) -> None:
        super().__init__(message)
        self.last = last


def _kind_plural(kind: str) -> str:
    plurals = {c.RAYJOB_KIND: c.RAYJOB_PLURAL, c.RAYCLUSTER_KIND: c.RAYCLUSTER_PLURAL}
    if kind not in plurals:
        raise InvalidParameterError("kind", kind, f"must be one of {sorted(plurals)}")
    return plurals[kind]


def _checked(kind: str, name: str | None, namespace: str | None) -> str:
    """The plural of ``kind`` once kind, name and namespace are valid; raises naming the parameter *before* any
    request, instead of letting the API server answer 404 or 422."""
    plural = _kind_plural(kind)
    if name is not None:
        validate_dns_subdomain(name, "name")
    if namespace is not None:
        validate_namespace(namespace)
    return plural


def classify_sync_error(exc: BaseException) -> ApiFailure | None:
    """Map the official client's exceptions to :class:`~.ApiFailure` (None: not an API/transport error)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return ApiFailure(exc.status, f"{exc.status} {exc.reason}")
    if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, OSError)):
        return ApiFailure(None, f"{type(exc).__name__}: {exc}", permanent=is_certificate_failure(exc))
    return None


def classify_async_error(exc: BaseException) -> ApiFailure | None:
    """Map kubernetes_asyncio / aiohttp exceptions to :class:`~.ApiFailure`."""
    import aiohttp
    from kubernetes_asyncio.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return ApiFailure(exc.status, f"{exc.status} {exc.reason}")
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError)):
        return ApiFailure(None, f"{type(exc).__name__}: {exc}", permanent=is_certificate_failure(exc))
    return None


def _status_of(exc: BaseException, classify: Callable[[BaseException], ApiFailure | None]) -> int | None:
    failure = classify(exc)
    return failure.status if failure else None


async def araise_for_status(response: Any) -> Any:
    """Raise ``ApiException`` for a non-2xx raw (``_preload_content=False``) response; return it otherwise.

    Unlike the official sync client, kubernetes_asyncio only raises for responses it decodes itself: a raw 503
    would otherwise be read as a one-line watch stream or an empty pod list, defeating retries and backoff.
    """
    if 200 <= response.status <= 299:
        return response
    from kubernetes_asyncio.client.exceptions import ApiException

    body = await response.read()
    response.release()
    error = ApiException(status=response.status, reason=response.reason)
    error.body = body
    raise error


class KubeRayHook(KubernetesHook):
    """Create, read, watch and delete RayJobs and RayClusters; read and follow Ray pod logs.

    :param kubernetes_conn_id: a ``kubernetes`` (or ``kuberay``) connection; ``kubernetes_default`` by default.
    :param retry: backoff for transient API errors (429, 5xx, resets, timeouts); 4xx are never retried.
    """

    conn_type = "kuberay"
    hook_name = "KubeRay (Kubernetes cluster)"

    def __init__(self, *args: Any, retry: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry = retry or RetryPolicy()

    # -- connection form ------------------------------------------------------------------------------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The ``kuberay`` connection form: kubeconfig mode or GKE mode, namespace, request timeout."""
        from kuberay_provider.hooks.conn_mode import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden standard fields and placeholders of the ``kuberay`` connection form."""
        from kuberay_provider.hooks.conn_mode import connection_ui_field_behaviour

        return connection_ui_field_behaviour()

    # -- plumbing -------------------------------------------------------------------------------------
    @cached_property
    def connection_mode(self) -> Any:
        """The :class:`~kuberay_provider.hooks.conn_mode.ConnectionMode` of this hook's connection."""
        from kuberay_provider.hooks.conn_mode import KUBECONFIG, resolve_mode

        if self.config_file or self.in_cluster:  # hook parameters choose the cncf handling
            return KUBECONFIG
        return resolve_mode(self.conn_extras)

    @cached_property
    def gke_access(self) -> Any:
        """GKE mode: the cluster's endpoint, CA and the refreshing token source (one GetCluster per hook)."""
        from kuberay_provider.hooks import gke

        return gke.connect(self.connection_mode.gke)

    def get_conn(self) -> Any:
        """The API client, identified by the provider's User-Agent (credentials masked in logs): the cncf hook's
        (kubeconfig mode) or, in GKE mode, one pinned to the cluster's CA with a refreshing Google token."""
        if self.connection_mode.is_gke:
            from kuberay_provider.hooks import gke

            return gke.sync_api_client(self.gke_access, USER_AGENT)
        mask_connection_secrets(self.conn_extras, default_kubeconfig_paths(self.config_file))
        api_client = super().get_conn()
        api_client.user_agent = USER_AGENT
        return api_client

    @cached_property
    def request_timeout(self) -> float:
        """Seconds one API request may take: the connection's ``request_timeout`` extra, else 30."""
        return request_timeout_from(self.conn_extras)

    def _call(self, fn: Callable[[], Any]) -> Any:
        return call_with_retry(fn, classify_sync_error, self.retry, log=self.log)

    def resolve_namespace(self, namespace: str | None) -> str:
        """The given namespace, else the connection's, else ``default``."""
        return namespace or self.get_namespace() or c.DEFAULT_NAMESPACE

    # -- custom objects ---------------------------------------------------------------------------------
    def create_object(self, kind: str, body: dict[str, Any], namespace: str) -> tuple[dict[str, Any], bool]:
        """Create a RayJob/RayCluster. Returns ``(object, created)``; AlreadyExists returns the existing one."""
        plural = _checked(kind, (body.get("metadata") or {}).get("name"), namespace)
        api = self.custom_object_client
        try:
            obj = self._call(lambda: api.create_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, body, _request_timeout=self.request_timeout))
            return obj, True
        except Exception as exc:
            if _status_of(exc, classify_sync_error) != 409:
                raise
        existing = self.get_object(kind, body["metadata"]["name"], namespace)
        if existing is None:  # deleted between the 409 and the read: try once more
            return self.create_object(kind, body, namespace)
        return existing, False

    def get_object(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        plural = _checked(kind, name, namespace)
        api = self.custom_object_client
        try:
            return self._call(lambda: api.get_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, name, _request_timeout=self.request_timeout))
        except Exception as exc:
            if _status_of(exc, classify_sync_error) == 404:
                return None
            raise

    def list_objects(self, kind: str, namespace: str | None, label_selector: str = "") -> list[dict[str, Any]]:
        """Objects matching ``label_selector`` in ``namespace`` (all namespaces if None)."""
        plural = _checked(kind, None, namespace or None)
        api = self.custom_object_client
        if namespace:
            result = self._call(lambda: api.list_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, label_selector=label_selector,
                _request_timeout=self.request_timeout))
        else:
            result = self._call(lambda: api.list_cluster_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, plural, label_selector=label_selector, _request_timeout=self.request_timeout))
        return list(result.get("items") or [])

    def delete_object(self, kind: str, name: str, namespace: str, propagation: str = "Foreground") -> bool:
        """Delete (foreground by default: children first). Returns False if it was already gone."""
        plural = _checked(kind, name, namespace)
        api = self.custom_object_client
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            self._call(lambda: api.delete_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, name, body=body,
                _request_timeout=self.request_timeout))
            return True
        except Exception as exc:
            if _status_of(exc, classify_sync_error) == 404:
                return False
            raise

    def wait_deleted(self, kind: str, name: str, namespace: str, timeout: float = 120.0, interval: float = 1.0) -> bool:
        """Wait until the object no longer exists (finalizers done). True if gone in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get_object(kind, name, namespace) is None:
                return True
            time.sleep(interval)
        return False

    # -- RayJob convenience ----------------------------------------------------------------------------
    def create_rayjob(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        return self.create_object(c.RAYJOB_KIND, body, body["metadata"]["namespace"])

    def get_rayjob(self, name: str, namespace: str) -> dict[str, Any] | None:
        return self.get_object(c.RAYJOB_KIND, name, namespace)

    def delete_rayjob(self, name: str, namespace: str, propagation: str = "Foreground") -> bool:
        return self.delete_object(c.RAYJOB_KIND, name, namespace, propagation)

    def list_rayjobs(self, namespace: str | None, label_selector: str = "") -> list[dict[str, Any]]:
        return self.list_objects(c.RAYJOB_KIND, namespace, label_selector)

    # -- waiting ---------------------------------------------------------------------------------------
    def _watch_lines(self, name: str, namespace: str, action: Watch, plural: str = c.RAYJOB_PLURAL) -> Iterator[bytes]:
        from kubernetes.watch.watch import iter_resp_lines

        api = self.custom_object_client
        kwargs: dict[str, Any] = {
            "field_selector": f"metadata.name={name}",
            "watch": True,
            "allow_watch_bookmarks": True,
            "timeout_seconds": action.timeout_seconds,
            "_preload_content": False,
            "_request_timeout": (10, action.timeout_seconds + 15),
        }
        if action.resource_version:
            kwargs["resource_version"] = action.resource_version
        response = api.list_namespaced_custom_object(c.RAY_GROUP, c.RAY_VERSION, namespace, plural, **kwargs)
        try:
            yield from iter_resp_lines(response)
        finally:
            response.release_conn()

    def wait_for_rayjob(
        self,
        name: str,
        namespace: str,
        *,
        timeout: float | None = None,
        on_status: StatusCallback | None = None,
        waiter: RayJobWaiter | None = None,
    ) -> RayJobStatus:
        """Block until the RayJob is terminal; returns its final status.

        Raises :class:`~.RayJobGoneError` if it is deleted meanwhile and :class:`RayJobWaitTimeout` on timeout.
        """
        return self.wait_for(waiter or RayJobWaiter(name, namespace, timeout=timeout), on_status=on_status)

    def wait_for_raycluster_ready(self, name: str, namespace: str, *, timeout: float | None = None,
                                  on_status: Callable[[Any], None] | None = None) -> RayClusterStatus:
        """Block until the RayCluster reports ``state: ready`` (same watch machinery as for RayJobs)."""
        return self.wait_for(RayClusterWaiter(name, namespace, timeout=timeout), on_status=on_status)

    def wait_for(self, waiter: ObjectWaiter, *, on_status: Callable[[Any], None] | None = None) -> Any:
        """Drive ``waiter`` with blocking I/O: get, watch from the last resourceVersion, back off."""
        name, namespace = waiter.name, waiter.namespace
        validate_dns_subdomain(name, "name")
        validate_namespace(namespace)
        while True:
            action = waiter.next_action()
            if isinstance(action, Finished):
                return action.status
            if isinstance(action, Gone):
                raise RayJobGoneError(f"{waiter.plural} {namespace}/{name} was deleted while the task waited for it")
            if isinstance(action, TimedOut):
                raise RayJobWaitTimeout(action.last, f"{waiter.plural} {namespace}/{name}: the wait's deadline passed")
            if isinstance(action, Sleep):
                time.sleep(action.seconds)
                continue
            try:
                if isinstance(action, Get):
                    changed = waiter.on_object(self._get_raw(name, namespace, waiter.plural))
                    if changed and on_status:
                        on_status(changed)
                    continue
                started, seen = time.monotonic(), 0
                for line in self._watch_lines(name, namespace, action, waiter.plural):
                    seen += 1
                    changed = waiter.on_event(parse_watch_line(line))
                    if changed and on_status:
                        on_status(changed)
                    if waiter.done:
                        break
                waiter.on_watch_closed(seen, time.monotonic() - started)
            except Exception as exc:
                failure = classify_sync_error(exc)
                if failure is None:
                    raise
                waiter.on_failure(failure)

    def _get_raw(self, name: str, namespace: str, plural: str = c.RAYJOB_PLURAL) -> dict[str, Any] | None:
        """A single GET (no retries: the waiter decides about retries)."""
        try:
            return self.custom_object_client.get_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, name, _request_timeout=self.request_timeout)
        except Exception as exc:
            if _status_of(exc, classify_sync_error) == 404:
                return None
            raise

    # -- pods, logs, events ----------------------------------------------------------------------------
    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """Pods as plain dicts (camelCase, as the API returns them)."""
        api = self.core_v1_client
        response = self._call(lambda: api.list_namespaced_pod(
            namespace, label_selector=label_selector, _preload_content=False, _request_timeout=self.request_timeout))
        return list(json.loads(response.data).get("items") or [])

    def read_pod_log(self, name: str, namespace: str, container: str | None = None, tail_lines: int | None = None) -> str:
        api = self.core_v1_client
        kwargs: dict[str, Any] = {"_request_timeout": self.request_timeout, "_preload_content": False}
        if container:
            kwargs["container"] = container
        if tail_lines:
            kwargs["tail_lines"] = tail_lines
        response = self._call(lambda: api.read_namespaced_pod_log(name, namespace, **kwargs))
        return response.data.decode("utf-8", errors="replace")

    def follow_pod_log(self, name: str, namespace: str, container: str | None = None,
                       on_response: Callable[[Any], None] | None = None) -> Iterator[str]:
        """Lines of a pod's log as they are written (``follow=true``) until the container stops."""
        from kubernetes.watch.watch import iter_resp_lines

        kwargs: dict[str, Any] = {"follow": True, "_preload_content": False, "_request_timeout": (10, None)}
        if container:
            kwargs["container"] = container
        response = self.core_v1_client.read_namespaced_pod_log(name, namespace, **kwargs)
        if on_response:
            on_response(response)
        try:
            for line in iter_resp_lines(response):
                yield line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        finally:
            response.release_conn()

    def list_events(self, namespace: str, field_selector: str = "type=Warning") -> list[dict[str, Any]]:
        """core/v1 Events of ``namespace`` matching ``field_selector`` (default: Warning events)."""
        api = self.core_v1_client
        response = self._call(lambda: api.list_namespaced_event(
            namespace, field_selector=field_selector, _preload_content=False, _request_timeout=self.request_timeout))
        return list(json.loads(response.data).get("items") or [])

    def read_submitter_job(self, rayjob_name: str, namespace: str) -> dict[str, Any] | None:
        """The K8sJobMode submitter ``batch/v1`` Job (named like the RayJob), or None."""
        api = self.batch_v1_client
        try:
            response = self._call(lambda: api.read_namespaced_job(
                rayjob_name, namespace, _preload_content=False, _request_timeout=self.request_timeout))
        except Exception as exc:
            if _status_of(exc, classify_sync_error) == 404:
                return None
            raise
        return json.loads(response.data)

    def diagnose(self, status: RayJobStatus) -> list[str]:
        """Why a RayJob did not get anywhere: head pod problems, the submitter Job, Warning events (best effort)."""
        lines: list[str] = []
        try:
            if status.cluster_name:
                lines += describe_pod_problems(self.list_pods(status.namespace, head_pod_selector(status.cluster_name)))
            lines += describe_pod_problems(self.list_pods(status.namespace, submitter_pod_selector(status.name)))
            lines += describe_submitter_job(self.read_submitter_job(status.name, status.namespace))
            lines += describe_warning_events(self.list_events(status.namespace), status.name, status.cluster_name)
        except Exception as exc:  # diagnostics must never hide the real failure
            lines.append(f"(could not read pods or events: {exc})")
        return lines

    def read_driver_log_tail(self, rayjob_name: str, namespace: str, tail: LogTail) -> None:
        """Nothing was streamed (streaming off, or it failed): read the newest submitter pod's last lines once."""
        if tail.size == 0:
            return
        pod = newest_started_pod(self.list_pods(namespace, submitter_pod_selector(rayjob_name)))
        if pod is not None:
            text = self.read_pod_log(pod_name(pod), namespace, c.SUBMITTER_CONTAINER, tail.size)
            tail.extend(pod_name(pod), text.splitlines())

    def stream_driver_log(self, rayjob_name: str, namespace: str, tail: LogTail, emit: Callable[[str], None],
                          stop: threading.Event, poll_interval: float = 2.0) -> None:
        """Follow the submitter pods' logs (K8sJobMode) into ``emit`` until ``stop`` is set and streams end."""
        plan = SubmitterLogPlan(poll_interval)
        while True:
            try:
                name = plan.pick(self.list_pods(namespace, submitter_pod_selector(rayjob_name)))
            except Exception:
                name = None
            if name is not None:
                tail.start(name)
                try:
                    for line in self.follow_pod_log(name, namespace, c.SUBMITTER_CONTAINER):
                        if tail.accept(name, line):
                            emit(line)
                    plan.stream_ended(stop.is_set())
                except Exception:
                    plan.stream_failed()
            if stop.is_set():
                return
            stop.wait(plan.wait_seconds())

    def test_connection(self) -> tuple[bool, str]:
        """"Test connection": credentials, GKE API (GKE mode), the cluster endpoint, ``ray.io/v1`` RayJobs, and a
        SelfSubjectAccessReview for each verb the provider uses; the message names what failed."""
        from kuberay_provider.hooks.access_check import test_connection

        return test_connection(self)


class AsyncKubeRayHook(AsyncKubernetesHook):
    """Async twin of :class:`KubeRayHook` for triggers (kubernetes_asyncio); same decisions, non-blocking I/O.

    :param kubernetes_conn_id: a ``kubernetes`` (or ``kuberay``) connection; ``kubernetes_default`` by default.
    :param retry: backoff for transient API errors (429, 5xx, resets, timeouts); 4xx are never retried.
    """

    conn_type = "kuberay"
    hook_name = "KubeRay (Kubernetes cluster)"

    def __init__(self, *args: Any, retry: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry = retry or RetryPolicy()
        self.request_timeout = REQUEST_TIMEOUT  # the connection's ``request_timeout`` once a client was leased
        self._shared: Any = None

    def conn_key(self) -> Any:
        """The :class:`~kuberay_provider.hooks.informer.ConnKey` of this hook's connection."""
        from kuberay_provider.hooks.informer import ConnKey

        return ConnKey(self.conn_id or "kubernetes_default", self.cluster_context, self.config_file, self.in_cluster)

    def use_shared_client(self, shared: Any) -> None:
        """Make every call of this hook use ``shared`` (a :class:`~kuberay_provider.hooks.informer.SharedClient`)."""
        self._shared = shared
        self.request_timeout = shared.request_timeout

    @contextlib.asynccontextmanager
    async def shared_client(self) -> AsyncIterator[Any]:
        """Hold the loop's client for this connection for the block (every call inside reuses it)."""
        from kuberay_provider.hooks.informer import registry

        if self._shared is not None:
            yield self._shared
            return
        async with registry().clients.lease(self.conn_key()) as shared:
            self.use_shared_client(shared)
            try:
                yield shared
            finally:
                self._shared = None

    @contextlib.asynccontextmanager
    async def get_conn(self) -> AsyncIterator[Any]:
        """The loop's shared API client for this connection (built once, off the loop; see
        :mod:`~kuberay_provider.hooks.informer`), identified by the provider's User-Agent; secrets masked."""
        async with self.shared_client() as shared:
            yield shared.api

    async def _call(self, fn: Callable[[Any], Any]) -> Any:
        from kuberay_provider.hooks.informer import registry

        in_flight = registry().requests

        async def attempt():
            # Bounded below the client's connection limit: a request never waits for a connection inside its
            # own timeout (a wave of finished jobs would otherwise time out in the pool and retry).
            async with self.get_conn() as api_client, in_flight:
                return await fn(api_client)

        return await acall_with_retry(attempt, classify_async_error, self.retry, log=self.log)

    async def get_object(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        from kubernetes_asyncio import client

        plural = _checked(kind, name, namespace)
        try:
            return await self._call(lambda api: client.CustomObjectsApi(api).get_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, name, _request_timeout=self.request_timeout))
        except Exception as exc:
            if _status_of(exc, classify_async_error) == 404:
                return None
            raise

    async def get_rayjob(self, name: str, namespace: str) -> dict[str, Any] | None:
        return await self.get_object(c.RAYJOB_KIND, name, namespace)

    async def list_objects(self, kind: str, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        from kubernetes_asyncio import client

        plural = _checked(kind, None, namespace)
        result = await self._call(lambda api: client.CustomObjectsApi(api).list_namespaced_custom_object(
            c.RAY_GROUP, c.RAY_VERSION, namespace, plural, label_selector=label_selector,
            _request_timeout=self.request_timeout))
        return list(result.get("items") or [])

    async def delete_object(self, kind: str, name: str, namespace: str, propagation: str = "Foreground") -> bool:
        from kubernetes_asyncio import client

        plural = _checked(kind, name, namespace)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await self._call(lambda api: client.CustomObjectsApi(api).delete_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, name, body=body,
                _request_timeout=self.request_timeout))
            return True
        except Exception as exc:
            if _status_of(exc, classify_async_error) == 404:
                return False
            raise

    async def delete_rayjob(self, name: str, namespace: str, propagation: str = "Foreground") -> bool:
        return await self.delete_object(c.RAYJOB_KIND, name, namespace, propagation)

    async def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        from kubernetes_asyncio import client

        async def list_raw(api):
            response = await araise_for_status(await client.CoreV1Api(api).list_namespaced_pod(
                namespace, label_selector=label_selector, _preload_content=False, _request_timeout=self.request_timeout))
            return json.loads(await response.read())

        return list((await self._call(list_raw)).get("items") or [])

    async def list_events(self, namespace: str, field_selector: str = "type=Warning") -> list[dict[str, Any]]:
        """Async twin of :meth:`KubeRayHook.list_events`."""
        from kubernetes_asyncio import client

        async def list_raw(api):
            response = await araise_for_status(await client.CoreV1Api(api).list_namespaced_event(
                namespace, field_selector=field_selector, _preload_content=False, _request_timeout=self.request_timeout))
            return json.loads(await response.read())

        return list((await self._call(list_raw)).get("items") or [])

    async def read_pod_log(self, name: str, namespace: str, container: str | None = None,
                           tail_lines: int | None = None) -> str:
        from kubernetes_asyncio import client

        kwargs: dict[str, Any] = {"_request_timeout": self.request_timeout, "_preload_content": False}
        if container:
            kwargs["container"] = container
        if tail_lines:
            kwargs["tail_lines"] = tail_lines

        async def read(api):
            response = await araise_for_status(await client.CoreV1Api(api).read_namespaced_pod_log(name, namespace, **kwargs))
            return (await response.read()).decode("utf-8", errors="replace")

        return await self._call(read)

    async def follow_pod_log(self, name: str, namespace: str, container: str | None = None,
                             since_seconds: int | None = None) -> AsyncIterator[str]:
        """Lines of a pod's log as they are written, until the container stops."""
        import aiohttp
        from kubernetes_asyncio import client

        async with self.get_conn() as api:
            # A follow lives as long as the container: no total timeout (the client's default would cut it and
            # the reconnect re-read the log); only a connect timeout and a long idle-read bound.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=FOLLOW_IDLE_SECONDS)
            kwargs: dict[str, Any] = {"follow": True, "_preload_content": False, "_request_timeout": timeout}
            if since_seconds:
                kwargs["since_seconds"] = since_seconds
            if container:
                kwargs["container"] = container
            response = await araise_for_status(await client.CoreV1Api(api).read_namespaced_pod_log(name, namespace, **kwargs))
            try:
                while True:
                    line = await response.content.readline()
                    if not line:
                        return
                    yield line.decode("utf-8", errors="replace").rstrip("\n")
            finally:
                response.release()

    async def _watch_lines(self, api: Any, name: str, namespace: str, action: Watch,
                           plural: str = c.RAYJOB_PLURAL) -> AsyncIterator[bytes]:
        from kubernetes_asyncio import client

        kwargs: dict[str, Any] = {
            "field_selector": f"metadata.name={name}",
            "watch": True,
            "allow_watch_bookmarks": True,
            "timeout_seconds": action.timeout_seconds,
            "_preload_content": False,
            "_request_timeout": action.timeout_seconds + 15,
        }
        if action.resource_version:
            kwargs["resource_version"] = action.resource_version
        response = await araise_for_status(await client.CustomObjectsApi(api).list_namespaced_custom_object(
            c.RAY_GROUP, c.RAY_VERSION, namespace, plural, **kwargs))
        try:
            while True:
                line = await response.content.readline()
                if not line:
                    return
                yield line
        finally:
            response.release()

    async def _get_raw(self, api: Any, name: str, namespace: str,
                       plural: str = c.RAYJOB_PLURAL) -> dict[str, Any] | None:
        from kubernetes_asyncio import client

        try:
            return await client.CustomObjectsApi(api).get_namespaced_custom_object(
                c.RAY_GROUP, c.RAY_VERSION, namespace, plural, name, _request_timeout=self.request_timeout)
        except Exception as exc:
            if _status_of(exc, classify_async_error) == 404:
                return None
            raise

    async def watch_rayjob(self, name: str, namespace: str, *, waiter: RayJobWaiter) -> AsyncIterator[RayJobStatus]:
        """Yield each changed status until ``waiter`` is done (terminal, gone or timed out)."""
        async for status in self.watch_object(waiter):
            yield status

    async def watch_object(self, waiter: ObjectWaiter) -> AsyncIterator[Any]:
        """Drive ``waiter`` with non-blocking I/O; yield each changed status snapshot until it is done."""
        name, namespace = waiter.name, waiter.namespace
        validate_dns_subdomain(name, "name")
        validate_namespace(namespace)
        while True:
            action = waiter.next_action()
            if isinstance(action, (Finished, Gone, TimedOut)):
                return
            if isinstance(action, Sleep):
                await asyncio.sleep(action.seconds)
                continue
            try:
                async with self.get_conn() as api:
                    if isinstance(action, Get):
                        changed = waiter.on_object(await self._get_raw(api, name, namespace, waiter.plural))
                        if changed:
                            yield changed
                        continue
                    started, seen = time.monotonic(), 0
                    async for line in self._watch_lines(api, name, namespace, action, waiter.plural):
                        seen += 1
                        changed = waiter.on_event(parse_watch_line(line))
                        if changed:
                            yield changed
                        if waiter.done:
                            break
                    waiter.on_watch_closed(seen, time.monotonic() - started)
            except Exception as exc:
                failure = classify_async_error(exc)
                if failure is None:
                    raise
                waiter.on_failure(failure)

    async def read_submitter_job(self, rayjob_name: str, namespace: str) -> dict[str, Any] | None:
        """Async twin of :meth:`KubeRayHook.read_submitter_job`."""
        from kubernetes_asyncio import client

        async def read(api):
            response = await araise_for_status(await client.BatchV1Api(api).read_namespaced_job(
                rayjob_name, namespace, _preload_content=False, _request_timeout=self.request_timeout))
            return json.loads(await response.read())

        try:
            return await self._call(read)
        except Exception as exc:
            if _status_of(exc, classify_async_error) == 404:
                return None
            raise

    async def read_driver_log_tail(self, rayjob_name: str, namespace: str, tail: LogTail) -> None:
        """Async twin of :meth:`KubeRayHook.read_driver_log_tail`."""
        if tail.size == 0:
            return
        pod = newest_started_pod(await self.list_pods(namespace, submitter_pod_selector(rayjob_name)))
        if pod is not None:
            text = await self.read_pod_log(pod_name(pod), namespace, c.SUBMITTER_CONTAINER, tail.size)
            tail.extend(pod_name(pod), text.splitlines())

    async def stream_driver_log(self, rayjob_name: str, namespace: str, tail: LogTail, emit: Callable[[str], None],
                                stop: asyncio.Event, poll_interval: float = 2.0) -> None:
        """Async twin of :meth:`KubeRayHook.stream_driver_log`."""
        plan = SubmitterLogPlan(poll_interval)
        while True:
            try:
                name = plan.pick(await self.list_pods(namespace, submitter_pod_selector(rayjob_name)))
            except Exception:
                name = None
            if name is not None:
                tail.start(name)
                try:
                    async for line in self.follow_pod_log(name, namespace, c.SUBMITTER_CONTAINER):
                        if tail.accept(name, line):
                            emit(line)
                    plan.stream_ended(stop.is_set())
                except Exception:
                    plan.stream_failed()
            if stop.is_set():
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=plan.wait_seconds())
