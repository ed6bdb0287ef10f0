"""RayJobTrigger: waits for a RayJob in the triggerer, streams its driver log, and reports the outcome.

The decisions (what is terminal, what is success, how to resume a watch) come from
:mod:`kuberay_provider.status` and :mod:`kuberay_provider.hooks.watching`, the same code the operator's
synchronous wait uses. The trigger never deletes a running job when the *triggerer* restarts; it does
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
from kuberay_provider.hooks.kuberay import AsyncKubeRayHook
from kuberay_provider.hooks.pods import LogTail
from kuberay_provider.hooks.watching import RayJobWaiter
from kuberay_provider.outcome import error_event, final_status, outcome_event, succeeded

LOG_DRAIN_SECONDS = 15.0


def _airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = (int(p) for p in __version__.split(".")[:2])
    return major, minor


class RayJobTrigger(BaseTrigger):
    """Fire one event when the RayJob ``namespace/name`` is terminal, deleted, or ``deadline`` passes.

    Event payload: ``status`` (``success`` | ``failed`` | ``deleted`` | ``timeout`` | ``error``),
    ``rayjob`` (the final :class:`~kuberay_provider.status.RayJobStatus` as a dict), ``message``,
    ``log_tail`` (last driver-log lines) and ``diagnostics`` (pod problems and Warning events on failure).

    :param deadline: absolute UNIX time after which the trigger reports ``timeout`` (None: no limit).
    :param stream_logs: follow the submitter pod's log into the task log while waiting.
    :param delete_on_kill: delete the RayJob when a user kills the task while it is deferred.
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
        hook = self._hook()
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.time())
        waiter = RayJobWaiter(self.name, self.namespace, timeout=timeout, watch_timeout=self.watch_timeout)
        tail = LogTail(self.log_tail_lines)
        stop = asyncio.Event()
        log_task = None
        if self.stream_logs:
            log_task = asyncio.create_task(
                hook.stream_driver_log(self.name, self.namespace, tail, self._emit_driver_line, stop)
            )
        try:
            async for status in hook.watch_rayjob(self.name, self.namespace, waiter=waiter):
                self.log.info("%s", status.describe())
            outcome = waiter.next_action()
            await self._finish_logs(log_task, stop)
            event = await self._event_for(hook, outcome, tail)
        except asyncio.CancelledError:
            stop.set()
            if log_task:
                log_task.cancel()
            raise
        except Exception as exc:
            stop.set()
            if log_task:
                log_task.cancel()
            event = error_event(f"{type(exc).__name__}: {exc}", tail.lines)
        self._fired = True
        yield TriggerEvent(event)

    def _emit_driver_line(self, line: str) -> None:
        self.log.info("[driver] %s", line)

    @staticmethod
    async def _finish_logs(log_task: asyncio.Task | None, stop: asyncio.Event) -> None:
        """Let the log stream drain what the finished job wrote, bounded in time."""
        stop.set()
        if log_task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(log_task), timeout=LOG_DRAIN_SECONDS)
        except (TimeoutError, Exception):
            log_task.cancel()
            with contextlib.suppress(BaseException):
                await log_task

    async def _event_for(self, hook: AsyncKubeRayHook, outcome: Any, tail: LogTail) -> dict[str, Any]:
        """The same event the operator's synchronous wait builds (:func:`~kuberay_provider.outcome.outcome_event`)."""
        ok = succeeded(outcome)
        status = final_status(outcome)
        diagnostics = await hook.diagnose(status) if status and not ok else []
        if not tail.lines and not ok:
            with contextlib.suppress(Exception):
                await hook.read_driver_log_tail(self.name, self.namespace, tail)
        return outcome_event(outcome, self.name, self.namespace, diagnostics=diagnostics, log_tail=tail.lines)

    async def _delete(self, why: str) -> None:
        self.log.info("Deleting RayJob %s/%s: %s", self.namespace, self.name, why)
        try:
            await self._hook().delete_rayjob(self.name, self.namespace)
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
    """Fire when no RayCluster (and no Ray pod) matching ``label_selector`` / ``names`` is left."""

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from kuberay_provider.teardown import leftovers

        hook = AsyncKubeRayHook(kubernetes_conn_id=self.kubernetes_conn_id)
        while True:
            try:
                clusters = await self._clusters(hook)
                pods = []
                for name in sorted(set(self.names) | {(o.get("metadata") or {}).get("name", "") for o in clusters}):
                    pods += await hook.list_pods(self.namespace, f"{c.RAY_CLUSTER_LABEL}={name}")
                left = leftovers(clusters, pods)
            except Exception as exc:
                self.log.warning("Could not list Ray clusters (%s); trying again", exc)
                left = None
            if left == []:
                yield TriggerEvent({"status": "success", "left": []})
                return
            if self.deadline is not None and time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "left": left or ["(could not list)"]})
                return
            await asyncio.sleep(self.poll_interval)

    async def _clusters(self, hook: AsyncKubeRayHook) -> list[dict[str, Any]]:
        found = await hook.list_objects(c.RAYCLUSTER_KIND, self.namespace, self.label_selector) if self.label_selector else []
        for name in self.names:
            obj = await hook.get_object(c.RAYCLUSTER_KIND, name, self.namespace)
            if obj is not None:
                found.append(obj)
        return found
