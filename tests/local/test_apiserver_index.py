"""The emulated API store's indexes: label-selected lists and list pages cost what they return, and the indexes
follow every create, label change and delete (the HTTP selector semantics are in ``test_apiserver.py``)."""

from __future__ import annotations

import itertools

from kuberay_provider.local.apiserver import KubeAPIServer, Selection
from kuberay_provider.local.resources import BY_PATH
from kuberay_provider.local.selectors import label_selector, required_labels

PODS = BY_PATH[("", "v1", "pods")]


def _pod(name: str, namespace: str = "ns", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels}}


class Counting:
    """A label selector that counts the objects it had to look at."""

    def __init__(self, text: str) -> None:
        self.match, self.labels, self.looked_at = label_selector(text), required_labels(text), 0

    def __call__(self, obj: dict) -> bool:
        self.looked_at += 1
        return self.match(obj)


def _names(result: dict) -> list[str]:
    return [i["metadata"]["name"] for i in result["items"]]


def test_required_labels_are_the_equality_terms_only():
    assert required_labels("a=1,b==2,c in (3),d in (4, 5),e!=6,f,!g,h notin (7)") == {"a": "1", "b": "2", "c": "3"}
    assert required_labels("") == {} and required_labels(None) == {}


def test_a_label_selected_list_looks_only_at_the_matching_objects():
    server = KubeAPIServer()
    for i in range(2000):
        server.store.commit(PODS.storage_key, "ADDED", _pod(f"p{i:04d}", job=f"j{i}", app="ray"))
    selector = Counting("job=j1234,app=ray")
    assert _names(server.list_objects(PODS, "ns", selector)) == ["p1234"]
    assert selector.looked_at == 1  # not 2,000: the index answered
    unindexed = Counting("app!=x")  # no equality term: every object is checked, and all match
    assert len(server.list_objects(PODS, "ns", unindexed)["items"]) == 2000 and unindexed.looked_at == 2000


def test_the_index_follows_label_changes_and_deletes():
    server = KubeAPIServer()
    store = server.store
    store.commit(PODS.storage_key, "ADDED", _pod("a", job="x"))
    store.commit(PODS.storage_key, "ADDED", _pod("b", job="x"))
    store.commit(PODS.storage_key, "MODIFIED", _pod("a", job="y"))  # relabelled
    store.commit(PODS.storage_key, "DELETED", _pod("b", job="x"))

    def select(text: str) -> list[str]:
        return _names(server.list_objects(PODS, None, Selection(label_selector(text), required_labels(text))))

    assert select("job=x") == []
    assert select("job=y") == ["a"]
    store.commit(PODS.storage_key, "ADDED", _pod("b", job="x"))  # re-created
    assert select("job=x") == ["b"] and _names(server.list_objects(PODS, None)) == ["a", "b"]


def test_pages_of_a_selected_list_in_one_namespace_match_a_full_scan():
    server = KubeAPIServer()
    for i, ns in itertools.product(range(30), ("a", "b", "c")):
        server.store.commit(PODS.storage_key, "ADDED", _pod(f"p{i:02d}", ns, parity=str(i % 2)))
    selection = Selection(label_selector("parity=1"), required_labels("parity=1"))
    names, token = [], None
    while True:
        page = server.list_objects(PODS, "b", selection, limit=4, continue_token=token)
        assert len(page["items"]) <= 4
        assert {i["metadata"]["namespace"] for i in page["items"]} <= {"b"}
        names += _names(page)
        token = page["metadata"].get("continue")
        if not token:
            break
    assert names == [f"p{i:02d}" for i in range(1, 30, 2)]
    assert _names(server.list_objects(PODS, "c", limit=100)) == [f"p{i:02d}" for i in range(30)]


def test_events_queued_for_a_watch_go_out_together_in_order(monkeypatch):
    import asyncio
    import json

    import aiohttp
    from aiohttp import web

    writes: list[int] = []
    original = web.StreamResponse.write

    async def counting(self, data):
        writes.append(data.count(b"\n"))
        return await original(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", counting)

    async def scenario() -> list[str]:
        server = KubeAPIServer(bookmark_interval=60)
        url = await server.start()
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"{url}/api/v1/namespaces/ns/pods", params={"watch": "true", "resourceVersion": "0"}) as r:
                await asyncio.sleep(0.2)  # the watch is registered
                writes.clear()
                for i in range(300):  # one burst of commits while the watch task waits for its turn
                    server.store.commit(PODS.storage_key, "ADDED", _pod(f"p{i:03d}"))
                names = []
                while len(names) < 300:
                    line = await asyncio.wait_for(r.content.readline(), 10)
                    names.append(json.loads(line)["object"]["metadata"]["name"])
                return names
        finally:
            await server.stop()

    names = asyncio.run(scenario())
    assert names == [f"p{i:03d}" for i in range(300)]
    assert len(writes) <= 3 and sum(writes) >= 300  # not one write (and one loop turn) per event
