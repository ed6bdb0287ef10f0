"""Waiting for a RayJob (or a RayCluster) through a resumable watch, as a sans-I/O state machine.

:class:`ObjectWaiter` (and its RayJob/RayCluster flavours) decides *what* to do next (get the object, watch
from a resourceVersion, back off, or stop) and interprets what comes back; the sync hook and the async hook
only perform the I/O it asks for. That way the resume-from-resourceVersion, 410-Gone re-list, periodic
re-list, bounded backoff and the success rule are written once.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kuberay_provider import constants as c
from kuberay_provider.hooks.retry import ApiFailure, RetryPolicy
from kuberay_provider.status import RayClusterStatus, RayJobStatus

#: The default backoff of a wait's consecutive failures (immutable: every waiter shares it).
WAIT_RETRY = RetryPolicy(cap=15.0)


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


@dataclass(frozen=True)
class List:
    """List the whole collection (a :class:`CollectionWatcher`'s fresh start, after 410 Gone, or periodically)."""


Action = Get | Watch | Sleep | Finished | Gone | TimedOut
CollectionAction = List | Watch | Sleep

#: Watches ask for ``watch_timeout * (1 - jitter * U[0, 1))`` seconds: waits started together (a triggerer
#: restart) must not re-watch together every minute.
WATCH_JITTER = 0.25


class _Resumable:
    """What every watch-based wait shares: the resume point, consecutive failures and their backoff, the watch
    timeout (with jitter) and the rule that a stream closing at once counts as a failure."""

    def __init__(self, *, watch_timeout: int, retry: RetryPolicy | None, min_watch_seconds: float,
                 watch_jitter: float, rng: Callable[[], float], clock: Callable[[], float]) -> None:
        self._clock = clock
        self._watch_timeout = watch_timeout
        self._watch_jitter = watch_jitter
        self._rng = rng
        self._retry = retry or WAIT_RETRY
        self._min_watch_seconds = min_watch_seconds
        self._resource_version: str | None = None
        self._failures = 0
        self._pending_sleep = 0.0
        self.watches_started = 0
        self.last_failure: ApiFailure | None = None

    @property
    def resource_version(self) -> str | None:
        return self._resource_version

    def _watch(self, remaining: float | None) -> Watch:
        base = self._watch_timeout * (1.0 - self._watch_jitter * self._rng())
        timeout = max(1, round(base))
        if remaining is not None:
            timeout = max(1, min(timeout, int(remaining) + 1))
        self.watches_started += 1
        return Watch(self._resource_version, timeout)

    def _bookmark(self, event: WatchEvent) -> None:
        rv = (event.object.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._resource_version = rv

    def _consumed_control_line(self, event: WatchEvent) -> bool:
        """BOOKMARK (move the resume point) and ERROR (a failure) lines; True when ``event`` was one of them."""
        if event.type == "BOOKMARK":
            self._bookmark(event)
            return True
        if event.type == "ERROR":
            self.on_failure(ApiFailure(event.error_code, str(event.object.get("message") or event.object)))
            return True
        return False

    def on_watch_closed(self, events_seen: int, seconds: float) -> None:
        """The stream ended without an error."""
        if events_seen == 0 and seconds < self._min_watch_seconds:
            self.on_failure(ApiFailure(None, "watch stream closed immediately"))
        else:
            self._failures = 0

    def on_failure(self, failure: ApiFailure) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _back_off(self, failure: ApiFailure) -> None:
        self.last_failure = failure
        self._failures += 1
        self._pending_sleep = self._retry.delay(self._failures)

    @property
    def failures(self) -> int:
        """Consecutive failures so far (0 once a request succeeded)."""
        return self._failures


class ObjectWaiter(_Resumable):
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
        watch_jitter: float = WATCH_JITTER,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        plural: str = c.RAYJOB_PLURAL,
        interpret: Callable[[dict[str, Any]], Any] = RayJobStatus.from_object,
    ) -> None:
        super().__init__(watch_timeout=watch_timeout, retry=retry, min_watch_seconds=min_watch_seconds,
                         watch_jitter=watch_jitter, rng=rng, clock=clock)
        self.plural = plural
        self._interpret = interpret
        self.name = name
        self.namespace = namespace
        self._deadline = clock() + timeout if timeout is not None else None  # 0 means: already out of time
        self._relist_every = relist_every
        self._need_get = True
        self._last_get = 0.0
        self._outcome: Finished | Gone | None = None
        self.last: RayJobStatus | None = None
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
        return self._watch(remaining)

    def outcome(self) -> Finished | Gone | TimedOut | None:
        """The wait's end (finished, gone, or out of time), or None while it goes on; no I/O is asked for."""
        if self._outcome is not None:
            return self._outcome
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            return TimedOut(self.last)
        return None

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
        if event is None or self._consumed_control_line(event):
            return None
        meta = event.object.get("metadata") or {}
        if meta.get("name") not in (None, self.name):
            return None
        if event.type == "DELETED":
            self._outcome = Gone(self._interpret(event.object))
            return None
        return self._update(event.object)

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
        self._back_off(failure)
        self._need_get = self._need_get or self._failures > 1

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


class CollectionWatcher(_Resumable):
    """Sans-I/O list + watch of a whole collection (one namespace, one kind, one label selector): an informer's
    decisions. The same rules as :class:`ObjectWaiter`: resume from the last resourceVersion (bookmarks
    included), re-list after 410 Gone, after a second consecutive failure and every ``relist_every`` seconds,
    back off with jitter (bounded), never reconnect in a tight loop. It has no deadline: it runs until its
    driver stops it.

    A non-retryable failure (401/403/...) does not raise: the driver reports it to its subscribers and the
    watcher backs off (``last_failure`` says what happened).
    """

    def __init__(
        self,
        *,
        watch_timeout: int = 60,
        relist_every: float = 120.0,
        retry: RetryPolicy | None = None,
        min_watch_seconds: float = 1.0,
        watch_jitter: float = WATCH_JITTER,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(watch_timeout=watch_timeout, retry=retry, min_watch_seconds=min_watch_seconds,
                         watch_jitter=watch_jitter, rng=rng, clock=clock)
        self._relist_every = relist_every
        self._need_list = True
        self._last_list = 0.0
        self.lists = 0
        self.synced = False

    def next_action(self) -> CollectionAction:
        if self._pending_sleep > 0:
            seconds, self._pending_sleep = self._pending_sleep, 0.0
            return Sleep(seconds)
        if self._need_list or self._clock() - self._last_list >= self._relist_every:
            self.lists += 1
            return List()
        return self._watch(None)

    def on_list(self, resource_version: str | None) -> None:
        """A :class:`List` succeeded at ``resource_version``: watch from there."""
        self._last_list = self._clock()
        self._need_list = False
        self._failures = 0
        self._resource_version = resource_version or None
        self.synced = True

    def on_event(self, event: WatchEvent | None) -> WatchEvent | None:
        """One watch line; returns the event to hand to subscribers (None: bookmark, error or junk)."""
        if event is None or self._consumed_control_line(event):
            return None
        rv = (event.object.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._resource_version = rv
        return event

    def on_failure(self, failure: ApiFailure) -> None:
        """An error from a List or a Watch (410 and 404 re-list at once; everything else backs off)."""
        self.last_failure = failure
        if failure.status in (410, 404):
            self._need_list = True
            self._resource_version = None
            return
        self._back_off(failure)
        self._need_list = self._need_list or self._failures > 1 or not failure.retryable
