"""RayJanitorOperator: sweep RayJobs and RayClusters this provider created and nobody waits for any more."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.janitor import TaskInstanceRef, plan_sweep
from kuberay_provider.naming import validate_namespace

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class RayJanitorOperator(BaseOperator):
    """Delete provider-labelled RayJobs whose task instance is finished or that are older than ``max_age``, and
    RayClusters older than ``max_age`` or orphaned. ``dry_run=True`` only reports. Returns the sweep list.

    :param namespaces: namespaces to sweep: a list or a comma-separated string (None: all namespaces, which needs a
        ClusterRole to list RayJobs cluster-wide).
    :param max_age: age after which any provider-made object is deleted, whatever its state.
    """

    template_fields: Sequence[str] = ("namespaces",)

    def __init__(self, *, namespaces: Sequence[str] | str | None = None, max_age: dt.timedelta = dt.timedelta(hours=24),
                 dry_run: bool = False, kubernetes_conn_id: str = "kubernetes_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(max_age, dt.timedelta) or max_age <= dt.timedelta(0):
            raise InvalidParameterError("max_age", max_age, "must be a positive timedelta")
        if namespaces is not None and not (isinstance(namespaces, str) and "{{" in namespaces):
            for ns in self._split(namespaces):
                validate_namespace(ns, "namespaces")
        self.namespaces = namespaces
        self.max_age, self.dry_run, self.kubernetes_conn_id = max_age, dry_run, kubernetes_conn_id

    def execute(self, context: Context) -> list[dict[str, str]]:
        from kuberay_provider.hooks.kuberay import KubeRayHook

        hook = KubeRayHook(kubernetes_conn_id=self.kubernetes_conn_id)
        selector = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE}"
        rayjobs, clusters = [], []
        for ns in self._split(self.namespaces) or [None]:
            rayjobs += hook.list_objects(c.RAYJOB_KIND, ns, selector)
            clusters += hook.list_objects(c.RAYCLUSTER_KIND, ns, selector)
        ti = context["ti"]
        sweeps = plan_sweep(rayjobs, clusters, now=dt.datetime.now(dt.UTC), max_age=self.max_age,
                            ti_state=lambda ref: self._ti_state(ti, ref))
        for sweep in sweeps:
            verb = "Would delete" if self.dry_run else "Deleting"
            self.log.info("%s %s %s/%s: %s", verb, sweep.kind, sweep.namespace, sweep.name, sweep.reason)
            if not self.dry_run:
                hook.delete_object(sweep.kind, sweep.name, sweep.namespace)
        self.log.info("%d object(s) %s", len(sweeps), "to sweep (dry run)" if self.dry_run else "swept")
        return [vars(s) | {"dry_run": self.dry_run} for s in sweeps]

    @staticmethod
    def _split(namespaces: Sequence[str] | str | None) -> list[str]:
        """A list, or a comma-separated string (what a templated Variable renders to)."""
        if namespaces is None:
            return []
        if isinstance(namespaces, str):
            return [ns.strip() for ns in namespaces.split(",") if ns.strip()]
        return list(namespaces)

    def _ti_state(self, ti: Any, ref: TaskInstanceRef) -> str | None:
        """The state of another task instance (Airflow 3 Task SDK; metadata DB on Airflow 2)."""
        try:
            if hasattr(ti, "get_task_states"):
                states = ti.get_task_states(dag_id=ref.dag_id, task_ids=[ref.task_id], run_ids=[ref.run_id],
                                            map_index=ref.map_index if ref.map_index >= 0 else None)
                key = f"{ref.task_id}_{ref.map_index}" if ref.map_index >= 0 else ref.task_id
                state = (states.get(ref.run_id) or {}).get(key)
            else:  # Airflow 2.10
                from airflow.models.taskinstance import TaskInstance
                from airflow.utils.session import create_session

                with create_session() as session:
                    row = session.query(TaskInstance.state).filter_by(
                        dag_id=ref.dag_id, task_id=ref.task_id, run_id=ref.run_id, map_index=ref.map_index
                    ).one_or_none()
                    state = row[0] if row else None
        except Exception as exc:
            self.log.warning("Could not read the state of %s: %s", ref, exc)
            return None
        return str(state.value if hasattr(state, "value") else state) if state is not None else None
