"""``SparkApplicationOperator``: submit a SparkApplication through spark-operator without importing ``kubernetes`` at
DAG-parse time.

The cncf provider's ``SparkKubernetesOperator`` module imports the ``kubernetes`` client (and its models) when it is
imported, which would make every DAG built with :func:`~kuberay_provider.pipelines.builder.retraining_pipeline` pay
for it while parsing. This operator keeps the manifest as a templated field, and only in :meth:`execute` creates a
``SparkKubernetesOperator`` for the rendered manifest and runs it in the same task (synchronously: a deferral would
resume on this class, not on the delegate). Airflow logs its usual nested-operator warning for that call
("SparkKubernetesOperator.execute cannot be called outside of the Task Runner!"); it is expected and harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kuberay_provider.compat import BaseOperator
from kuberay_provider.errors import InvalidParameterError


class SparkApplicationOperator(BaseOperator):
    """Run one SparkApplication (``sparkoperator.k8s.io/v1beta2``) to completion, streaming the driver log.

    :param template_spec: the SparkApplication manifest (a mapping; Jinja templates in its strings are rendered).
    :param namespace: namespace of the application (default: the manifest's ``metadata.namespace``, else the
        connection's, else ``default``: :mod:`kuberay_provider.namespaces`).
    :param kubernetes_conn_id: a cncf ``kubernetes`` connection.
    :param get_logs: stream the driver log into the task log.
    :param delete_on_termination: delete the application when it ends.
    :param spark_kubernetes_kwargs: further ``SparkKubernetesOperator`` arguments (``startup_timeout_seconds``, ...).
    """

    template_fields: Sequence[str] = ("template_spec", "namespace", "kubernetes_conn_id")
    template_fields_renderers = {"template_spec": "py"}
    ui_color = "#fcccbb"

    def __init__(self, *, template_spec: Mapping[str, Any], namespace: str | None = None,
                 kubernetes_conn_id: str = "kubernetes_default", get_logs: bool = True,
                 delete_on_termination: bool = True, spark_kubernetes_kwargs: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(template_spec, Mapping) or template_spec.get("kind") != "SparkApplication":
            raise InvalidParameterError("template_spec", template_spec, "must be a SparkApplication manifest (a mapping)")
        extra = dict(spark_kubernetes_kwargs or {})
        if "deferrable" in extra:
            raise InvalidParameterError("spark_kubernetes_kwargs", {"deferrable": extra["deferrable"]},
                                        "deferrable is not supported: the application is followed in the task")
        self.template_spec = dict(template_spec)
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.get_logs = get_logs
        self.delete_on_termination = delete_on_termination
        self.spark_kubernetes_kwargs = extra
        self._delegate: Any = None

    def resolved_namespace(self) -> str:
        """The namespace the application runs in: the parameter, else the manifest's, else the connection's, else
        ``default`` (written into the manifest, so both agree)."""
        from kuberay_provider.namespaces import resolve_namespace

        given = self.namespace or (self.template_spec.get("metadata") or {}).get("namespace")
        namespace = resolve_namespace(given, self.kubernetes_conn_id)
        self.template_spec = {**self.template_spec, "metadata": {**(self.template_spec.get("metadata") or {}),
                                                                  "namespace": namespace}}
        return namespace

    def delegate(self) -> Any:
        """The ``SparkKubernetesOperator`` for the (rendered) manifest; imported and built on first use."""
        if self._delegate is None:
            from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import SparkKubernetesOperator

            namespace = self.resolved_namespace()
            self._delegate = SparkKubernetesOperator(
                task_id=self.task_id, template_spec=self.template_spec, namespace=namespace,
                kubernetes_conn_id=self.kubernetes_conn_id, get_logs=self.get_logs,
                delete_on_termination=self.delete_on_termination, deferrable=False, **self.spark_kubernetes_kwargs,
            )  # fmt: skip
        return self._delegate

    def execute(self, context: Any) -> Any:
        """Create the SparkApplication (or re-attach to this try's), follow it, fail if it fails."""
        return self.delegate().execute(context)

    def on_kill(self) -> None:
        """Delete the SparkApplication of a killed task."""
        if self._delegate is not None:
            self._delegate.on_kill()
