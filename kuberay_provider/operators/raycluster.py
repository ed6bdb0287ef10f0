"""RayClusterCreateOperator / RayClusterDeleteOperator: a Ray cluster shared by several tasks.

Run RayJobs on it with ``RayJobOperator(cluster_selector=<name>)``; delete it in a teardown task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider import lifecycle, specs
from kuberay_provider.compat import AirflowException, BaseOperator
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.namespaces import resolve_namespace
from kuberay_provider.naming import (
    validate_dns_subdomain,
    validate_labels,
    validate_namespace,
    validate_raycluster_name,
)
from kuberay_provider.params import as_seconds, check_conn_id, known_now

if TYPE_CHECKING:
    from kuberay_provider.compat import Context

DEFAULT_IMAGE = "rayproject/ray:2.60.0-py311"


def _hook(conn_id: str):
    from kuberay_provider.hooks.kuberay import KubeRayHook

    return KubeRayHook(kubernetes_conn_id=conn_id)


class RayClusterCreateOperator(BaseOperator):
    """Create a RayCluster and (by default) wait until it is ready. Returns ``{"name", "namespace"}``.

    A RayCluster of that name that already exists is used as it is. A cluster not ready within ``ready_timeout``
    is deleted and the task fails naming the head pod's problems.

    :param name: the RayCluster's name (DNS-1035). (templated)
    :param namespace: Kubernetes namespace (default: the connection's extra ``namespace``, else ``default``).
        (templated)
    :param image: Ray image for head and workers; default ``rayproject/ray:2.60.0-py311``. (templated)
    :param head: head resources, e.g. ``{"cpu": 2, "memory": "8Gi"}``; the same keys as
        :class:`~kuberay_provider.operators.rayjob.RayJobOperator`'s ``head``. (templated)
    :param worker_groups: worker groups, as :class:`~kuberay_provider.operators.rayjob.RayJobOperator`'s
        ``worker_groups``. (templated)
    :param labels: extra labels on the RayCluster. (templated)
    :param service_account: Kubernetes service account of every Ray pod.
    :param ray_version: the RayCluster's ``rayVersion`` (validated).
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster; default ``kubernetes_default``.
    :param wait_until_ready: wait until the cluster is ready (default True).
    :param ready_timeout: seconds to wait for readiness (default 900).
    :param enable_token_auth: turn on Ray token authentication (KubeRay ``authOptions.mode: token``), as for
        :class:`~kuberay_provider.operators.rayjob.RayJobOperator`; a RayJob run on this cluster with
        ``cluster_selector`` uses its ``authOptions``.
    :param token_auth_secret: name of an existing Secret holding the token (``authOptions.secretName``; implies
        ``enable_token_auth``). (templated)

    ``head`` and ``worker_groups`` take GPUs and TPUs as for RayJobOperator.
    """

    template_fields: Sequence[str] = ("name", "namespace", "image", "head", "worker_groups", "labels",
                                      "token_auth_secret")

    def __init__(
        self,
        *,
        name: str,
        namespace: str | None = None,
        image: str = DEFAULT_IMAGE,
        head: Mapping[str, Any] | None = None,
        worker_groups: Sequence[Mapping[str, Any]] | None = None,
        labels: Mapping[str, str] | None = None,
        service_account: str | None = None,
        ray_version: str | None = None,
        enable_token_auth: bool = False,
        token_auth_secret: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        wait_until_ready: bool = True,
        ready_timeout: float = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if head is not None and known_now(head) and not isinstance(head, Mapping):
            raise InvalidParameterError("head", head, "must be a mapping such as {'cpu': 2, 'memory': '8Gi'}")
        if worker_groups is not None and known_now(worker_groups) and (isinstance(worker_groups, (str, Mapping)) or not
                isinstance(worker_groups, Sequence) or not all(isinstance(g, Mapping) for g in worker_groups)):
            raise InvalidParameterError("worker_groups", worker_groups, "must be a list of mappings")
        if labels is not None and known_now(labels) and not isinstance(labels, Mapping):
            raise InvalidParameterError("labels", labels, "must be a mapping of label names to values")
        check_conn_id(kubernetes_conn_id)
        if not isinstance(wait_until_ready, bool):
            raise InvalidParameterError("wait_until_ready", wait_until_ready, "must be True or False")
        if known_now(ready_timeout):
            as_seconds(ready_timeout, "ready_timeout")
        self.name, self.namespace, self.image = name, namespace, image
        # Values Airflow resolves at run time (XComArg, mapped arguments) are kept as given; others copied.
        self.head = (dict(head) if head else None) if known_now(head) else head
        self.worker_groups = [dict(g) for g in worker_groups or []] if known_now(worker_groups) else worker_groups
        self.labels = dict(labels or {}) if known_now(labels) else labels
        self.service_account, self.ray_version = service_account, ray_version
        self.enable_token_auth, self.token_auth_secret = enable_token_auth, token_auth_secret
        self.kubernetes_conn_id = kubernetes_conn_id
        self.wait_until_ready, self.ready_timeout = wait_until_ready, ready_timeout
        if known_now(self.name, self.namespace, self.image, self.head, self.worker_groups, self.labels,
                     self.service_account, self.ray_version, self.token_auth_secret):
            self.build_manifest()
        else:  # what can be checked before rendering; the rest when execute() builds the manifest
            if known_now(self.name):
                validate_raycluster_name(self.name, "name")
            if self.namespace and known_now(self.namespace):
                validate_namespace(self.namespace)
            if known_now(self.labels):
                validate_labels(self.labels)

    def _validate(self) -> None:
        """The operator's own parameters (the cluster spec is checked by :mod:`kuberay_provider.specs`)."""
        validate_raycluster_name(self.name, "name")
        if self.namespace:
            validate_namespace(self.namespace)
        validate_labels(self.labels)
        if not isinstance(self.image, str) or not self.image.strip() or any(ch.isspace() for ch in self.image):
            raise InvalidParameterError("image", self.image, "must be a container image reference without spaces")
        if self.service_account is not None:
            validate_dns_subdomain(self.service_account, "service_account")

    def build_manifest(self, namespace: str | None = None) -> dict[str, Any]:
        """The RayCluster this task creates, validated (again after rendering) before anything is sent."""
        self._validate()
        head = specs.NodeGroup.parse(self.head, "head", worker=False)
        workers = [specs.NodeGroup.parse(g, f"worker_groups[{i}]", worker=True) for i, g in enumerate(self.worker_groups)]
        auth = specs.auth_options(self.enable_token_auth, self.token_auth_secret)
        spec = specs.build_ray_cluster_spec(
            head=head, worker_groups=workers, pod=specs.PodSettings(image=self.image, service_account=self.service_account),
            ray_version=specs.ray_version_for_auth(self.ray_version, head.image or self.image, auth), auth=auth,
        )
        labels = {**self.labels, c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE}
        manifest = specs.build_raycluster(name=self.name, namespace=namespace or self.namespace or c.DEFAULT_NAMESPACE,
                                          cluster_spec=spec, labels=labels)
        specs.validate_raycluster(manifest)  # the one KubeRay judgement, as for RayJobs
        return manifest

    def execute(self, context: Context) -> dict[str, str]:
        hook = _hook(self.kubernetes_conn_id)
        self._validate()
        namespace = resolve_namespace(self.namespace, self.kubernetes_conn_id, hook=hook)
        manifest = self.build_manifest(namespace)
        ready_timeout = as_seconds(self.ready_timeout, "ready_timeout")
        _, created = hook.create_object(c.RAYCLUSTER_KIND, manifest, namespace)
        self.log.info("%s RayCluster %s/%s", "Created" if created else "Found existing", namespace, self.name)
        if self.wait_until_ready:
            from kuberay_provider.errors import RayJobGoneError
            from kuberay_provider.hooks.kuberay import RayJobWaitTimeout
            from kuberay_provider.hooks.pods import describe_pod_problems, head_pod_selector

            try:
                hook.wait_for_raycluster_ready(self.name, namespace, timeout=ready_timeout,
                                               on_status=lambda s: self.log.info("%s", s.describe()))
            except RayJobGoneError as exc:
                raise AirflowException(f"RayCluster {namespace}/{self.name} disappeared while starting") from exc
            except RayJobWaitTimeout as exc:
                problems = describe_pod_problems(hook.list_pods(namespace, head_pod_selector(self.name)))
                lifecycle.delete(hook, c.RAYCLUSTER_KIND, self.name, namespace, log=self.log,
                                 reason=f"not ready after {ready_timeout:g}s")
                raise AirflowException(
                    f"RayCluster {namespace}/{self.name} not ready after {ready_timeout:g}s; deleted it. "
                    + "; ".join(problems)
                ) from exc
        return {"name": self.name, "namespace": namespace}


class RayClusterDeleteOperator(BaseOperator):
    """Delete a RayCluster and (by default) wait until it is gone. Succeeds if it is already gone.

    :param name: the RayCluster's name. (templated)
    :param namespace: Kubernetes namespace (default: the connection's extra ``namespace``, else ``default``).
        (templated)
    :param kubernetes_conn_id: the Airflow connection to the Kubernetes cluster; default ``kubernetes_default``.
    :param wait: wait until the RayCluster is gone (default True); fail if it still exists after ``wait_timeout``.
    :param wait_timeout: seconds to wait for the deletion (default 300).
    """

    template_fields: Sequence[str] = ("name", "namespace")

    def __init__(self, *, name: str, namespace: str | None = None, kubernetes_conn_id: str = "kubernetes_default",
                 wait: bool = True, wait_timeout: float = 300.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if known_now(name) and (not isinstance(name, str) or not name):
            raise InvalidParameterError("name", name, "must name a RayCluster")
        check_conn_id(kubernetes_conn_id)
        if not isinstance(wait, bool):
            raise InvalidParameterError("wait", wait, "must be True or False")
        if known_now(wait_timeout):
            as_seconds(wait_timeout, "wait_timeout")
        self.name, self.namespace = name, namespace
        self.kubernetes_conn_id, self.wait, self.wait_timeout = kubernetes_conn_id, wait, wait_timeout
        self._validate(rendered=False)

    def _validate(self, rendered: bool) -> None:
        """Name and namespace (what is not templated at construction; everything again after rendering)."""
        if rendered or known_now(self.name):
            if not isinstance(self.name, str) or not self.name:
                raise InvalidParameterError("name", self.name, "must name a RayCluster")
            validate_raycluster_name(self.name, "name")
        if self.namespace and (rendered or known_now(self.namespace)):
            validate_namespace(self.namespace)

    def execute(self, context: Context) -> None:
        self._validate(rendered=True)
        wait_timeout = as_seconds(self.wait_timeout, "wait_timeout")
        hook = _hook(self.kubernetes_conn_id)
        namespace = resolve_namespace(self.namespace, self.kubernetes_conn_id, hook=hook)
        if not lifecycle.delete(hook, c.RAYCLUSTER_KIND, self.name, namespace, reason="RayClusterDeleteOperator",
                                log=self.log, raise_errors=True):
            return
        if self.wait and not hook.wait_deleted(c.RAYCLUSTER_KIND, self.name, namespace, wait_timeout):
            raise AirflowException(f"RayCluster {namespace}/{self.name} still exists after {wait_timeout:g}s")
