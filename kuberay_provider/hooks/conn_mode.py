"""Which way a ``kuberay`` connection reaches its cluster, decided once from the connection's extras (pure).

Two modes:

* **kubeconfig** (the cncf-kubernetes provider's handling, unchanged): ``kube_config_path``, ``kube_config``
  (inline), ``in_cluster``, ``cluster_context`` or nothing (the default kubeconfig).
* **gke**: ``project_id``, ``location``, ``cluster_name`` name a GKE cluster; its endpoint and CA come from the GKE
  API and the bearer token from Google credentials (``gcp_conn_id``, default ``google_cloud_default``, else ADC),
  optionally impersonating ``impersonation_chain``. ``use_internal_ip`` picks the private endpoint,
  ``use_dns_endpoint`` the DNS-based endpoint (TLS verified against the public roots, no CA pinning).
  ``gke_api_endpoint`` / ``iam_endpoint`` override the Google API endpoints (private service connect, or tests).

Extras are read plain or with the legacy ``extra__kuberay__`` / ``extra__kubernetes__`` prefixes. A bad
combination raises :class:`~kuberay_provider.errors.InvalidParameterError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kuberay_provider.connection_form import DEFAULT_GCP_CONN_ID, FORM_FIELDS, HIDDEN_FIELDS
from kuberay_provider.errors import InvalidParameterError

#: Extras of the kubeconfig mode (the cncf provider's fields).
KUBECONFIG_FIELDS = ("kube_config_path", "kube_config", "in_cluster", "cluster_context")
#: Extras that select GKE mode.
GKE_FIELDS = ("project_id", "location", "cluster_name", "impersonation_chain", "use_internal_ip",
              "use_dns_endpoint", "gke_api_endpoint", "iam_endpoint")
PREFIXES = ("", "extra__kuberay__", "extra__kubernetes__")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def field(extras: Mapping[str, Any], name: str) -> Any:
    """The extra ``name`` (plain or prefixed); ``None`` when unset or empty."""
    for prefix in PREFIXES:
        value = extras.get(prefix + name)
        if value not in (None, ""):
            return value
    return None


def _bool(extras: Mapping[str, Any], name: str) -> bool:
    value = field(extras, name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidParameterError(name, value, "must be a boolean (true/false) (connection extra)")


def _text(extras: Mapping[str, Any], name: str) -> str | None:
    value = field(extras, name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(name, value, "must be a non-empty string (connection extra)")
    if value != value.strip():
        raise InvalidParameterError(name, value, "must not start or end with whitespace (connection extra)")
    return value


def _chain(extras: Mapping[str, Any]) -> tuple[str, ...]:
    value = field(extras, "impersonation_chain")
    if value is None:
        return ()
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(i, str) and i for i in items):
        raise InvalidParameterError("impersonation_chain", value, "must be a service account email or a "
                                    "comma-separated list (or JSON list) of them (connection extra)")
    for item in items:
        if "@" not in item:
            raise InvalidParameterError("impersonation_chain", value,
                                        f"{item!r} is not a service account email (connection extra)")
    return tuple(items)


def _endpoint(extras: Mapping[str, Any], name: str) -> str | None:
    value = _text(extras, name)
    if value is not None and not value.startswith(("http://", "https://")):
        raise InvalidParameterError(name, value, "must be an http:// or https:// URL (connection extra)")
    return value.rstrip("/") if value else None


@dataclass(frozen=True)
class GkeTarget:
    """A GKE cluster and how to reach it."""

    project_id: str | None  # None: the credentials' project
    location: str
    cluster_name: str
    gcp_conn_id: str = DEFAULT_GCP_CONN_ID
    impersonation_chain: tuple[str, ...] = ()
    use_internal_ip: bool = False
    use_dns_endpoint: bool = False
    gke_api_endpoint: str | None = None
    iam_endpoint: str | None = None

    def cluster_path(self, project_id: str) -> str:
        """The GKE API resource name of the cluster."""
        return f"projects/{project_id}/locations/{self.location}/clusters/{self.cluster_name}"


@dataclass(frozen=True)
class ConnectionMode:
    """The decision: ``kubeconfig`` (the cncf provider's handling) or ``gke`` with ``gke`` (a :class:`GkeTarget`) set."""

    mode: str
    gke: GkeTarget | None = None

    @property
    def is_gke(self) -> bool:
        return self.mode == "gke"


KUBECONFIG = ConnectionMode("kubeconfig")


def resolve_mode(extras: Mapping[str, Any] | None) -> ConnectionMode:
    """Decide the mode of a connection from its extras; raises naming the field for a bad combination."""
    extras = extras or {}
    gke_set = [name for name in GKE_FIELDS if field(extras, name) is not None and field(extras, name) is not False]
    if not gke_set:
        if field(extras, "gcp_conn_id") is not None:
            raise InvalidParameterError("gcp_conn_id", field(extras, "gcp_conn_id"),
                                        "is only used in GKE mode: set project_id, location and cluster_name too")
        return KUBECONFIG
    kube_set = [name for name in KUBECONFIG_FIELDS if field(extras, name) not in (None, False, "false", "False")]
    if kube_set:
        raise InvalidParameterError(kube_set[0], field(extras, kube_set[0]),
                                    f"cannot be combined with GKE mode (set: {', '.join(gke_set)}): a connection "
                                    "reaches its cluster through a kubeconfig or through the GKE API, not both")
    location = _text(extras, "location")
    cluster_name = _text(extras, "cluster_name")
    if cluster_name is None:
        raise InvalidParameterError("cluster_name", None, f"is required in GKE mode (set: {', '.join(gke_set)})")
    if location is None:
        raise InvalidParameterError("location", None, f"is required with cluster_name={cluster_name!r}: the "
                                    "cluster's region or zone (e.g. us-central1)")
    for name, value in (("location", location), ("cluster_name", cluster_name)):
        if "/" in value or " " in value:
            raise InvalidParameterError(name, value, "must be a bare GKE name (no '/' or spaces)")
    project_id = _text(extras, "project_id")
    if project_id is not None and ("/" in project_id or " " in project_id):
        raise InvalidParameterError("project_id", project_id, "must be a bare Google Cloud project id")
    internal, dns = _bool(extras, "use_internal_ip"), _bool(extras, "use_dns_endpoint")
    if internal and dns:
        raise InvalidParameterError("use_dns_endpoint", True, "cannot be combined with use_internal_ip: pick the "
                                    "private IP endpoint or the DNS-based endpoint")
    return ConnectionMode("gke", GkeTarget(
        project_id=project_id, location=location, cluster_name=cluster_name,
        gcp_conn_id=_text(extras, "gcp_conn_id") or DEFAULT_GCP_CONN_ID,
        impersonation_chain=_chain(extras), use_internal_ip=internal, use_dns_endpoint=dns,
        gke_api_endpoint=_endpoint(extras, "gke_api_endpoint"), iam_endpoint=_endpoint(extras, "iam_endpoint"),
    ))


# ------------------------------------------------------------------------------------------------ UI form
def connection_form_widgets() -> dict[str, Any]:
    """The form's fields as wtforms fields with flask-appbuilder widgets (Airflow < 3.2; imported here, lazily,
    as Airflow's providers do)."""
    from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, StringField

    widgets: dict[str, Any] = {}
    for name, f in FORM_FIELDS.items():
        if f.kind == "boolean":
            widgets[name] = BooleanField(lazy_gettext(f.label), description=f.description)
        else:
            widget = BS3TextAreaFieldWidget() if f.kind == "text" else BS3TextFieldWidget()
            widgets[name] = StringField(lazy_gettext(f.label), widget=widget, description=f.description)
    return widgets


def connection_ui_field_behaviour() -> dict[str, Any]:
    """Hidden standard fields and placeholders of the ``kuberay`` connection form."""
    from kuberay_provider.connection_form import placeholders

    return {"hidden_fields": list(HIDDEN_FIELDS), "relabeling": {}, "placeholders": placeholders()}
