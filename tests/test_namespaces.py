"""One namespace rule for every task: the parameter, else the connection's extra ``namespace``, else ``default``.
Read from real Airflow connections defined the way users define them (``AIRFLOW_CONN_*`` JSON)."""

from __future__ import annotations

import json

import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.namespaces import connection_namespace, resolve_namespace


@pytest.fixture
def connections(monkeypatch, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")

    def define(conn_id: str, **extra) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig), **extra}}))
        return conn_id

    return define


def test_parameter_wins(connections):
    conn = connections("k8s_ml", namespace="ml")
    assert resolve_namespace("explicit", conn) == "explicit"


def test_connection_namespace_when_no_parameter(connections):
    conn = connections("k8s_ml", namespace="ml")
    assert connection_namespace(conn) == "ml"
    assert resolve_namespace(None, conn) == "ml"
    assert resolve_namespace("", conn) == "ml"  # what "{{ var.value.get('ns', '') }}" renders when unset


def test_default_when_neither(connections):
    conn = connections("k8s_plain")
    assert resolve_namespace(None, conn) == "default"


def test_invalid_values_are_refused_naming_where_they_came_from(connections):
    with pytest.raises(InvalidParameterError) as err:
        resolve_namespace("Bad_NS", connections("k8s_ml", namespace="ml"))
    assert err.value.parameter == "namespace"
    with pytest.raises(InvalidParameterError) as err:
        resolve_namespace(None, connections("k8s_bad", namespace="Not Valid"))
    assert "k8s_bad" in err.value.parameter
    with pytest.raises(InvalidParameterError) as err:
        resolve_namespace(["ml"], connections("k8s_ml", namespace="ml"))
    assert err.value.parameter == "namespace"


def test_a_missing_connection_names_the_conn_id(monkeypatch):
    with pytest.raises(InvalidParameterError) as err:
        resolve_namespace(None, "no_such_connection")
    assert err.value.parameter == "kubernetes_conn_id"
