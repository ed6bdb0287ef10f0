"""Extra links shown on task instances in the Airflow UI, available while the RayJob runs.

The operator computes each URL as soon as what it needs is known (before deferring, and on each status of a
synchronous wait) and stores it with :func:`push_link`. A link's ``get_link`` reads it back. On Airflow 3 the UI
reads links from the XCom key ``link.xcom_key`` (Airflow writes it only when the task finishes), so
:func:`push_link` writes that key too, and the link is there while the task runs. No URL ever carries a token.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from kuberay_provider.compat import BaseOperatorLink, XCom

DASHBOARD_XCOM_KEY = "ray_dashboard_url"
CLOUD_LOGGING_XCOM_KEY = "cloud_logging_url"
GKE_WORKLOAD_XCOM_KEY = "gke_workload_url"
#: The head Service port KubeRay names ``dashboard`` (8265) on ``<cluster>-head-svc``.
DASHBOARD_PORT_NAME = "dashboard"
CONSOLE = "https://console.cloud.google.com"
#: Placeholders ``dashboard_url_template`` may use.
TEMPLATE_FIELDS = ("namespace", "cluster", "rayjob", "dashboard_url")
#: KubeRay's RayCluster name suffix alphabet (``GenerateRayClusterName``: ``<rayjob>-<5 chars>``).
_CLUSTER_SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]{5}"


def api_server_base(host: str | None) -> str | None:
    """The API server URL without credentials, path query or trailing slash (None when not http(s))."""
    if not host:
        return None
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname:  # IPv6 literal
        netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def head_service(rayjob: str, cluster: str | None) -> str:
    """The head Service of the job's cluster: ``<cluster>-head-svc``, or (cluster not known yet) the RayJob's own
    ``<rayjob>-head-svc`` that KubeRay creates for the same head Pod when the job starts running."""
    return f"{cluster or rayjob}-head-svc"


def service_proxy_url(api_server: str, namespace: str, service: str, port: str = DASHBOARD_PORT_NAME) -> str:
    """``<api server>/api/v1/namespaces/<ns>/services/<service>:<port>/proxy/``: the dashboard through the API server."""
    return f"{api_server}/api/v1/namespaces/{quote(namespace)}/services/{quote(service)}:{port}/proxy/"


def dashboard_link(
    dashboard_url: str | None,
    template: str | None,
    *,
    namespace: str,
    cluster: str | None,
    rayjob: str = "",
    api_server: str | None = None,
) -> str | None:
    """The dashboard URL a browser can open, or None while it cannot be built yet.

    With ``template``: the template filled with ``{namespace}``, ``{cluster}``, ``{rayjob}`` and ``{dashboard_url}``
    (None while a placeholder it uses is unknown). Otherwise the API server's service proxy for the head Service
    (:func:`head_service`). Never the in-cluster ``*.svc.cluster.local`` address.
    """
    if template:
        values = {"namespace": namespace, "cluster": cluster, "rayjob": rayjob or None, "dashboard_url": dashboard_url}
        used = set(re.findall(r"{(\w+)}", template))
        if any(values.get(name) is None for name in used):
            return None
        return template.format(**{k: v or "" for k, v in values.items()})
    base = api_server_base(api_server)
    if base is None or not (cluster or rayjob):
        return None
    return service_proxy_url(base, namespace, head_service(rayjob, cluster))


def cloud_logging_link(*, project_id: str, location: str, gke_cluster: str, namespace: str, rayjob: str,
                       ray_cluster: str | None) -> str:
    """Logs Explorer with the query for this RayJob's pods: the Ray pods (label ``ray.io/cluster``, exact once the
    RayCluster is known, else KubeRay's ``<rayjob>-<5 chars>`` name; a RayJob name is a DNS label, nothing to escape)
    and the submitter Job's pods (``job-name``)."""
    cluster_match = (f'labels."k8s-pod/ray_io/cluster"="{ray_cluster}"' if ray_cluster
                     else f'labels."k8s-pod/ray_io/cluster"=~"^{rayjob}-{_CLUSTER_SUFFIX}$"')
    query = "\n".join([
        'resource.type="k8s_container"',
        f'resource.labels.project_id="{project_id}"',
        f'resource.labels.location="{location}"',
        f'resource.labels.cluster_name="{gke_cluster}"',
        f'resource.labels.namespace_name="{namespace}"',
        f'({cluster_match} OR labels."k8s-pod/job-name"="{rayjob}")',
    ])
    return f"{CONSOLE}/logs/query;query={quote(query, safe='')}?project={quote(project_id)}"


def gke_workload_link(*, project_id: str, location: str, gke_cluster: str, namespace: str) -> str:
    """The GKE console's Workloads page filtered to the cluster and namespace of the RayJob."""
    state = f'("savedViews":("c":["gke/{location}/{gke_cluster}"],"n":["{namespace}"]))'
    return f"{CONSOLE}/kubernetes/workload/overview?project={quote(project_id)}&pageState={quote(state, safe='')}"


def push_link(ti: Any, link: BaseOperatorLink, url: str) -> None:
    """Store ``url`` for ``link`` on the running task instance (also under Airflow 3's ``xcom_key``)."""
    ti.xcom_push(key=link.data_key, value=url)
    airflow_key = getattr(link, "xcom_key", None)
    if isinstance(airflow_key, str) and airflow_key != link.data_key:
        ti.xcom_push(key=airflow_key, value=url)


class _XComLink(BaseOperatorLink):
    """A link whose URL the operator stored in XCom under ``data_key``."""

    data_key: str = ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The stored URL; empty (no link) until the operator stored one."""
        return XCom.get_value(key=self.data_key, ti_key=ti_key) or ""


class RayDashboardLink(_XComLink):
    """Link to the Ray dashboard of the task's cluster (while it exists)."""

    name = "Ray Dashboard"
    data_key = DASHBOARD_XCOM_KEY


class CloudLoggingLink(_XComLink):
    """GKE mode: Cloud Logging's Logs Explorer with the logs of the RayJob's pods."""

    name = "Cloud Logging"
    data_key = CLOUD_LOGGING_XCOM_KEY


class GkeWorkloadLink(_XComLink):
    """GKE mode: the GKE console's workloads of the RayJob's cluster and namespace."""

    name = "GKE workload"
    data_key = GKE_WORKLOAD_XCOM_KEY
