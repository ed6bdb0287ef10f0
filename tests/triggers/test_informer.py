"""The shared machinery of triggers (one client per connection, one watch per namespace) against the emulated API
server over HTTP: subscribe/leave, last leaves closes, cancellation isolation, 410 re-list, two triggers for one
RayJob, a RayJob that does not exist (yet), identified events, nothing built on the loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from kuberay_provider.hooks.informer import Feed, LogFollowPool, LogTicket, registry
from kuberay_provider.triggers.rayjob import RayClusterDeletedTrigger, RayJobTrigger
from tests.triggers.conftest import FAILED, RUNNING, SUCCEEDED


async def first_event(trigger) -> dict:
    gen = trigger.run()
    try:
        return (await anext(gen)).payload
    finally:
        await gen.aclose()


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def trig(name: str, namespace: str, **kw) -> RayJobTrigger:
    kw.setdefault("stream_logs", False)
    return RayJobTrigger(name, namespace, **kw)


def test_triggers_share_one_client_and_one_watch_and_each_gets_its_own_outcome(api, namespace):
    names = [f"job-{i}" for i in range(6)]
    for name in names:
        api.create_rayjob(name, namespace, RUNNING)

    async def scenario():
        tasks = [asyncio.create_task(first_event(trig(n, namespace))) for n in names]
        reg = registry()
        await until(lambda: sum(i.subscriber_count for i in reg.informers.values()) == len(names))
        await until(lambda: len(api.requests(f"/namespaces/{namespace}/rayjobs", watch=True)) >= 1)
        for i, name in enumerate(names):
            api.set_status(name, namespace, SUCCEEDED if i % 2 == 0 else FAILED)
        events = await asyncio.gather(*tasks)
        return events, reg.clients.created, dict(reg.informers)

    events, clients, informers_left = asyncio.run(scenario())
    assert [(e["name"], e["namespace"], e["status"]) for e in events] == [
        (n, namespace, "success" if i % 2 == 0 else "failed") for i, n in enumerate(names)]
    assert clients == 1
    assert informers_left == {}  # the last subscriber leaving closed the watch
    assert len(api.requests(f"/namespaces/{namespace}/rayjobs", watch=True)) == 1
    assert len(api.requests(f"/namespaces/{namespace}/rayjobs", watch=False)) == 1  # one list, no GET per trigger


def test_last_subscriber_leaving_closes_the_watch_on_the_server(api, namespace):
    api.create_rayjob("a", namespace, RUNNING)
    api.create_rayjob("b", namespace, RUNNING)

    async def scenario():
        first = asyncio.create_task(first_event(trig("a", namespace)))
        second = asyncio.create_task(first_event(trig("b", namespace)))
        await until(lambda: api.open_watches(namespace) == 1)
        api.set_status("a", namespace, SUCCEEDED)
        assert (await first)["status"] == "success"
        await asyncio.sleep(0.3)
        assert api.open_watches(namespace) == 1  # b still waits on the same watch
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        await until(lambda: api.open_watches(namespace) == 0)
        assert registry().informers == {}

    asyncio.run(scenario())


def test_a_cancelled_subscriber_does_not_change_the_others_outcome(api, namespace):
    for name in ("x", "y", "z"):
        api.create_rayjob(name, namespace, RUNNING)

    async def scenario():
        tasks = {n: asyncio.create_task(first_event(trig(n, namespace))) for n in ("x", "y", "z")}
        await until(lambda: api.open_watches(namespace) == 1)
        tasks["y"].cancel()  # a triggerer restart or a user kill of one task
        await asyncio.sleep(0.2)
        api.set_status("x", namespace, SUCCEEDED)
        api.set_status("y", namespace, SUCCEEDED)
        api.set_status("z", namespace, FAILED)
        return await tasks["x"], await tasks["z"], tasks["y"].cancelled()

    x, z, y_cancelled = asyncio.run(scenario())
    assert (x["status"], z["status"], y_cancelled) == ("success", "failed", True)


def test_410_gone_relists_and_no_outcome_is_lost(api, namespace):
    names = [f"r-{i}" for i in range(4)]
    for name in names:
        api.create_rayjob(name, namespace, RUNNING)

    async def scenario():
        tasks = [asyncio.create_task(first_event(trig(n, namespace))) for n in names]
        await until(lambda: api.open_watches(namespace) == 1)
        api.set_status(names[0], namespace, SUCCEEDED)
        api.server.faults.expire_watches()  # 410 for the open watch and for resuming from any older version
        api.set_status(names[1], namespace, SUCCEEDED)
        await asyncio.sleep(0.5)
        api.set_status(names[2], namespace, FAILED)
        api.delete_rayjob(names[3], namespace)
        return await asyncio.wait_for(asyncio.gather(*tasks), 30)

    events = asyncio.run(scenario())
    assert [e["status"] for e in events] == ["success", "success", "failed", "deleted"]
    assert len(api.requests(f"/namespaces/{namespace}/rayjobs", watch=False)) >= 2  # listed again after the 410


def test_two_triggers_for_the_same_rayjob_both_finish(api, namespace):
    api.create_rayjob("same", namespace, RUNNING)

    async def scenario():
        tasks = [asyncio.create_task(first_event(trig("same", namespace))) for _ in range(2)]
        await until(lambda: registry().informers and next(iter(registry().informers.values())).subscriber_count == 2)
        api.set_status("same", namespace, SUCCEEDED)
        return await asyncio.gather(*tasks)

    assert [e["status"] for e in asyncio.run(scenario())] == ["success", "success"]


def test_a_rayjob_that_does_not_exist_is_reported_deleted_and_one_created_after_the_list_is_found(api, namespace):
    api.create_rayjob("other", namespace, RUNNING)

    async def scenario():
        waiting = asyncio.create_task(first_event(trig("other", namespace)))  # keeps the informer (and its list)
        await until(lambda: api.open_watches(namespace) == 1)
        missing = await first_event(trig("never-created", namespace))
        api.create_rayjob("late", namespace, RUNNING)  # the informer's cache may not have it yet: a GET settles it
        late = asyncio.create_task(first_event(trig("late", namespace)))
        await asyncio.sleep(0.3)
        assert not late.done()
        api.set_status("late", namespace, SUCCEEDED)
        api.set_status("other", namespace, SUCCEEDED)
        return missing, await late, await waiting

    missing, late, other = asyncio.run(scenario())
    assert (missing["status"], missing["name"], missing["namespace"]) == ("deleted", "never-created", namespace)
    assert late["status"] == other["status"] == "success"


def test_every_outcome_names_the_rayjob(api, namespace):
    api.create_rayjob("t", namespace, RUNNING)

    async def scenario():
        timeout = await first_event(trig("t", namespace, deadline=time.time() + 0.5))
        api.server.faults.fail_next(3, 403, path_contains=f"/namespaces/{namespace}/rayjobs")
        error = await first_event(trig("t", namespace))
        return timeout, error

    timeout, error = asyncio.run(scenario())
    assert (timeout["status"], timeout["name"], timeout["namespace"]) == ("timeout", "t", namespace)
    assert timeout["rayjob"]["job_status"] == "RUNNING"
    assert (error["status"], error["name"], error["namespace"]) == ("error", "t", namespace)
    assert "403" in error["message"]


def test_cluster_deleted_trigger_events_are_identified_and_use_the_shared_client(api, namespace):
    async def scenario():
        return await first_event(RayClusterDeletedTrigger(namespace, names=["gone-cluster"], poll_interval=0.1)), \
            registry().clients.created

    event, clients = asyncio.run(scenario())
    assert (event["status"], event["name"], event["namespace"]) == ("success", "gone-cluster", namespace)
    assert clients == 1


def test_the_client_is_built_off_the_event_loop(api, namespace, monkeypatch):
    import ssl

    threads: list[str] = []
    original = ssl.create_default_context

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", recording)
    api.create_rayjob("tls", namespace, SUCCEEDED)

    async def scenario():
        loop_thread = threading.current_thread().name
        events = await asyncio.gather(*(first_event(trig("tls", namespace)) for _ in range(5)))
        return loop_thread, events

    loop_thread, events = asyncio.run(scenario())
    assert all(e["status"] == "success" for e in events)
    assert threads and loop_thread not in threads


def test_watch_failures_are_logged_and_backed_off(api, namespace, caplog):
    api.create_rayjob("flaky", namespace, RUNNING)

    async def scenario():
        task = asyncio.create_task(first_event(trig("flaky", namespace)))
        await until(lambda: api.open_watches(namespace) == 1)
        api.server.faults.fail_next(2, 503, path_contains=f"/namespaces/{namespace}/rayjobs")
        api.server.faults.drop_watches()
        await asyncio.sleep(1.5)
        api.set_status("flaky", namespace, SUCCEEDED)
        return await asyncio.wait_for(task, 30)

    with caplog.at_level(logging.WARNING, logger="kuberay_provider.hooks.informer"):
        assert asyncio.run(scenario())["status"] == "success"
    assert any("503" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


# -- the log-follow pool (pure) ------------------------------------------------------------------------------
def _ticket(started: float, log: list[str]) -> LogTicket:
    return LogTicket(started, lambda: log.append(f"grant {started}"), lambda: log.append(f"revoke {started}"))


def test_pool_grants_up_to_its_limit_newest_first():
    log: list[str] = []
    pool = LogFollowPool(2)
    a, b, c, d = (_ticket(t, log) for t in (1, 2, 3, 0.5))
    for t in (a, b, c, d):
        pool.request(t)
    assert log == ["grant 1", "grant 2", "revoke 1", "grant 3"]  # the newest wins; 0.5 (oldest) just waits
    assert {t.started for t in pool.active} == {2, 3}
    pool.release(c)
    assert log[-1] == "grant 1"  # the newest of the waiting ones
    assert pool.peak == 2


def test_pool_of_zero_never_follows():
    log: list[str] = []
    pool = LogFollowPool(0)
    pool.request(_ticket(1, log))
    assert log == [] and not pool.active


def test_the_deadline_holds_while_the_first_list_cannot_be_made(api, namespace):
    api.create_rayjob("early", namespace, RUNNING)
    api.server.faults.outage(4)

    async def scenario():
        # (without the deadline around the first list this would wait for the informer forever)
        return await asyncio.wait_for(first_event(trig("early", namespace, deadline=time.time() + 1)), 20)

    event = asyncio.run(scenario())
    assert (event["status"], event["name"]) == ("timeout", "early")


# -- a wait's feed (pure) ------------------------------------------------------------------------------------
def test_a_feed_hands_items_out_in_order_wakes_its_reader_and_times_out():
    async def scenario() -> tuple[list, float, bool]:
        feed = Feed()
        feed.put_nowait(1)
        feed.put_nowait(2)
        got = [await feed.get(), feed.get_nowait()]
        reader = asyncio.ensure_future(feed.get(timeout=5))
        await asyncio.sleep(0)
        feed.put_nowait(3)
        got.append(await reader)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await feed.get(timeout=0.05)
        waited = time.monotonic() - started
        with pytest.raises(asyncio.QueueEmpty):
            feed.get_nowait()
        return got, waited, feed.empty()

    got, waited, empty = asyncio.run(scenario())
    assert got == [1, 2, 3]
    assert waited >= 0.04 and empty


def test_the_waits_of_one_connection_share_one_hook_and_client(api, namespace):
    names = [f"job-{i}" for i in range(4)]
    for n in names:
        api.create_rayjob(n, namespace, RUNNING)

    async def scenario() -> tuple[int, int, list[str]]:
        reg = registry()
        tasks = [asyncio.ensure_future(first_event(trig(n, namespace))) for n in names]
        await until(lambda: sum(e[2] for e in reg._hooks.values()) == len(names))
        hooks, clients = len(reg._hooks), reg.clients.created
        for n in names:
            api.set_status(n, namespace, SUCCEEDED)
        events = await asyncio.gather(*tasks)
        assert not reg._hooks  # the last wait released the shared hook
        return hooks, clients, [e["status"] for e in events]

    hooks, clients, statuses = asyncio.run(scenario())
    assert (hooks, clients) == (1, 1)
    assert statuses == ["success"] * len(names)
