"""The triggerer's two kinds of cancellation (Airflow 3.3 contract, see triggerer_job_runner): a user action
cancels the trigger and calls ``on_kill`` (the RayJob must be deleted); a triggerer restart cancels it without
``on_kill`` (the RayJob must keep running, and a new trigger instance resumes the wait)."""

from __future__ import annotations

import asyncio

import pytest

from kuberay_provider import specs
from kuberay_provider.status import RayJobStatus
from kuberay_provider.triggers.rayjob import RayJobTrigger
from tests.integration.airflow_support import wait_until

pytestmark = pytest.mark.slow


def _create(kube, namespace: str, name: str, entrypoint: str) -> None:
    manifest = specs.build_rayjob(
        name=name, namespace=namespace, job=specs.JobSettings(entrypoint=entrypoint, ttl_seconds_after_finished=0),
        cluster_spec=specs.build_ray_cluster_spec(head=specs.NodeGroup(cpu="1", memory="1Gi"), worker_groups=[],
                                                  pod=specs.PodSettings(image="rayproject/ray:2.60.0")),
    )
    kube.create_rayjob(manifest)


def _job_status(kube, namespace, name):
    obj = kube.get_rayjob(name, namespace)
    return RayJobStatus.from_object(obj) if obj else None


def _ray_job_running(kube, namespace, name) -> bool:
    status = _job_status(kube, namespace, name)
    return status is not None and status.job_status == "RUNNING"


async def _run_until_cancelled(trigger: RayJobTrigger, seconds_running: float, is_running) -> asyncio.Task:
    task = asyncio.create_task(anext(aiter(trigger.run())))
    while not await asyncio.to_thread(is_running):
        await asyncio.sleep(0.5)
    await asyncio.sleep(seconds_running)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return task


@pytest.mark.composer
def test_user_kill_deletes_the_rayjob(kube, namespace, assert_nothing_left):
    name = "user-kill"
    _create(kube, namespace, name, "python -c \"import time; time.sleep(300)\"")
    trigger = RayJobTrigger(name, namespace)

    async def scenario():
        await _run_until_cancelled(trigger, 2, lambda: _ray_job_running(kube, namespace, name))
        await trigger.on_kill()  # what the triggerer does after a user action (mark failed / clear)

    asyncio.run(scenario())
    assert_nothing_left()


@pytest.mark.composer
def test_triggerer_restart_keeps_the_job_and_a_new_trigger_resumes(kube, namespace, assert_nothing_left):
    name = "triggerer-restart"
    _create(kube, namespace, name, "python -c \"import time; time.sleep(15); print('finished after restart')\"")

    async def scenario():
        first = RayJobTrigger(name, namespace)
        await _run_until_cancelled(first, 1, lambda: _ray_job_running(kube, namespace, name))
        await first.cleanup()  # a restart: cleanup runs, on_kill does not
        assert _job_status(kube, namespace, name).job_status == "RUNNING"
        second = RayJobTrigger(name, namespace)  # the new triggerer deserialises the same trigger
        return await anext(aiter(second.run()))

    event = asyncio.run(scenario())
    assert event.payload["status"] == "success"
    assert event.payload["rayjob"]["job_status"] == "SUCCEEDED"
    kube.delete_rayjob(name, namespace)
    assert_nothing_left()


def test_trigger_deadline_reports_timeout_with_the_last_status(kube, namespace, assert_nothing_left):
    name = "deadline"
    _create(kube, namespace, name, "python -c \"import time; time.sleep(300)\"")
    import time

    wait_until(lambda: _ray_job_running(kube, namespace, name), timeout=180)
    event = asyncio.run(anext(aiter(RayJobTrigger(name, namespace, deadline=time.time() + 3).run())))
    assert event.payload["status"] == "timeout"
    assert event.payload["rayjob"]["job_status"] == "RUNNING"
    kube.delete_rayjob(name, namespace)
    assert_nothing_left()
