"""RayJobSensor (wait for a RayJob to finish) and RayClusterDeletedSensor (confirm teardown).

Both are ordinary Airflow sensors: ``poke`` decides, and ``BaseSensorOperator`` runs the loop, so ``mode="reschedule"``,
``soft_fail``, ``exponential_backoff`` and ``timeout`` behave as for any sensor; ``deferrable=True`` waits in the
triggerer instead. Their namespace is resolved by :func:`kuberay_provider.namespaces.resolve_namespace` (the
parameter, else the connection's, else ``default``), like every operator's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider.compat import AirflowException, BaseSensorOperator, PokeReturnValue, conf
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.namespaces import resolve_namespace
from kuberay_provider.naming import (
    validate_label_selector,
    validate_namespace,
    validate_raycluster_name,
    validate_rayjob_name,
)
from kuberay_provider.outcome import SUCCESS, failure_report, xcom_summary
from kuberay_provider.params import as_seconds, check_conn_id, known_now
from kuberay_provider.status import RayJobStatus
from kuberay_provider.teardown import leftovers

if TYPE_CHECKING:
    from kuberay_provider.compat import Context
    from kuberay_provider.hooks.kuberay import KubeRayHook


def _hook(conn_id: str) -> KubeRayHook:
    from kuberay_provider.hooks.kuberay import KubeRayHook

    return KubeRayHook(kubernetes_conn_id=conn_id)


def _seconds(value: Any, parameter: str, *, allow_zero: bool = False) -> float:
    """A sensor's ``poke_interval``/``timeout`` (number, numeric string or timedelta) in seconds."""
    return as_seconds(value, parameter, allow_zero=allow_zero)


class RayJobSensor(BaseSensorOperator):
    """Wait until a RayJob finishes; succeed only on ``Complete`` + ``SUCCEEDED`` (the provider's one rule).

    :param name: the RayJob's name (or an XComArg; e.g. ``"{{ ti.xcom_pull('train')['name'] }}"``). (templated)
    :param namespace: its namespace (default: the connection's, else ``default``). (templated)
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster; default ``kubernetes_default``.
    :param deferrable: wait in the triggerer (watch-based, no polling); default ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("name", "namespace")

    def __init__(
        self,
        *,
        name: str,
        namespace: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        for param in ("poke_interval", "timeout"):
            if param in kwargs and known_now(kwargs[param]):
                kwargs[param] = _seconds(kwargs[param], param, allow_zero=True)  # Airflow allows 0
        super().__init__(**kwargs)
        check_conn_id(kubernetes_conn_id)
        self.name = name
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.deferrable = deferrable
        self._validate(rendered=False)

    def _validate(self, rendered: bool) -> None:
        """Name and namespace: what is known at construction, everything again once rendered."""
        if rendered or known_now(self.name):
            if not isinstance(self.name, str) or not self.name:
                raise InvalidParameterError("name", self.name, "must name a RayJob")
            validate_rayjob_name(self.name)
        if self.namespace and (rendered or known_now(self.namespace)):
            validate_namespace(self.namespace)

    def _namespace(self, hook: KubeRayHook | None = None) -> str:
        return resolve_namespace(self.namespace, self.kubernetes_conn_id, hook=hook)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        self._validate(rendered=True)
        hook = _hook(self.kubernetes_conn_id)
        namespace = self._namespace(hook)
        obj = hook.get_rayjob(self.name, namespace)
        if obj is None:
            raise AirflowException(f"RayJob {namespace}/{self.name} does not exist")
        status = RayJobStatus.from_object(obj)
        self.log.info("%s", status.describe())
        if not status.is_terminal:
            return False
        if status.is_success:
            return PokeReturnValue(True, xcom_summary(status, name=self.name, namespace=namespace))
        raise AirflowException(status.describe())

    def execute(self, context: Context) -> Any:
        """Poke (any ``mode``) through ``BaseSensorOperator``, or defer to the trigger when ``deferrable``."""
        self._validate(rendered=True)
        if not self.deferrable:
            return super().execute(context)
        from kuberay_provider.triggers.rayjob import RayJobTrigger

        deadline = time.time() + self.timeout if self.timeout else None
        self.defer(
            trigger=RayJobTrigger(self.name, self._namespace(), self.kubernetes_conn_id,
                                  deadline=deadline, stream_logs=False, delete_on_kill=False),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") == SUCCESS:
            status = RayJobStatus.from_dict(event["rayjob"])
            return xcom_summary(status, name=self.name, namespace=event.get("namespace") or status.namespace)
        from kuberay_provider import lifecycle

        raise AirflowException(failure_report(lifecycle.with_diagnostics(event, lambda: _hook(self.kubernetes_conn_id))))


class RayClusterDeletedSensor(BaseSensorOperator):
    """Confirm that the Ray cluster(s) of a RayJob, or of a label selector, and their pods are gone.

    Fit to be an Airflow teardown task (``.as_teardown(setups=train)``); Airflow runs a teardown only when one of
    its setups succeeded (a failed RayJob is deleted by the operator itself).
    On timeout it fails listing every RayCluster and pod that is left. ``mode="reschedule"``, ``soft_fail`` and
    ``exponential_backoff`` work as for any sensor; ``deferrable=True`` checks from the triggerer.

    :param rayjob_name: the RayJob whose clusters to check; its ``rayClusterName`` and every RayCluster labelled
        ``ray.io/originated-from-cr-name=<rayjob_name>`` are checked. (templated)
    :param cluster_names: explicit RayCluster names. (templated)
    :param label_selector: RayClusters matching this selector. (templated)
    :param namespace: where to look (default: the connection's, else ``default``: the same rule as RayJobOperator).
        (templated)
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster; default ``kubernetes_default``.
    :param deferrable: check from the triggerer; default ``[operators] default_deferrable``.
    :param poke_interval: seconds (or a ``timedelta``) between checks (default 5).
    :param timeout: seconds (or a ``timedelta``) until the sensor fails listing what is left (default 600).
    """

    template_fields: Sequence[str] = ("rayjob_name", "cluster_names", "label_selector", "namespace")

    def __init__(
        self,
        *,
        rayjob_name: str | None = None,
        cluster_names: Sequence[str] | None = None,
        label_selector: str | None = None,
        namespace: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float | timedelta = 5.0,
        timeout: float | timedelta = 600.0,
        **kwargs: Any,
    ) -> None:
        poke_interval = _seconds(poke_interval, "poke_interval")
        timeout = _seconds(timeout, "timeout")
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        if not (rayjob_name or cluster_names or label_selector):
            raise InvalidParameterError(
                "rayjob_name", rayjob_name, "one of rayjob_name, cluster_names or label_selector is required"
            )
        if cluster_names is not None and isinstance(cluster_names, str) and known_now(cluster_names):
            raise InvalidParameterError("cluster_names", cluster_names, "must be a list of RayCluster names")
        check_conn_id(kubernetes_conn_id)
        self.rayjob_name = rayjob_name
        self.cluster_names = cluster_names
        self.label_selector = label_selector
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.deferrable = deferrable
        self._left: list[str] = []
        self._validate(rendered=False)

    def _validate(self, rendered: bool) -> None:
        """Every name, the namespace and the selector: known ones now, all of them again once rendered."""
        def check(value: Any) -> bool:
            return value is not None and value != "" and (rendered or known_now(value))

        if check(self.rayjob_name):
            validate_rayjob_name(self.rayjob_name, "rayjob_name")
        if check(self.cluster_names):
            if isinstance(self.cluster_names, str) or not isinstance(self.cluster_names, (list, tuple)):
                raise InvalidParameterError("cluster_names", self.cluster_names, "must be a list of RayCluster names")
            for i, name in enumerate(self.cluster_names):
                if rendered or known_now(name):
                    validate_raycluster_name(name, f"cluster_names[{i}]")
        if check(self.label_selector):
            validate_label_selector(self.label_selector, "label_selector")
        if check(self.namespace):
            validate_namespace(self.namespace)
        if rendered and not (self.rayjob_name or self.cluster_names or self.label_selector):
            raise InvalidParameterError(
                "rayjob_name", self.rayjob_name, "rendered empty, and neither cluster_names nor label_selector is set"
            )

    def _targets(self, hook: KubeRayHook, namespace: str) -> tuple[str, list[str]]:
        """(label selector, cluster names) to check."""
        names = list(self.cluster_names or [])
        selector = self.label_selector or ""
        if self.rayjob_name:
            selector = selector or f"{c.ORIGINATED_FROM_NAME_LABEL}={self.rayjob_name}"
            obj = hook.get_rayjob(self.rayjob_name, namespace)
            if obj is not None:
                cluster = RayJobStatus.from_object(obj).cluster_name
                if cluster and not (obj.get("spec") or {}).get("clusterSelector"):
                    names.append(cluster)
        return selector, sorted(set(names))

    def leftovers(self, hook: KubeRayHook, selector: str, names: list[str], namespace: str) -> list[str]:
        """Every RayCluster and Ray pod of the targets that still exists in ``namespace``."""
        clusters = hook.list_objects(c.RAYCLUSTER_KIND, namespace, selector) if selector else []
        listed = {(o.get("metadata") or {}).get("name") for o in clusters}
        for name in names:
            if name not in listed:
                obj = hook.get_object(c.RAYCLUSTER_KIND, name, namespace)
                if obj is not None:
                    clusters.append(obj)
        pods: list[dict[str, Any]] = []
        for name in sorted(set(names) | {(o.get("metadata") or {}).get("name", "") for o in clusters}):
            pods += hook.list_pods(namespace, f"{c.RAY_CLUSTER_LABEL}={name}")
        return leftovers(clusters, pods)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check: True (with the summary as XCom) once nothing is left."""
        self._validate(rendered=True)
        hook = _hook(self.kubernetes_conn_id)
        namespace = resolve_namespace(self.namespace, self.kubernetes_conn_id, hook=hook)
        selector, names = self._targets(hook, namespace)
        self._left = self.leftovers(hook, selector, names, namespace)
        if not self._left:
            self.log.info("Teardown confirmed in namespace %s: no RayCluster or Ray pod left (%s %s)",
                          namespace, selector, names)
            return PokeReturnValue(True, {"clusters_left": 0, "namespace": namespace, "checked": names,
                                          "label_selector": selector})
        self.log.info("Waiting for teardown; left: %s", "; ".join(self._left))
        return False

    def execute(self, context: Context) -> Any:
        """Poke through ``BaseSensorOperator`` (any ``mode``), or defer when ``deferrable``."""
        self._validate(rendered=True)
        if not self.deferrable:
            try:
                return super().execute(context)
            except Exception as exc:
                if type(exc).__name__ != "AirflowSensorTimeout" or not self._left:
                    raise
                raise type(exc)(f"Ray clusters still exist after {self.timeout}s:\n  " + "\n  ".join(self._left)) from exc
        from kuberay_provider.triggers.rayjob import RayClusterDeletedTrigger

        hook = _hook(self.kubernetes_conn_id)
        namespace = resolve_namespace(self.namespace, self.kubernetes_conn_id, hook=hook)
        selector, names = self._targets(hook, namespace)
        self.defer(
            trigger=RayClusterDeletedTrigger(namespace, self.kubernetes_conn_id, label_selector=selector, names=names,
                                             deadline=time.time() + self.timeout, poll_interval=self.poke_interval),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") == "success":
            return {"clusters_left": 0, "namespace": event.get("namespace")}
        raise AirflowException(f"Ray clusters still exist after {self.timeout}s:\n  " + "\n  ".join(event.get("left") or []))
