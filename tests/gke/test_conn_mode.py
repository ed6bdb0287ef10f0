"""Which mode a ``kuberay`` connection is in, and bad combinations named by field (pure)."""

from __future__ import annotations

import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.hooks.conn_mode import (
    DEFAULT_GCP_CONN_ID,
    GkeTarget,
    connection_ui_field_behaviour,
    resolve_mode,
)

GKE = {"project_id": "p", "location": "us-central1", "cluster_name": "ray"}


@pytest.mark.parametrize("extras", [{}, None, {"kube_config_path": "/k"}, {"kube_config": "apiVersion: v1"},
                                    {"in_cluster": True}, {"namespace": "ns", "request_timeout": 10},
                                    {"use_internal_ip": False}])
def test_kubeconfig_mode_is_the_default_and_keeps_the_cncf_fields(extras):
    assert resolve_mode(extras).mode == "kubeconfig"


def test_gke_mode_with_defaults():
    mode = resolve_mode(GKE)
    assert mode.is_gke
    assert mode.gke == GkeTarget("p", "us-central1", "ray", gcp_conn_id=DEFAULT_GCP_CONN_ID)
    assert mode.gke.cluster_path("p") == "projects/p/locations/us-central1/clusters/ray"


def test_gke_mode_reads_prefixed_extras_strings_and_lists():
    mode = resolve_mode({"extra__kuberay__location": "europe-west4-a", "cluster_name": "c", "project_id": "p",
                         "gcp_conn_id": "gcp", "impersonation_chain": "a@p.iam.gserviceaccount.com, "
                         "b@p.iam.gserviceaccount.com", "use_internal_ip": "true"})
    assert mode.gke.location == "europe-west4-a" and mode.gke.gcp_conn_id == "gcp" and mode.gke.use_internal_ip
    assert mode.gke.impersonation_chain == ("a@p.iam.gserviceaccount.com", "b@p.iam.gserviceaccount.com")
    listed = resolve_mode({**GKE, "impersonation_chain": ["x@p.iam.gserviceaccount.com"]})
    assert listed.gke.impersonation_chain == ("x@p.iam.gserviceaccount.com",)


def test_project_id_may_come_from_the_credentials():
    assert resolve_mode({"location": "l", "cluster_name": "c"}).gke.project_id is None


@pytest.mark.parametrize(("extras", "named"), [
    ({**GKE, "kube_config_path": "/k"}, "kube_config_path"),
    ({**GKE, "kube_config": "apiVersion: v1"}, "kube_config"),
    ({**GKE, "in_cluster": True}, "in_cluster"),
    ({"project_id": "p", "cluster_name": "c"}, "location"),
    ({"project_id": "p", "location": "l"}, "cluster_name"),
    ({**GKE, "use_internal_ip": True, "use_dns_endpoint": True}, "use_dns_endpoint"),
    ({**GKE, "use_internal_ip": "maybe"}, "use_internal_ip"),
    ({**GKE, "impersonation_chain": "not-an-email"}, "impersonation_chain"),
    ({**GKE, "gke_api_endpoint": "127.0.0.1:1"}, "gke_api_endpoint"),
    ({**GKE, "cluster_name": "projects/p/clusters/c"}, "cluster_name"),
    ({**GKE, "location": 5}, "location"),
    ({"gcp_conn_id": "gcp"}, "gcp_conn_id"),
])
def test_bad_combinations_name_the_field(extras, named):
    with pytest.raises(InvalidParameterError) as info:
        resolve_mode(extras)
    assert info.value.parameter == named
    assert f"Invalid {named}=" in str(info.value)


FORM = ("kube_config_path", "kube_config", "project_id", "location", "cluster_name", "gcp_conn_id",
        "impersonation_chain", "use_internal_ip", "use_dns_endpoint", "namespace", "request_timeout")


def test_the_connection_form_reaches_airflows_providers_manager():
    """Airflow >= 3.2 builds the form from the provider info without importing the hook."""
    from airflow.providers_manager import ProvidersManager

    from kuberay_provider.compat import airflow_major_version

    manager = ProvidersManager()
    if airflow_major_version() < 3 or not hasattr(manager, "_load_ui_metadata"):
        pytest.skip("this Airflow reads the form from KubeRayHook.get_connection_form_widgets (tested below)")
    widgets = manager.connection_form_widgets
    for name in FORM:
        info = widgets[f"extra__kuberay__{name}"]
        assert info.hook_class_name == "kuberay_provider.hooks.kuberay.KubeRayHook"
    assert widgets["extra__kuberay__cluster_name"].field["schema"]["title"] == "GKE cluster name"
    behaviour = manager.field_behaviours["kuberay"]
    assert "password" in behaviour["hidden_fields"]
    assert behaviour["placeholders"]["extra__kuberay__gcp_conn_id"] == DEFAULT_GCP_CONN_ID


def test_wtforms_widgets_cover_both_modes():
    pytest.importorskip("flask_appbuilder", reason="Airflow < 3.2 only (its UI is flask-appbuilder)")
    from kuberay_provider.hooks.kuberay import KubeRayHook

    widgets = KubeRayHook.get_connection_form_widgets()
    assert set(FORM) <= set(widgets)
    assert KubeRayHook.get_ui_field_behaviour() == connection_ui_field_behaviour()
    assert connection_ui_field_behaviour()["placeholders"]["location"] == "us-central1"


def test_provider_verbs_match_the_role_in_deploy_rbac():
    from pathlib import Path

    import yaml

    from kuberay_provider.hooks.access_check import PROVIDER_VERBS

    docs = list(yaml.safe_load_all((Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml").read_text()))
    (role,) = [d for d in docs if d and d.get("kind") == "Role" and d["metadata"]["name"] == "airflow-kuberay"]
    granted = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                res, _, sub = resource.partition("/")
                granted |= {(group, res, sub, verb) for verb in rule["verbs"]}
    assert set(PROVIDER_VERBS) == granted
