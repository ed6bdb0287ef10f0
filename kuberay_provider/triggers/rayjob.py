"""RayJobTrigger: waits for a RayJob in the triggerer, streams its driver log, and reports the outcome.

The decisions (what is terminal, what is success, how to resume a watch) come from
:mod:`kuberay_provider.status` and :mod:`kuberay_provider.hooks.watching`, the same code the operator's
synchronous wait uses. Every trigger of a triggerer process shares one Kubernetes client per connection and
one RayJob watch (and one submitter-pod watch) per namespace (:mod:`kuberay_provider.hooks.informer`); see
:mod:`.waits`. The trigger never deletes a running job when the *triggerer* restarts; it does
when a *user* kills the task (``on_kill``, Airflow 3.3+) or, on older Airflow, when the task instance is
no longer deferred (``cleanup`` + ``safe_to_cancel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from kuberay_provider import constants as c
from kuberay_provider.hooks.informer import RAYCLUSTERS, Feed, registry
from kuberay_provider.hooks.kuberay import AsyncKubeRayHook
from kuberay_provider.hooks.pods import LogTail
from kuberay_provider.hooks.watching import RayJobWaiter
from kuberay_provider.outcome import error_event, outcome_event, succeeded
from kuberay_provider.triggers.waits import LOG_DRAIN_SECONDS, DriverLog, wait_for_rayjob

__all__ = ["LOG_DRAIN_SECONDS", "RayClusterDeletedTrigger", "RayJobTrigger"]


def _airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = (int(p) for p in __version__.split(".")[:2])
    return major, minor


class RayJobTrigger(BaseTrigger):
    """Fire one event when the RayJob ``namespace/name`` is terminal, deleted, or ``deadline`` passes.

    Event payload: ``status`` (``success`` | ``failed`` | ``deleted`` | ``timeout`` | ``error``),
    ``rayjob`` (the final :class:`~kuberay_provider.status.RayJobStatus` as a dict), ``message``,
    ``log_tail`` (last driver-log lines) and ``diagnostics`` (empty: a failure's pod problems and Warning events are
    read where the task resumes, :func:`~kuberay_provider.lifecycle.with_diagnostics`).

    :param name: the RayJob's name.
    :param namespace: its namespace.
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster; default ``kubernetes_default``.
    :param deadline: absolute UNIX time after which the trigger reports ``timeout`` (None: no limit).
    :param stream_logs: follow the submitter pod's log into the task log while waiting.
    :param log_tail_lines: driver-log lines kept for the event's ``log_tail`` (default 50).
    :param delete_on_kill: delete the RayJob when a user kills the task while it is deferred.
    :param watch_timeout: seconds each watch request asks the API server for before it is renewed (default 60,
        with jitter).
    :param cluster_context: kubeconfig context overriding the connection's.
    :param config_file: kubeconfig path overriding the connection's.
    :param in_cluster: use the in-cluster configuration, overriding the connection's.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        kubernetes_conn_id: str = "kubernetes_default",
        *,
        deadline: float | None = None,
        stream_logs: bool = True,
        log_tail_lines: int = 50,
        delete_on_kill: bool = True,
        watch_timeout: int = 60,
        cluster_context: str | None = None,
        config_file: str | None = None,
        in_cluster: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.deadline = deadline
        self.stream_logs = stream_logs
        self.log_tail_lines = log_tail_lines
        self.delete_on_kill = delete_on_kill
        self.watch_timeout = watch_timeout
        self.cluster_context = cluster_context
        self.config_file = config_file
        self.in_cluster = in_cluster
        self._fired = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "name": self.name,
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "deadline": self.deadline,
                "stream_logs": self.stream_logs,
                "log_tail_lines": self.log_tail_lines,
                "delete_on_kill": self.delete_on_kill,
                "watch_timeout": self.watch_timeout,
                "cluster_context": self.cluster_context,
                "config_file": self.config_file,
                "in_cluster": self.in_cluster,
            },
        )

    def _hook(self) -> AsyncKubeRayHook:
        return AsyncKubeRayHook(
            kubernetes_conn_id=self.kubernetes_conn_id,
            cluster_context=self.cluster_context,
            config_file=self.config_file,
            in_cluster=self.in_cluster,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        reg = registry()
        conn = self._hook().conn_key()
        tail = LogTail(self.log_tail_lines)
        try:
            hook = await reg.acquire_hook(conn)  # the loop's one hook (and client) for this connection
            try:
                event = await self._wait(hook, tail)
            finally:
                await reg.release_hook(conn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            event = error_event(f"{type(exc).__name__}: {exc}", tail.lines)
        self._fired = True
        yield TriggerEvent(self._identified(event))

    def _identified(self, event: dict[str, Any]) -> dict[str, Any]:
        """Every event names its RayJob (``name``, ``namespace``), whatever the outcome."""
        return {**event, "name": self.name, "namespace": self.namespace}

    async def _wait(self, hook: AsyncKubeRayHook, tail: LogTail) -> dict[str, Any]:
        reg = registry()
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.time())
        waiter = RayJobWaiter(self.name, self.namespace, timeout=timeout, watch_timeout=self.watch_timeout)
        feed = Feed()
        logs = DriverLog(hook, reg, self.name, self.namespace, tail, self._emit_driver_line, feed,
                         self._emit_driver_lines) if self.stream_logs else None
        outcome = await wait_for_rayjob(hook, reg, waiter, on_status=self._on_status, logs=logs, feed=feed)
        return await self._event_for(hook, outcome, tail, logs)

    def _on_status(self, status: Any) -> None:
        self.log.info("%s", status.describe())

    def _emit_driver_line(self, line: str) -> None:
        self.log.info("[driver] %s", line)

    def _emit_driver_lines(self, lines: list[str]) -> None:
        """A tail read's lines as one record, each line still marked ``[driver]`` (one log call, not one a line:
        with thousands of jobs ending together the per-record cost of the log pipeline adds up on the loop)."""
        self.log.info("%s", "\n".join(f"[driver] {line}" for line in lines))

    async def _event_for(self, hook: AsyncKubeRayHook, outcome: Any, tail: LogTail,
                         logs: DriverLog | None = None) -> dict[str, Any]:
        """The same event the operator's synchronous wait builds (:func:`~kuberay_provider.outcome.outcome_event`):
        the outcome and the driver log's tail. A failure's diagnostics are read where the task resumes
        (:func:`~kuberay_provider.lifecycle.with_diagnostics`), not in the shared triggerer."""
        if logs is not None:
            await logs.finish()
        if not tail.lines and not succeeded(outcome) and (logs is None or not logs.read_last_pod):
            with contextlib.suppress(Exception):
                await hook.read_driver_log_tail(self.name, self.namespace, tail)
        return outcome_event(outcome, self.name, self.namespace, log_tail=tail.lines)

    async def _delete(self, why: str) -> None:
        """The one place the trigger deletes its RayJob (a user kill): the lifecycle module's one delete."""
        from kuberay_provider import lifecycle

        self.log.info("Deleting RayJob %s/%s: %s", self.namespace, self.name, why)
        try:
            hook = self._hook()
            async with hook.shared_client():
                await lifecycle.delete_rayjob_async(hook, self.name, self.namespace, why, log=self.log)
        except Exception:
            self.log.exception("Could not delete RayJob %s/%s", self.namespace, self.name)

    async def on_kill(self) -> None:
        """Airflow 3.3+: called only when a user kills the task (not on triggerer restart or timeout)."""
        if self._fired or not self.delete_on_kill:
            return
        await self._delete("the task was killed by a user while deferred")

    async def cleanup(self) -> None:
        """Before Airflow 3.3 ``on_kill`` is not wired: delete only if the task is no longer deferred."""
        if _airflow_version() >= (3, 3) or self._fired or not self.delete_on_kill:
            return
        if await self._safe_to_cancel():
            await self._delete("the task instance is no longer deferred")

    async def _safe_to_cancel(self) -> bool:
        """True when the task instance left DEFERRED (user action), False on triggerer restart or if unknown."""
        ti = self.task_instance
        if ti is None:
            return False
        try:
            from asgiref.sync import sync_to_async

            if _airflow_version() >= (3, 0):
                from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

                states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                    dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
                )
                key = f"{ti.task_id}_{ti.map_index}" if ti.map_index >= 0 else ti.task_id
                state = states[ti.run_id][key]
            else:
                from airflow.models.taskinstance import TaskInstance
                from airflow.utils.session import create_session

                def read_state() -> str | None:
                    with create_session() as session:
                        row = session.query(TaskInstance.state).filter_by(
                            dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index
                        ).one_or_none()
                        return row[0] if row else None

                state = await sync_to_async(read_state)()
        except Exception:
            self.log.warning("Could not read the task instance state; keeping the RayJob", exc_info=True)
            return False
        return state is not None and str(state) not in ("deferred", "TaskInstanceState.DEFERRED")


class RayClusterDeletedTrigger(BaseTrigger):
    """Fire when no RayCluster (and no Ray pod) matching ``label_selector`` / ``names`` is left.

    Event payload: ``status`` (``success`` | ``timeout``) and ``left`` (what is still there).

    :param namespace: where to look.
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster; default ``kubernetes_default``.
    :param label_selector: RayClusters matching this label selector.
    :param names: RayCluster names.
    :param deadline: absolute UNIX time after which the trigger reports ``timeout`` (None: no limit).
    :param poll_interval: seconds between checks (default 5); a change to a watched RayCluster checks at once.
    """

    def __init__(
        self,
        namespace: str,
        kubernetes_conn_id: str = "kubernetes_default",
        *,
        label_selector: str = "",
        names: list[str] | None = None,
        deadline: float | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.label_selector = label_selector
        self.names = list(names or [])
        self.deadline = deadline
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "namespace": self.namespace,
                "kubernetes_conn_id": self.kubernetes_conn_id,
                "label_selector": self.label_selector,
                "names": self.names,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
            },
        )

    def _identified(self, event: dict[str, Any]) -> dict[str, Any]:
        """Every event names what it checked (``name``: the cluster names or the selector, and ``namespace``)."""
        return {**event, "name": ",".join(self.names) or self.label_selector, "namespace": self.namespace,
                "names": list(self.names), "label_selector": self.label_selector}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(self._identified(await self._wait()))

    async def _wait(self) -> dict[str, Any]:
        from kuberay_provider.teardown import leftovers

        hook = AsyncKubeRayHook(kubernetes_conn_id=self.kubernetes_conn_id)
        reg = registry()
        feed: asyncio.Queue = asyncio.Queue()
        with contextlib.ExitStack() as watched:
            subscribed: set[str] = set()
            async with hook.shared_client():
                while True:
                    try:
                        clusters = await self._clusters(hook)
                        names = sorted(set(self.names) | {(o.get("metadata") or {}).get("name", "") for o in clusters})
                        pods = []
                        for name in names:
                            pods += await hook.list_pods(self.namespace, f"{c.RAY_CLUSTER_LABEL}={name}")
                        left = leftovers(clusters, pods)
                        for name in set(names) - subscribed:  # a cluster's changes wake the check up at once
                            watched.enter_context(reg.subscribe(hook.conn_key(), self.namespace, RAYCLUSTERS, name,
                                                                feed, "raycluster"))
                            subscribed.add(name)
                    except Exception as exc:
                        self.log.warning("Could not list Ray clusters (%s); trying again", exc)
                        left = None
                    if left == []:
                        return {"status": "success", "left": []}
                    if self.deadline is not None and time.time() >= self.deadline:
                        return {"status": "timeout", "left": left or ["(could not list)"]}
                    wait = self.poll_interval
                    if self.deadline is not None:
                        wait = max(0.0, min(wait, self.deadline - time.time()))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(feed.get(), wait)
                    while not feed.empty():
                        feed.get_nowait()

    async def _clusters(self, hook: AsyncKubeRayHook) -> list[dict[str, Any]]:
        found = await hook.list_objects(c.RAYCLUSTER_KIND, self.namespace, self.label_selector) if self.label_selector else []
        for name in self.names:
            obj = await hook.get_object(c.RAYCLUSTER_KIND, name, self.namespace)
            if obj is not None:
                found.append(obj)
        return found
