"""The Spark Role of deploy/rbac.yaml against what the cncf SparkKubernetesOperator really asks the API for.

SparkKubernetesOperator (the retraining pipeline's ``spark_operator`` ETL step) runs in Airflow (dag.test) against
the local stack's spark-operator double: sync success, sync failure and deferrable success. Every request it made
must be granted by the ``airflow-kuberay-spark`` Role, and every rule of that Role must have been used.
"""

from __future__ import annotations

import pytest

from tests.integration.airflow_support import run_dag, task_states
from tests.integration.conftest import airflow_db  # noqa: F401  (fixture)
from tests.security.rbac import SPARK_ROLE, allowed_rules, requests_as_rbac

pytestmark = pytest.mark.slow


def test_spark_role_grants_exactly_what_spark_kubernetes_operator_uses(local_stack, airflow_db, namespace,  # noqa: F811
                                                                        monkeypatch):
    from tests.local.test_sparkapps import _spark_dag

    # Not KUBECONFIG: see tests/local/test_sparkapps.py::airflow_env (deferrable mode would reject it).
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", local_stack.env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
    before = len(local_stack.server.requests)
    runs = [
        (_spark_dag("rbac_spark_ok", namespace, "count_range.py", ["100"]), "success"),
        (_spark_dag("rbac_spark_fail", namespace, "fail_fast.py", []), "failed"),
        (_spark_dag("rbac_spark_deferred", namespace, "count_range.py", ["100"], deferrable=True), "success"),
    ]
    for dag, state in runs:
        assert task_states(run_dag(dag)) == {"etl": state}
    records = [r for r in local_stack.server.requests[before:] if r.external]
    # Everything the operator did is namespaced to the task's namespace (nothing cluster-wide).
    outside = sorted({r.path for r in records if requests_as_rbac([r]) and f"/namespaces/{namespace}/" not in r.path})
    assert outside == []
    used = requests_as_rbac(records)
    print("SparkKubernetesOperator used:", sorted(used))
    granted = allowed_rules(role=SPARK_ROLE)
    assert used - granted == set(), f"{SPARK_ROLE} lacks rules SparkKubernetesOperator needs: {sorted(used - granted)}"
    assert granted - used == set(), f"{SPARK_ROLE} grants rules SparkKubernetesOperator never used: {sorted(granted - used)}"
