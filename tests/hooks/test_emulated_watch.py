"""The emulated API server's watch and list contract the informer relies on, plus the watch timeout's jitter."""

from __future__ import annotations

import asyncio
import json

from kuberay_provider.hooks.retry import ApiFailure
from kuberay_provider.hooks.watching import CollectionWatcher, List, RayJobWaiter, Sleep, Watch, WatchEvent
from kuberay_provider.local.apiserver import KubeAPIServer, Watcher
from kuberay_provider.local.resources import BY_PATH

RAYJOBS = BY_PATH[("ray.io", "v1", "rayjobs")]


def _obj(name: str) -> dict:
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": name, "namespace": "ns"}}


def test_no_bookmark_while_an_event_for_the_watcher_is_still_queued():
    async def scenario():
        server = KubeAPIServer()
        watcher = Watcher(RAYJOBS.storage_key, "ns", lambda o: True, asyncio.Queue(), True)
        server.store.watchers.add(watcher)
        server.store.commit(RAYJOBS.storage_key, "ADDED", _obj("a"))  # queued, not yet written to the stream
        queued = server.bookmark(watcher, RAYJOBS)
        watcher.queue.get_nowait()
        empty = server.bookmark(watcher, RAYJOBS)
        return queued, empty, server.store.rv

    queued, empty, rv = asyncio.run(scenario())
    assert queued is None  # a bookmark now would claim an event the client never saw
    assert json.loads(empty)["object"]["metadata"]["resourceVersion"] == str(rv)


def test_lists_page_with_limit_and_continue_and_keep_the_first_pages_version():
    server = KubeAPIServer()
    for i in range(5):
        server.store.commit(RAYJOBS.storage_key, "ADDED", _obj(f"j{i}"))
    first = server.list_objects(RAYJOBS, "ns", limit=2)
    server.store.commit(RAYJOBS.storage_key, "ADDED", _obj("j9"))
    names, page, pages = [], first, 0
    while True:
        pages += 1
        names += [i["metadata"]["name"] for i in page["items"]]
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        token = page["metadata"].get("continue")
        if not token:
            break
        page = server.list_objects(RAYJOBS, "ns", limit=2, continue_token=token)
    assert names == ["j0", "j1", "j2", "j3", "j4", "j9"] and pages == 3
    assert "continue" not in server.list_objects(RAYJOBS, "ns")["metadata"]


def test_watch_timeouts_are_jittered_so_waits_started_together_spread_out():
    rngs = iter([0.0, 0.5, 0.999])
    w = RayJobWaiter("a", "ns", rng=lambda: next(rngs), watch_timeout=60)
    w.next_action()
    w.on_object({"metadata": {"name": "a", "resourceVersion": "1"}})
    timeouts = [w.next_action().timeout_seconds for _ in range(3)]
    assert timeouts == [60, 52, 45]  # within [75 %, 100 %] of watch_timeout
    c = CollectionWatcher(rng=lambda: 0.4, watch_timeout=60)
    assert isinstance(c.next_action(), List)
    c.on_list("7")
    assert c.next_action() == Watch("7", 54)


def test_collection_watcher_relists_on_410_backs_off_otherwise_and_follows_bookmarks():
    t = [0.0]
    c = CollectionWatcher(clock=lambda: t[0], watch_jitter=0.0, relist_every=120)
    assert isinstance(c.next_action(), List)
    c.on_list("10")
    c.on_event(WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "15"}}))
    assert c.next_action() == Watch("15", 60)
    assert c.on_event(WatchEvent("MODIFIED", {"metadata": {"name": "x", "resourceVersion": "16"}})) is not None
    c.on_failure(ApiFailure(410, "Expired"))
    assert isinstance(c.next_action(), List)
    c.on_list("20")
    c.on_failure(ApiFailure(503, "unavailable"))
    assert isinstance(c.next_action(), Sleep)
    assert c.next_action() == Watch("20", 60)  # one failure: watch again from where it was
    c.on_failure(ApiFailure(503, "unavailable"))
    assert isinstance(c.next_action(), Sleep)
    assert isinstance(c.next_action(), List)  # a second one in a row: re-list
    c.on_list("30")
    t[0] += 121
    assert isinstance(c.next_action(), List)  # periodic re-list
    c.on_list("31")
    c.on_watch_closed(0, 0.01)  # closed at once with nothing: a failure, not a tight reconnect loop
    assert isinstance(c.next_action(), Sleep)


def test_the_shared_watchs_fallback_relist_is_shorter_than_the_single_waits():
    """A resume past a lost event (what the emulator's early BOOKMARK once caused) heals within two minutes."""
    from kuberay_provider.hooks.informer import Informer

    t = [0.0]
    c = CollectionWatcher(clock=lambda: t[0], watch_jitter=0.0)
    c.on_list("1")
    t[0] += 100
    assert isinstance(c.next_action(), Watch)
    t[0] += 21
    assert isinstance(c.next_action(), List)  # 121 s after the last list
    assert Informer.relist_every <= 120 < RayJobWaiter("a", "ns").__dict__.get("_relist_every", 300)
