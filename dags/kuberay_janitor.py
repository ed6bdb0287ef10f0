"""Hourly sweep of RayJobs and RayClusters this provider created and nobody waits for any more.

Deletes provider-labelled RayJobs whose Airflow task instance is finished or that are older than 24 h, and
provider-made RayClusters older than 24 h or orphaned. Objects whose task instance is still running, deferred,
queued or up for retry are never deleted, and objects without the provider's label are never touched.

Dry run: trigger the DAG with ``{"dry_run": true}``; the task log and the XCom list what would be deleted.
Namespaces: the Variable ``kuberay_janitor_namespaces`` (comma-separated; default ``default``). The Role in
``deploy/rbac.yaml`` must be granted in each of them.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from kuberay_provider.operators.janitor import RayJanitorOperator

with DAG(
    dag_id="kuberay_janitor",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["kuberay", "maintenance"],
    params={"dry_run": Param(False, type="boolean", description="Only report what would be deleted")},
    doc_md=__doc__,
) as dag:
    RayJanitorOperator(
        task_id="sweep",
        namespaces="{{ var.value.get('kuberay_janitor_namespaces', 'default') }}",
        max_age=dt.timedelta(hours=24),
        dry_run="{{ params.dry_run }}",
    )
