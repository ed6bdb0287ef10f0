"""Waiting for a RayJob (or a RayCluster) through a resumable watch, as a sans-I/O state machine.

:class:`ObjectWaiter` (and its RayJob/RayCluster flavours) decides *what* to do next (get the object, watch
from a resourceVersion, back off, or stop) and interprets what comes back; the sync hook and the async hook
only perform the I/O it asks for. That way the resume-from-resourceVersion, 410-Gone re-list, periodic
re-list, bounded backoff and the success rule are written once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kuberay_provider import constants as c
from kuberay_provider.hooks.retry import ApiFailure, RetryPolicy
from kuberay_provider.status import RayClusterStatus, RayJobStatus


class RayJobWaitError(RuntimeError):
    """A non-retryable API error while waiting (e.g. 403 Forbidden)."""


@dataclass(frozen=True)
class WatchEvent:
    type: str
    object: dict[str, Any] = field(default_factory=dict)

    @property
    def error_code(self) -> int | None:
        if self.type != "ERROR":
            return None
        code = self.object.get("code")
        return int(code) if isinstance(code, int) else None


def parse_watch_line(line: bytes | str) -> WatchEvent | None:
    """One line of a watch stream (JSON) → :class:`WatchEvent`; blank or malformed lines → None."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line:
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "type" not in data:
        return None
    return WatchEvent(type=str(data["type"]), object=data.get("object") or {})


# Actions the waiter asks its driver to perform.
@dataclass(frozen=True)
class Get:
    """Read the object (a 404 is reported as ``on_object(None)``)."""


@dataclass(frozen=True)
class Watch:
    resource_version: str | None
    timeout_seconds: int


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Finished:
    status: RayJobStatus


@dataclass(frozen=True)
class Gone:
    last: RayJobStatus | None


@dataclass(frozen=True)
class TimedOut:
    last: RayJobStatus | None


Action = Get | Watch | Sleep | Finished | Gone | TimedOut


class ObjectWaiter:
    """Sans-I/O wait loop for one object until its status snapshot ``is_terminal`` (RayJob: finished;
    RayCluster: ready), it is deleted, or the timeout passes.

    :param timeout: overall seconds to wait (None: no limit).
    :param watch_timeout: server-side ``timeoutSeconds`` of each watch request.
    :param relist_every: re-read the object at least this often even if the watch looks healthy.
    :param retry: backoff used after consecutive failures (attempts are unbounded while waiting; the
        overall ``timeout`` bounds them), so a long API outage is survived without a busy loop.
    :param min_watch_seconds: a watch that ends sooner than this with no event counts as a failure
        (a server dropping streams must not make the client reconnect in a tight loop).
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        *,
        timeout: float | None = None,
        watch_timeout: int = 60,
        relist_every: float = 300.0,
        retry: RetryPolicy | None = None,
        min_watch_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        plural: str = c.RAYJOB_PLURAL,
        interpret: Callable[[dict[str, Any]], Any] = RayJobStatus.from_object,
    ) -> None:
        self.plural = plural
        self._interpret = interpret
        self.name = name
        self.namespace = namespace
        self._clock = clock
        self._deadline = clock() + timeout if timeout is not None else None  # 0 means: already out of time
        self._watch_timeout = watch_timeout
        self._relist_every = relist_every
        self._retry = retry or RetryPolicy(cap=15.0)
        self._min_watch_seconds = min_watch_seconds
        self._resource_version: str | None = None
        self._need_get = True
        self._last_get = 0.0
        self._failures = 0
        self._pending_sleep = 0.0
        self._outcome: Finished | Gone | None = None
        self.last: RayJobStatus | None = None
        self.watches_started = 0
        self.gets = 0

    @property
    def done(self) -> bool:
        return self._outcome is not None

    def remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._clock()

    def next_action(self) -> Action:
        if self._outcome is not None:
            return self._outcome
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            return TimedOut(self.last)
        if self._pending_sleep > 0:
            seconds = self._pending_sleep if remaining is None else min(self._pending_sleep, remaining)
            self._pending_sleep = 0.0
            return Sleep(seconds)
        if self._need_get or self._clock() - self._last_get >= self._relist_every:
            self.gets += 1
            return Get()
        timeout = self._watch_timeout if remaining is None else max(1, min(self._watch_timeout, int(remaining) + 1))
        self.watches_started += 1
        return Watch(self._resource_version, timeout)

    def on_object(self, obj: dict[str, Any] | None) -> RayJobStatus | None:
        """Result of a :class:`Get`. Returns the status if it changed (for the caller to report)."""
        self._last_get = self._clock()
        self._need_get = False
        self._failures = 0
        if obj is None:
            self._outcome = Gone(self.last)
            return None
        return self._update(obj)

    def on_event(self, event: WatchEvent | None) -> RayJobStatus | None:
        """One watch event. Returns the status if it changed."""
        if event is None:
            return None
        if event.type == "BOOKMARK":
            rv = (event.object.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._resource_version = rv
            return None
        if event.type == "ERROR":
            self.on_failure(ApiFailure(event.error_code, str(event.object.get("message") or event.object)))
            return None
        meta = event.object.get("metadata") or {}
        if meta.get("name") not in (None, self.name):
            return None
        if event.type == "DELETED":
            self._outcome = Gone(self._interpret(event.object))
            return None
        return self._update(event.object)

    def on_watch_closed(self, events_seen: int, seconds: float) -> None:
        """The stream ended without an error."""
        if events_seen == 0 and seconds < self._min_watch_seconds:
            self.on_failure(ApiFailure(None, "watch stream closed immediately"))
        else:
            self._failures = 0

    def on_failure(self, failure: ApiFailure) -> None:
        """An error from a Get or a Watch."""
        if failure.status == 410:  # resourceVersion too old: re-list, then watch from the fresh version
            self._need_get = True
            self._resource_version = None
            return
        if failure.status == 404:
            self._need_get = True
            return
        if not failure.retryable:
            raise RayJobWaitError(
                f"Kubernetes API error {failure.status} while waiting for RayJob {self.namespace}/{self.name}: "
                f"{failure.message}"
            )
        self._failures += 1
        self._need_get = self._need_get or self._failures > 1
        self._pending_sleep = self._retry.delay(self._failures)

    def _update(self, obj: dict[str, Any]) -> RayJobStatus | None:
        status = self._interpret(obj)
        if status.resource_version:
            self._resource_version = status.resource_version
        previous = self.last
        self.last = status
        if status.is_terminal:
            self._outcome = Finished(status)
        if previous is None or status.change_key != previous.change_key:
            return status
        return None


class RayJobWaiter(ObjectWaiter):
    """Wait for a RayJob to finish (see :class:`ObjectWaiter`)."""


class RayClusterWaiter(ObjectWaiter):
    """Wait for a RayCluster to become ready (see :class:`ObjectWaiter`)."""

    def __init__(self, name: str, namespace: str, **kwargs: Any) -> None:
        super().__init__(name, namespace, plural=c.RAYCLUSTER_PLURAL, interpret=RayClusterStatus.from_object, **kwargs)
