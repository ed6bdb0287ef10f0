"""RayJanitorOperator: sweep RayJobs and RayClusters this provider created and nobody waits for any more."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider import lifecycle
from kuberay_provider.compat import AirflowException, BaseOperator
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.janitor import UNKNOWN_TI_STATE, TaskInstanceRef, plan_sweep, state_name
from kuberay_provider.namespaces import connection_namespace
from kuberay_provider.naming import validate_namespace
from kuberay_provider.params import check_conn_id, resolved_at_runtime

if TYPE_CHECKING:
    from kuberay_provider.compat import Context

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def _dry_run_flag(value: Any) -> bool:
    """``dry_run`` as a bool; a rendered template gives ``"True"``/``"False"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidParameterError("dry_run", value, "must be True or False")


class RayJanitorOperator(BaseOperator):
    """Delete provider-labelled RayJobs whose task instance is finished or that are older than ``max_age``, and
    RayClusters older than ``max_age`` or orphaned. Objects whose task instance is still running, deferred, queued
    or up for retry are never deleted; objects without the provider's label are never looked at.

    Returns the sweep list (``kind``, ``namespace``, ``name``, ``reason``, ``dry_run``); with ``dry_run=True``
    nothing is deleted and the list says what would have been.

    :param namespaces: namespaces to sweep: a list or a comma-separated string. None: the connection's namespace
        (its extra ``namespace``, the same rule as every operator's, :mod:`kuberay_provider.namespaces`); if the
        connection names none, all namespaces (which needs a ClusterRole to list RayJobs cluster-wide).
        An empty value is an error, not "all namespaces". (templated)
    :param max_age: age after which any provider-made object is deleted unless its task instance is still alive
        (a positive ``timedelta``; default 24 hours).
    :param dry_run: only report; a rendered ``"True"``/``"False"`` works (``"{{ params.dry_run }}"``). (templated)
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster; default ``kubernetes_default``.
    """

    template_fields: Sequence[str] = ("namespaces", "dry_run")

    def __init__(self, *, namespaces: Sequence[str] | str | None = None, max_age: dt.timedelta = dt.timedelta(hours=24),
                 dry_run: bool | str = False, kubernetes_conn_id: str = "kubernetes_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(max_age, dt.timedelta) or max_age <= dt.timedelta(0):
            raise InvalidParameterError("max_age", max_age, "must be a positive timedelta")
        if not resolved_at_runtime(dry_run):
            _dry_run_flag(dry_run)
        check_conn_id(kubernetes_conn_id)
        if namespaces is not None and not resolved_at_runtime(namespaces):
            self._namespaces(namespaces)
        self.namespaces = namespaces
        self.max_age, self.dry_run, self.kubernetes_conn_id = max_age, dry_run, kubernetes_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from kuberay_provider.hooks.kuberay import KubeRayHook

        dry_run = _dry_run_flag(self.dry_run)
        hook = KubeRayHook(kubernetes_conn_id=self.kubernetes_conn_id)
        namespaces: list[str | None]
        if self.namespaces is not None:
            namespaces = list(self._namespaces(self.namespaces))
        else:
            namespaces = [connection_namespace(self.kubernetes_conn_id, hook)]  # None: every namespace
        self.log.info("Sweeping %s", ", ".join(f"namespace {ns}" for ns in namespaces if ns) or "all namespaces")
        selector = f"{c.MANAGED_BY_LABEL}={c.MANAGED_BY_VALUE}"
        rayjobs, clusters = [], []
        for ns in namespaces:
            # Clusters first: a RayJob created between the two lists must not make its new cluster look orphaned.
            clusters += hook.list_objects(c.RAYCLUSTER_KIND, ns, selector)
            rayjobs += hook.list_objects(c.RAYJOB_KIND, ns, selector)
        ti = context["ti"]
        sweeps = plan_sweep(rayjobs, clusters, now=dt.datetime.now(dt.UTC), max_age=self.max_age,
                            ti_state=lambda ref: self._ti_state(ti, ref))
        failures = []
        for sweep in sweeps:
            self.log.info("%s %s %s/%s: %s", "Would delete" if dry_run else "Deleting", sweep.kind, sweep.namespace,
                          sweep.name, sweep.reason)
            if dry_run:
                continue
            try:
                lifecycle.delete(hook, sweep.kind, sweep.name, sweep.namespace, reason=sweep.reason, log=self.log,
                                 raise_errors=True)
            except Exception as exc:  # one failure must not stop the rest of the sweep
                self.log.error("Could not delete %s %s/%s: %s", sweep.kind, sweep.namespace, sweep.name, exc)
                failures.append(f"{sweep.kind} {sweep.namespace}/{sweep.name}: {exc}")
        self.log.info("%d object(s) %s", len(sweeps), "to sweep (dry run, nothing deleted)" if dry_run else "swept")
        if failures:
            raise AirflowException("The janitor could not delete:\n  " + "\n  ".join(failures))
        return [vars(s) | {"dry_run": dry_run} for s in sweeps]

    @staticmethod
    def _namespaces(namespaces: Sequence[str] | str) -> list[str]:
        """A list, or a comma-separated string (what a templated Variable renders to); each a valid namespace."""
        if isinstance(namespaces, str):
            names = [ns.strip() for ns in namespaces.split(",") if ns.strip()]
        elif isinstance(namespaces, Sequence) and all(isinstance(ns, str) for ns in namespaces):
            names = [ns.strip() for ns in namespaces]
        else:
            raise InvalidParameterError("namespaces", namespaces, "must be a list of namespaces or a comma-separated string")
        if not names:
            raise InvalidParameterError(
                "namespaces", namespaces, "names no namespace; pass None (not an empty value) to sweep all namespaces"
            )
        for ns in names:
            if not resolved_at_runtime(ns):
                validate_namespace(ns, "namespaces")
        return names

    def _ti_state(self, ti: Any, ref: TaskInstanceRef) -> str | None:
        """The state of another task instance (Airflow 3 Task SDK; metadata DB on Airflow 2); None if it has none
        or does not exist, :data:`UNKNOWN_TI_STATE` if it could not be read (the object is then kept)."""
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
            self.log.warning("Could not read the state of %s; keeping its objects: %s", ref, exc)
            return UNKNOWN_TI_STATE
        return state_name(state)
