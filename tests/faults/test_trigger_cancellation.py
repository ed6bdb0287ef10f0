"""The triggerer's two kinds of cancellation (Airflow 3.3 contract, see triggerer_job_runner): a user action
cancels the trigger and calls ``on_kill`` (the RayJob must be deleted); a triggerer restart cancels it without
``on_kill`` (the RayJob must keep running, and a new trigger instance resumes the wait). Several triggers share the
triggerer's one RayJob watch per namespace in each scenario: one trigger's cancellation, kill or outage never changes
another's outcome."""

from __future__ import annotations

import asyncio

import pytest

from kuberay_provider import specs
from kuberay_provider.status import RayJobStatus
from kuberay_provider.triggers.rayjob import RayJobTrigger
from tests.integration.airflow_support import wait_until

pytestmark = pytest.mark.slow


def _create(kube, namespace: str, name: str, entrypoint: str, *, suspend: bool = False) -> None:
    manifest = specs.build_rayjob(
        name=name, namespace=namespace, job=specs.JobSettings(entrypoint=entrypoint, ttl_seconds_after_finished=0),
        cluster_spec=specs.build_ray_cluster_spec(head=specs.NodeGroup(cpu="1", memory="1Gi"), worker_groups=[],
                                                  pod=specs.PodSettings(image="rayproject/ray:2.60.0")),
    )
    if suspend:  # waits forever without a Ray cluster: a sibling trigger sharing the watch
        manifest["spec"]["suspend"] = True
    kube.create_rayjob(manifest)


def _open_rayjob_watches(local_stack, namespace: str) -> int:
    server = local_stack.server
    return local_stack.call(_count(server, namespace))


async def _count(server, namespace: str) -> int:
    return sum(1 for w in server.store.watchers if w.external and w.namespace == namespace
               and w.storage[1] == "rayjobs")


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
def test_user_kill_deletes_the_rayjob(kube, local_stack, namespace, assert_nothing_left):
    name = "user-kill"
    _create(kube, namespace, name, "python -c \"import time; time.sleep(300)\"")
    _create(kube, namespace, "sibling", "python -c \"print(1)\"", suspend=True)
    trigger = RayJobTrigger(name, namespace)

    async def scenario():
        sibling = asyncio.create_task(anext(aiter(RayJobTrigger("sibling", namespace).run())))
        await _run_until_cancelled(trigger, 2, lambda: _ray_job_running(kube, namespace, name))
        assert await asyncio.to_thread(_open_rayjob_watches, local_stack, namespace) == 1  # shared by both
        await trigger.on_kill()  # what the triggerer does after a user action (mark failed / clear)
        await asyncio.to_thread(wait_until, lambda: kube.get_rayjob(name, namespace) is None, 120)
        assert not sibling.done()  # the kill and the deletion of another RayJob did not end the sibling's wait
        await asyncio.to_thread(kube.delete_rayjob, "sibling", namespace)
        return await asyncio.wait_for(sibling, 60)

    event = asyncio.run(scenario())
    assert (event.payload["status"], event.payload["name"]) == ("deleted", "sibling")
    assert_nothing_left()


@pytest.mark.composer
def test_triggerer_restart_keeps_the_job_and_a_new_trigger_resumes(kube, local_stack, namespace, assert_nothing_left):
    name = "triggerer-restart"
    _create(kube, namespace, name, "python -c \"import time; time.sleep(15); print('finished after restart')\"")

    async def scenario():
        sibling = asyncio.create_task(anext(aiter(RayJobTrigger(name, namespace).run())))  # a second task, same job
        first = RayJobTrigger(name, namespace)
        await _run_until_cancelled(first, 1, lambda: _ray_job_running(kube, namespace, name))
        await first.cleanup()  # a restart: cleanup runs, on_kill does not
        assert _job_status(kube, namespace, name).job_status == "RUNNING"
        assert not sibling.done()
        second = RayJobTrigger(name, namespace)  # the new triggerer deserialises the same trigger
        resumed = await anext(aiter(second.run()))
        return resumed, await asyncio.wait_for(sibling, 60)

    event, sibling = asyncio.run(scenario())
    for payload in (event.payload, sibling.payload):
        assert (payload["status"], payload["name"], payload["namespace"]) == ("success", name, namespace)
        assert payload["rayjob"]["job_status"] == "SUCCEEDED"
    kube.delete_rayjob(name, namespace)
    assert_nothing_left()


def test_api_outage_with_several_triggers_on_one_watch(kube, local_stack, namespace, assert_nothing_left):
    name = "outage-shared"
    _create(kube, namespace, name, "python -c \"import time; time.sleep(25); print('ok')\"")
    faults = local_stack.server.faults

    async def scenario():
        tasks = [asyncio.create_task(anext(aiter(RayJobTrigger(name, namespace, stream_logs=False).run())))
                 for _ in range(3)]
        while not await asyncio.to_thread(_ray_job_running, kube, namespace, name):
            await asyncio.sleep(0.5)
        assert await asyncio.to_thread(_open_rayjob_watches, local_stack, namespace) == 1
        start = len(local_stack.server.requests)
        faults.outage(20)
        await asyncio.sleep(20)
        events = await asyncio.wait_for(asyncio.gather(*tasks), 180)
        during = [r for r in local_stack.server.requests[start:] if r.external and r.status == 503]
        return events, during

    events, during = asyncio.run(scenario())
    faults.clear()
    assert [e.payload["status"] for e in events] == ["success"] * 3
    assert 0 < len(during) < 12, len(during)  # one shared watch backing off (not three), no busy loop
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
