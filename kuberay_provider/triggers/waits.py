"""One RayJob wait on the loop's shared machinery (:mod:`kuberay_provider.hooks.informer`).

A wait subscribes to the namespace's RayJob informer for its RayJob (and, with ``stream_logs``, to the
submitter-pod informer for its pods), feeds what arrives to its own
:class:`~kuberay_provider.hooks.watching.RayJobWaiter` (the same success/terminal/gone/deadline rules as the
synchronous wait) and leaves both when it ends or is cancelled. Its driver log is followed only while the
loop's :class:`~kuberay_provider.hooks.informer.LogFollowPool` grants it a slot; otherwise (or for what a
follow missed) the log's tail is read once when the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from kuberay_provider import constants as c
from kuberay_provider.hooks.informer import (
    RAYJOBS,
    SUBMITTER_PODS,
    Feed,
    LogTicket,
    Registry,
    newer,
)
from kuberay_provider.hooks.pods import LogTail, newest_started_pod, pod_finished, pod_name
from kuberay_provider.hooks.watching import RayJobWaiter, RayJobWaitError, TimedOut, WatchEvent
from kuberay_provider.status import RayJobStatus

#: How long a finished job's log follow may go on draining what the driver wrote last.
LOG_DRAIN_SECONDS = 15.0
#: Follows of one pod that may break before the wait settles for the tail at the end.
MAX_FOLLOW_FAILURES = 3
#: How long a follow that ended cleanly waits for the pod watch to report the container finished before it counts as
#: cut and is opened again. The stream and the pod watch are separate connections: a container's exit closes its
#: log stream before the pod's new status arrives on the watch (by milliseconds, or by seconds on a busy triggerer).
FOLLOW_END_GRACE_SECONDS = 5.0


class DriverLog(LogTicket):
    """A wait's driver log: submitter pods from the shared pod informer, a follow while the pool allows it (the
    log is its own ticket in the loop's :class:`~kuberay_provider.hooks.informer.LogFollowPool`)."""

    def __init__(self, hook: Any, registry: Registry, name: str, namespace: str, tail: LogTail,
                 emit: Callable[[str], None], feed: Feed,
                 emit_block: Callable[[list[str]], None] | None = None) -> None:
        """``emit``: one followed line; ``emit_block``: the lines of one tail read at once (default: ``emit`` each)."""
        self.hook, self.name, self.namespace = hook, name, namespace
        self.tail, self.emit, self.feed = tail, emit, feed
        self.emit_block = emit_block or self._emit_each
        self.pool = registry.log_pool
        self.pods: dict[str, dict[str, Any]] = {}
        self.complete: set[str] = set()  # pods whose log was followed to its end
        self.failures: dict[str, int] = {}
        #: pods whose follow ended cleanly while the watch still shows them running: the end, or a cut stream
        self.unconfirmed: dict[str, asyncio.TimerHandle] = {}
        super().__init__(time.monotonic())
        self.task: asyncio.Task | None = None  # the follow, while the pool grants it
        self.reading: asyncio.Task | None = None  # the tail read of a finished pod (no follow slot needed)
        self.following: str | None = None
        self.streaming = True
        self.watched = False  # ``pods`` mirror the shared pod watch (seeded from its list, not disabled)

    def _emit_each(self, lines: list[str]) -> None:
        for line in lines:
            self.emit(line)

    def on_pod(self, type_: str, pod: dict[str, Any]) -> None:
        name = pod_name(pod)
        if type_ == "DELETED":
            self.pods.pop(name, None)
        elif newer(pod, self.pods.get(name)):
            self.pods[name] = pod
        if name in self.unconfirmed and (type_ == "DELETED" or pod_finished(self.pods[name])):
            self.unconfirmed.pop(name).cancel()  # the follow did reach the log's end
            self.complete.add(name)
        self._want()

    def seed(self, pods: dict[str, dict[str, Any]]) -> None:
        self.watched = True
        for pod in pods.values():
            self.on_pod("ADDED", pod)

    def disable(self, why: str) -> None:
        """Pods cannot be watched (e.g. RBAC): no streaming, the tail is still read at the end."""
        self.streaming = False
        self.watched = False
        self.pool.release(self)

    def _target(self) -> str | None:
        pod = newest_started_pod(self.pods.values())
        if pod is None:
            return None
        name = pod_name(pod)
        if name in self.complete or name in self.unconfirmed or self.failures.get(name, 0) >= MAX_FOLLOW_FAILURES:
            return None
        return name

    def _want(self) -> None:
        if not self.streaming or self.task is not None:
            return
        target = self._target()
        if target is None:
            return
        if pod_finished(self.pods[target]):  # the driver is done and its log final: read the tail now
            self._read_tail_soon(target)
        else:
            self.pool.request(self)

    def grant(self) -> None:
        target = self._target()
        if target is None or self.task is not None or pod_finished(self.pods[target]):
            self.pool.release(self)
            if target is not None and self.task is None:
                self._read_tail_soon(target)
            return
        self.task = asyncio.get_running_loop().create_task(self._follow(target), name=f"driver-log-{self.name}")

    def _read_tail_soon(self, pod: str) -> None:
        """Read a finished pod's last lines in the background (once at a time), so that the job's end finds the
        tail already there: the submitter pod ends before KubeRay marks the RayJob finished."""
        if self.reading is None and self.tail.size > 0:
            self.pool.release(self)
            self.reading = asyncio.get_running_loop().create_task(self._read_tail(pod), name=f"driver-tail-{self.name}")

    async def _read_tail(self, pod: str) -> None:
        try:
            text = await self.hook.read_pod_log(pod, self.namespace, c.SUBMITTER_CONTAINER, self.tail.size)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures[pod] = self.failures.get(pod, 0) + 1
        else:
            if new := self.tail.merge_tail(pod, text.splitlines()):
                self.emit_block(new)
            self.complete.add(pod)
        finally:
            if self.reading is asyncio.current_task():
                self.reading = None

    def revoke(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _follow(self, pod: str) -> bool:
        """Follow ``pod``'s log; True if the stream reached its end (reported in the feed as well)."""
        self.following = pod
        ended = False
        try:
            self.tail.start(pod)
            async for line in self.hook.follow_pod_log(pod, self.namespace, c.SUBMITTER_CONTAINER):
                if self.tail.accept(pod, line):
                    self.emit(line)
            ended = True
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures[pod] = self.failures.get(pod, 0) + 1
        self.feed.put_nowait(("log", "ENDED" if ended else "FAILED", pod))
        return ended

    def on_follow_ended(self, type_: str, pod: str) -> None:
        if self.task is not None and not self.task.done():
            return  # the report of an earlier follow (revoked, then granted again): the current one goes on
        self.task = None
        current = self.pods.get(pod)
        if type_ == "ENDED" and (current is None or pod_finished(current)):
            self.complete.add(pod)
        elif type_ == "ENDED" and pod not in self.unconfirmed:  # the container's end, or a cut: the watch decides
            self.unconfirmed[pod] = asyncio.get_running_loop().call_later(
                FOLLOW_END_GRACE_SECONDS, self._follow_was_cut, pod)
        self.pool.release(self)
        self._want()

    def _follow_was_cut(self, pod: str) -> None:
        """The pod still runs a while after its follow ended: the stream was cut; open it again (lines are
        de-duplicated)."""
        if self.unconfirmed.pop(pod, None) is None or not self.streaming:
            return
        self.failures[pod] = self.failures.get(pod, 0) + 1
        self._want()

    async def finish(self) -> None:
        """The job ended: let a running follow or tail read end (bounded), then read the tail of what was not
        followed or read."""
        self.streaming = False
        for pod in list(self.unconfirmed):  # its stream ended cleanly and so did the job: the log was read to its end
            self.unconfirmed.pop(pod).cancel()
            self.complete.add(pod)
        reading, self.reading = self.reading, None
        if reading is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reading), timeout=LOG_DRAIN_SECONDS)
            reading.cancel()
        task, self.task = self.task, None
        if task is not None:
            try:
                if await asyncio.wait_for(asyncio.shield(task), timeout=LOG_DRAIN_SECONDS):
                    self.complete.add(self.following or "")
            except (TimeoutError, Exception):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self.pool.release(self)
        pod = newest_started_pod(self.pods.values())
        if pod is None or pod_name(pod) in self.complete or self.tail.size <= 0:
            return
        with contextlib.suppress(Exception):
            text = await self.hook.read_pod_log(pod_name(pod), self.namespace, c.SUBMITTER_CONTAINER, self.tail.size)
            if new := self.tail.merge_tail(pod_name(pod), text.splitlines()):
                self.emit_block(new)
            self.complete.add(pod_name(pod))

    @property
    def read_last_pod(self) -> bool:
        """Whether the newest submitter pod's log was followed or read to its end (an empty tail is then the log's
        truth, not something to read again)."""
        pod = newest_started_pod(self.pods.values())
        return pod is not None and pod_name(pod) in self.complete

    def cancel(self) -> None:
        self.streaming = False
        for timer in self.unconfirmed.values():
            timer.cancel()
        self.unconfirmed.clear()
        if self.reading is not None:
            self.reading.cancel()
            self.reading = None
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.pool.release(self)


async def wait_for_rayjob(hook: Any, registry: Registry, waiter: RayJobWaiter, *, on_status: Callable[[RayJobStatus], None],
                          logs: DriverLog | None = None, feed: Feed | None = None) -> Any:
    """Drive ``waiter`` from the shared informers until it has an outcome; returns it (Finished/Gone/TimedOut).

    Raises :class:`~.RayJobWaitError` on an API error no retry fixes (as the per-trigger watch did).
    (Written flat -- no context-manager stack, no closures: a triggerer holds ten thousand of these frames, and each
    object they keep alive is one more for every full garbage collection to walk.)
    """
    name, namespace = waiter.name, waiter.namespace
    conn = hook.conn_key()
    feed = feed if feed is not None else Feed()
    jobs, job_sub = registry.join(conn, namespace, RAYJOBS, name, feed, "rayjob")
    pods = pod_sub = seeding = None
    try:
        if logs is not None:
            pods, pod_sub = registry.join(conn, namespace, SUBMITTER_PODS, name, feed, "pod")
        remaining = waiter.remaining()
        try:  # the first list may not come (an outage at start): the deadline still holds
            cached = await (jobs.current(name) if remaining is None
                            else asyncio.wait_for(jobs.current(name), max(0.0, remaining)))
        except TimeoutError:
            return waiter.outcome() or TimedOut(waiter.last)
        last = cached.get(name)
        if last is None:  # not in the shared cache: it may have been created a moment ago; ask the API
            full = await hook.get_rayjob(name, namespace)
            last = RAYJOBS.trim(full) if full is not None else None
        if changed := waiter.on_object(last):
            on_status(changed)
        if logs is not None and pods is not None:
            if pods.ready.is_set():
                _seed(logs, pods, name)
            else:  # seed once the pod informer's first list is in (without making the RayJob wait for it)
                seeding = asyncio.get_running_loop().create_task(_seed_when_ready(logs, pods, name))
        while (outcome := waiter.outcome()) is None:
            try:
                source, type_, item = await feed.get(waiter.remaining())
            except TimeoutError:
                continue
            if source == "rayjob":
                if type_ == "ERROR":
                    raise RayJobWaitError(f"Kubernetes API error {item.status} while waiting for RayJob "
                                          f"{namespace}/{name}: {item.message}")
                if not newer(item, last):
                    continue
                if type_ == "DELETED":
                    waiter.on_event(WatchEvent("DELETED", item))
                else:
                    if changed := waiter.on_object(item):
                        on_status(changed)
                    last = item
            elif logs is not None and source == "pod":
                if type_ == "ERROR":
                    logs.disable(str(item.message))
                else:
                    logs.on_pod(type_, item)
            elif logs is not None and source == "log":
                logs.on_follow_ended(type_, item)
        return outcome
    except BaseException:
        if logs is not None:
            logs.cancel()
        raise
    finally:
        if seeding is not None:
            seeding.cancel()
        if pods is not None and pod_sub is not None:
            pods.remove(pod_sub)
        jobs.remove(job_sub)


def _seed(logs: DriverLog, pods: Any, name: str) -> None:
    if pods.error is not None and not pods.watcher.synced:
        logs.disable(str(pods.error.message))
    else:
        logs.seed(dict(pods.cache.get(name) or {}))


async def _seed_when_ready(logs: DriverLog, pods: Any, name: str) -> None:
    await pods.ready.wait()
    _seed(logs, pods, name)
