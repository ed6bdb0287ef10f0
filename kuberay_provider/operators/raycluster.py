"""RayClusterCreateOperator / RayClusterDeleteOperator: a Ray cluster shared by several tasks.

Run RayJobs on it with ``RayJobOperator(cluster_selector=<name>)``; delete it in a teardown task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider import specs
from kuberay_provider.compat import AirflowException, BaseOperator
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.naming import (
    validate_dns_subdomain,
    validate_labels,
    validate_namespace,
    validate_raycluster_name,
    validate_rayjob_name,
    validate_seconds,
)
from kuberay_provider.params import check_conn_id, is_templated

if TYPE_CHECKING:
    from kuberay_provider.compat import Context

DEFAULT_IMAGE = "rayproject/ray:2.60.0-py311"


def _hook(conn_id: str):
    from kuberay_provider.hooks.kuberay import KubeRayHook

    return KubeRayHook(kubernetes_conn_id=conn_id)


class RayClusterCreateOperator(BaseOperator):
    """Create a RayCluster and (by default) wait until it is ready. Returns ``{"name", "namespace"}``."""

    template_fields: Sequence[str] = ("name", "namespace", "image", "head", "worker_groups", "labels")

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
        kubernetes_conn_id: str = "kubernetes_default",
        wait_until_ready: bool = True,
        ready_timeout: float = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if head is not None and not isinstance(head, Mapping):
            raise InvalidParameterError("head", head, "must be a mapping such as {'cpu': 2, 'memory': '8Gi'}")
        if worker_groups is not None and (isinstance(worker_groups, (str, Mapping)) or not isinstance(
                worker_groups, Sequence) or not all(isinstance(g, Mapping) for g in worker_groups)):
            raise InvalidParameterError("worker_groups", worker_groups, "must be a list of mappings")
        if labels is not None and not isinstance(labels, Mapping):
            raise InvalidParameterError("labels", labels, "must be a mapping of label names to values")
        check_conn_id(kubernetes_conn_id)
        if not isinstance(wait_until_ready, bool):
            raise InvalidParameterError("wait_until_ready", wait_until_ready, "must be True or False")
        validate_seconds(ready_timeout, "ready_timeout")
        self.name, self.namespace, self.image = name, namespace, image
        self.head = dict(head) if head else None
        self.worker_groups = [dict(g) for g in worker_groups or []]
        self.labels = dict(labels or {})
        self.service_account, self.ray_version = service_account, ray_version
        self.kubernetes_conn_id = kubernetes_conn_id
        self.wait_until_ready, self.ready_timeout = wait_until_ready, ready_timeout
        if not is_templated([self.name, self.namespace, self.image, self.head, self.worker_groups, self.labels]):
            self.build_manifest()
        else:  # what can be checked before rendering; the rest when execute() builds the manifest
            if not is_templated(self.name):
                validate_rayjob_name(self.name, "name")
            if self.namespace and not is_templated(self.namespace):
                validate_namespace(self.namespace)
            if not is_templated(self.labels):
                validate_labels(self.labels)

    def _validate(self) -> None:
        """The operator's own parameters (the cluster spec is checked by :mod:`kuberay_provider.specs`)."""
        validate_rayjob_name(self.name, "name")
        if self.namespace:
            validate_namespace(self.namespace)
        validate_labels(self.labels)
        if not isinstance(self.image, str) or not self.image.strip() or any(ch.isspace() for ch in self.image):
            raise InvalidParameterError("image", self.image, "must be a container image reference without spaces")
        if self.service_account is not None:
            validate_dns_subdomain(self.service_account, "service_account")

    def build_manifest(self) -> dict[str, Any]:
        """The RayCluster this task creates, validated (again after rendering) before anything is sent."""
        self._validate()
        head = specs.NodeGroup.parse(self.head, "head", worker=False)
        workers = [specs.NodeGroup.parse(g, f"worker_groups[{i}]", worker=True) for i, g in enumerate(self.worker_groups)]
        spec = specs.build_ray_cluster_spec(
            head=head, worker_groups=workers, pod=specs.PodSettings(image=self.image, service_account=self.service_account),
            ray_version=self.ray_version,
        )
        specs.validate_ray_cluster_spec(spec)
        labels = {**self.labels, c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE}
        return specs.build_raycluster(name=self.name, namespace=self.namespace or c.DEFAULT_NAMESPACE,
                                      cluster_spec=spec, labels=labels)

    def execute(self, context: Context) -> dict[str, str]:
        manifest = self.build_manifest()
        namespace = manifest["metadata"]["namespace"]
        hook = _hook(self.kubernetes_conn_id)
        _, created = hook.create_object(c.RAYCLUSTER_KIND, manifest, namespace)
        self.log.info("%s RayCluster %s/%s", "Created" if created else "Found existing", namespace, self.name)
        if self.wait_until_ready:
            from kuberay_provider.errors import RayJobGoneError
            from kuberay_provider.hooks.kuberay import RayJobWaitTimeout
            from kuberay_provider.hooks.pods import describe_pod_problems, head_pod_selector

            try:
                hook.wait_for_raycluster_ready(self.name, namespace, timeout=self.ready_timeout,
                                               on_status=lambda s: self.log.info("%s", s.describe()))
            except RayJobGoneError as exc:
                raise AirflowException(f"RayCluster {namespace}/{self.name} disappeared while starting") from exc
            except RayJobWaitTimeout as exc:
                problems = describe_pod_problems(hook.list_pods(namespace, head_pod_selector(self.name)))
                hook.delete_object(c.RAYCLUSTER_KIND, self.name, namespace)
                raise AirflowException(
                    f"RayCluster {namespace}/{self.name} not ready after {self.ready_timeout}s; deleted it. "
                    + "; ".join(problems)
                ) from exc
        return {"name": self.name, "namespace": namespace}


class RayClusterDeleteOperator(BaseOperator):
    """Delete a RayCluster and (by default) wait until it is gone. Succeeds if it is already gone."""

    template_fields: Sequence[str] = ("name", "namespace")

    def __init__(self, *, name: str, namespace: str | None = None, kubernetes_conn_id: str = "kubernetes_default",
                 wait: bool = True, wait_timeout: float = 300.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(name, str) or not name:
            raise InvalidParameterError("name", name, "must name a RayCluster")
        check_conn_id(kubernetes_conn_id)
        if not isinstance(wait, bool):
            raise InvalidParameterError("wait", wait, "must be True or False")
        validate_seconds(wait_timeout, "wait_timeout")
        self.name, self.namespace = name, namespace
        self.kubernetes_conn_id, self.wait, self.wait_timeout = kubernetes_conn_id, wait, wait_timeout
        self._validate(rendered=False)

    def _validate(self, rendered: bool) -> None:
        """Name and namespace (what is not templated at construction; everything again after rendering)."""
        if rendered or not is_templated(self.name):
            validate_raycluster_name(self.name, "name")
        if self.namespace and (rendered or not is_templated(self.namespace)):
            validate_namespace(self.namespace)

    def execute(self, context: Context) -> None:
        self._validate(rendered=True)
        namespace = self.namespace or c.DEFAULT_NAMESPACE
        hook = _hook(self.kubernetes_conn_id)
        if not hook.delete_object(c.RAYCLUSTER_KIND, self.name, namespace):
            self.log.info("RayCluster %s/%s was already gone", namespace, self.name)
            return
        if self.wait and not hook.wait_deleted(c.RAYCLUSTER_KIND, self.name, namespace, self.wait_timeout):
            raise AirflowException(f"RayCluster {namespace}/{self.name} still exists after {self.wait_timeout}s")
