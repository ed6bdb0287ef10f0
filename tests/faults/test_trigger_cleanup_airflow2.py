"""Before Airflow 3.3 the triggerer never calls a trigger's ``on_kill``: it cancels the trigger and calls
``cleanup()``, the same way for a user kill (mark failed / clear) and for a triggerer restart. ``RayJobTrigger``
tells them apart by the task instance's state in the metadata DB: no longer ``deferred`` means a user acted (delete
the RayJob), still ``deferred`` means the triggerer went away (keep it). This is the branch the composer-2.10 lane
runs; Airflow >= 3.3 takes the ``on_kill`` branch (tests/faults/test_trigger_cancellation.py)."""

from __future__ import annotations

import asyncio
import uuid

import pendulum
import pytest

from kuberay_provider import constants as c
from kuberay_provider.local.clusters import SIMULATE_ANNOTATION
from kuberay_provider.triggers.rayjob import RayJobTrigger
from tests.integration.airflow_support import AIRFLOW_2, wait_until
from tests.integration.conftest import airflow_db, kube  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.composer,
    pytest.mark.skipif(not AIRFLOW_2, reason="Airflow >= 3.3 calls on_kill instead (test_trigger_cancellation.py)"),
]


def _task_instance(state: str):
    """A DagRun with one task instance in ``state``, as the Airflow 2 triggerer hands it to the trigger."""
    from airflow.models.dag import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.utils.types import DagRunType

    now = pendulum.now("UTC")
    dag = DAG(f"trigger_cleanup_{uuid.uuid4().hex[:8]}", start_date=now.subtract(days=1), schedule=None)
    EmptyOperator(task_id="train", dag=dag)
    dag.sync_to_db()
    run = dag.create_dagrun(run_id=f"manual__{now.isoformat()}", state="running", execution_date=now,
                            run_type=DagRunType.MANUAL, data_interval=(now, now))
    ti = run.get_task_instance("train")
    ti.set_state(state)
    return ti


def _create_rayjob(kube, namespace: str, name: str) -> None:  # noqa: F811
    from kuberay_provider import specs

    manifest = specs.build_rayjob(
        name=name, namespace=namespace, job=specs.JobSettings(entrypoint="python -c 'print(1)'"),
        cluster_spec=specs.build_ray_cluster_spec(head=specs.NodeGroup(cpu="1", memory="1Gi"), worker_groups=[],
                                                  pod=specs.PodSettings(image="rayproject/ray:2.60.0")),
    )
    manifest["metadata"].setdefault("annotations", {})[SIMULATE_ANNOTATION] = "unschedulable"  # never starts Ray
    kube.create_rayjob(manifest)


@pytest.mark.parametrize(("state", "deleted"), [("failed", True), ("deferred", False)],
                         ids=["user-kill", "triggerer-restart"])
def test_cleanup_deletes_only_when_the_task_instance_left_deferred(kube, namespace, state, deleted):  # noqa: F811
    name = f"cleanup-{state}"
    _create_rayjob(kube, namespace, name)
    trigger = RayJobTrigger(name, namespace)
    trigger.task_instance = _task_instance(state)
    asyncio.run(trigger.cleanup())
    if deleted:
        wait_until(lambda: kube.get_rayjob(name, namespace) is None, timeout=30)
    else:
        assert kube.get_rayjob(name, namespace) is not None
        kube.delete_object(c.RAYJOB_KIND, name, namespace)
