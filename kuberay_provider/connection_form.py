"""The ``kuberay`` connection form, declared once (pure data, no imports): Airflow >= 3.2 reads it from the provider
info (``conn-fields``, ``ui-field-behaviour``), older Airflow through ``KubeRayHook.get_connection_form_widgets``
(:mod:`kuberay_provider.hooks.conn_mode`). It sits beside ``__init__`` because ``get_provider_info`` needs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_GCP_CONN_ID = "google_cloud_default"


@dataclass(frozen=True)
class FormField:
    """One extra field of the ``kuberay`` connection form."""

    label: str
    description: str
    kind: str = "string"  # string | text | boolean
    placeholder: str | None = None


#: The form's extra fields.
FORM_FIELDS: dict[str, FormField] = {
    "kube_config_path": FormField("Kube config path", "kubeconfig mode: a kubeconfig file on the worker",
                                  placeholder="~/.kube/config"),
    "kube_config": FormField("Kube config (JSON or YAML)", "kubeconfig mode: the kubeconfig's content", "text",
                             "apiVersion: v1\nkind: Config\n..."),
    "in_cluster": FormField("In cluster configuration", "kubeconfig mode: the worker's own service account",
                            "boolean"),
    "cluster_context": FormField("Cluster context", "kubeconfig mode: the kubeconfig context to use",
                                 placeholder="my-context"),
    "project_id": FormField("GKE project id", "GKE mode: the cluster's project (default: the credentials')",
                            placeholder="my-gcp-project"),
    "location": FormField("GKE location", "GKE mode: the cluster's region or zone", placeholder="us-central1"),
    "cluster_name": FormField("GKE cluster name", "GKE mode: endpoint and CA come from the GKE API",
                              placeholder="ray-cluster"),
    "gcp_conn_id": FormField("Google Cloud connection id", "GKE mode: credentials (default google_cloud_default, "
                             "else Application Default Credentials)", placeholder=DEFAULT_GCP_CONN_ID),
    "impersonation_chain": FormField("Impersonation chain", "GKE mode: service account(s) to impersonate, "
                                     "comma-separated; the last one is used",
                                     placeholder="ray-runner@my-gcp-project.iam.gserviceaccount.com"),
    "use_internal_ip": FormField("Use the private endpoint (internal IP)", "GKE mode: private clusters",
                                 "boolean"),
    "use_dns_endpoint": FormField("Use the DNS-based endpoint", "GKE mode: TLS verified against the public roots",
                                  "boolean"),
    "namespace": FormField("Namespace", "where RayJobs run (default: default)", placeholder="ray-jobs"),
    "request_timeout": FormField("Request timeout (s)", "one API request's timeout, default 30", placeholder="30"),
}
HIDDEN_FIELDS = ["host", "schema", "login", "password", "port"]


def provider_conn_fields() -> dict[str, Any]:
    """``conn-fields`` of the provider info (Airflow >= 3.2's declarative connection form)."""
    types = {"string": ["string", "null"], "text": ["string", "null"], "boolean": ["boolean", "null"]}
    return {name: {"label": f.label, "description": f.description, "schema": {"type": types[f.kind]}}
            for name, f in FORM_FIELDS.items()}


def provider_ui_field_behaviour() -> dict[str, Any]:
    """``ui-field-behaviour`` of the provider info (kebab-case keys, as Airflow reads it there)."""
    return {"hidden-fields": list(HIDDEN_FIELDS), "relabeling": {}, "placeholders": placeholders()}




def placeholders() -> dict[str, str]:
    """Placeholder text per field."""
    return {name: f.placeholder for name, f in FORM_FIELDS.items() if f.placeholder}
