"""Extra links shown on task instances in the Airflow UI."""

from __future__ import annotations

from typing import Any

from kuberay_provider.compat import BaseOperatorLink, XCom

DASHBOARD_XCOM_KEY = "ray_dashboard_url"


def dashboard_link(dashboard_url: str | None, template: str | None, *, namespace: str, cluster: str | None) -> str | None:
    """The URL a person can open: ``template`` (``{namespace}``, ``{cluster}``, ``{dashboard_url}``) or http://dashboardURL."""
    if not dashboard_url and not template:
        return None
    if template:
        return template.format(namespace=namespace, cluster=cluster or "", dashboard_url=dashboard_url or "")
    return dashboard_url if dashboard_url.startswith(("http://", "https://")) else f"http://{dashboard_url}"


class RayDashboardLink(BaseOperatorLink):
    """Link to the Ray dashboard of the task's cluster (while it exists)."""

    name = "Ray Dashboard"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return XCom.get_value(key=DASHBOARD_XCOM_KEY, ti_key=ti_key) or ""
