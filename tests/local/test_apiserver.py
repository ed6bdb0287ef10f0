"""The local API server through the official clients, kubectl and Airflow's KubernetesHook (no Ray involved)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from kuberay_provider.local.stack import LocalStack

GROUP, VERSION = "ray.io", "v1"


@pytest.fixture
def api(local_stack: LocalStack) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(local_stack.kubeconfig_path))


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def crd(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def pod(name: str, labels: dict[str, str] | None = None, **meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}, **meta},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def rayjob(name: str, **spec: object) -> dict:
    head = {"rayStartParams": {}, "template": {"spec": {"containers": [{"name": "ray-head", "image": "ray"}]}}}
    worker = {"groupName": "w", "template": {"spec": {"containers": [{"name": "ray-worker", "image": "ray"}]}}}
    # managedBy MultiKueue: the local KubeRay controller skips the object, like the real one.
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": name},
            "spec": {"entrypoint": "echo hi", "rayClusterSpec": {"headGroupSpec": head, "workerGroupSpecs": [worker]},
                     "managedBy": "kueue.x-k8s.io/multikueue", **spec}}


def read_log(core: client.CoreV1Api, name: str, namespace: str, **kw: object) -> str:
    # kubernetes 36 returns str(bytes) ("b'...'") for non-JSON text unless the raw response is read.
    return core.read_namespaced_pod_log(name, namespace, _preload_content=False, **kw).data.decode()


def test_version_and_discovery(core: client.CoreV1Api, api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.major == "1"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"ray.io", "batch", "events.k8s.io"} <= groups
    resources = {r.name for r in core.get_api_resources().resources}
    assert {"pods", "pods/log", "services", "events", "namespaces"} <= resources


def test_create_get_list_conflict_and_not_found(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_pod(namespace, pod("p1"))  # None if the server answered 200 instead of 201
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert int(created.metadata.resource_version) > 0 and created.metadata.generation == 1
    with pytest.raises(ApiException) as conflict:
        core.create_namespaced_pod(namespace, pod("p1"))
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("nope", namespace)
    assert missing.value.status == 404
    listed = core.list_namespaced_pod(namespace)
    assert [p.metadata.name for p in listed.items] == ["p1"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    assert core.read_namespace(namespace).status.phase == "Active"


def test_generate_name(core: client.CoreV1Api, namespace: str) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "gen-"}
    created = core.create_namespaced_pod(namespace, body)
    assert created.metadata.name.startswith("gen-") and len(created.metadata.name) == 9


def test_crd_defaults_and_schema_rejections(crd: client.CustomObjectsApi, namespace: str) -> None:
    created = crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", rayjob("defaults"))
    spec = created["spec"]
    assert spec["submissionMode"] == "K8sJobMode" and spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 0
    worker = spec["rayClusterSpec"]["workerGroupSpecs"][0]
    assert worker["minReplicas"] == 0 and worker["maxReplicas"] == 2147483647
    for bad in (
        {"ttlSecondsAfterFinished": "60"},
        {"preRunningDeadlineSeconds": 0},
        {"managedBy": "foo"},
        {"deletionStrategy": {"onSuccess": {"policy": "DeleteCluster"}}},
        {"deletionStrategy": {"deletionRules": [{"policy": "DeleteEverything", "condition": {"jobStatus": "FAILED"}}]}},
        {"deletionStrategy": {"deletionRules": [{"policy": "DeleteCluster",
                                                 "condition": {"jobStatus": "FAILED",
                                                               "jobDeploymentStatus": "Failed"}}]}},
    ):
        with pytest.raises(ApiException) as err:
            crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", rayjob("bad", **bad))
        assert err.value.status == 422, bad
    no_head = rayjob("nohead")
    del no_head["spec"]["rayClusterSpec"]["headGroupSpec"]
    with pytest.raises(ApiException) as err:
        crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", no_head)
    assert err.value.status == 422


def test_managed_by_is_immutable(crd: client.CustomObjectsApi, namespace: str) -> None:
    crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", rayjob("mb"))
    with pytest.raises(ApiException) as err:
        crd.patch_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", "mb",
                                           {"spec": {"managedBy": "ray.io/kuberay-operator"}})
    assert err.value.status == 422 and "immutable" in err.value.body


def test_label_and_field_selectors(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod("a", {"app": "x", "tier": "web"}))
    core.create_namespaced_pod(namespace, pod("b", {"app": "y"}))
    core.create_namespaced_pod(namespace, pod("c", {}))

    def names(**kw: str) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod(namespace, **kw).items)

    assert names(label_selector="app=x") == ["a"]
    assert names(label_selector="app!=x") == ["b", "c"]
    assert names(label_selector="app in (x, y)") == ["a", "b"]
    assert names(label_selector="app notin (x)") == ["b", "c"]
    assert names(label_selector="app") == ["a", "b"]
    assert names(label_selector="!app") == ["c"]
    assert names(label_selector="app,tier=web") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b") == ["a", "c"]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(namespace, label_selector="app in x y")
    assert err.value.status == 400


def test_event_field_selectors_on_both_event_apis(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    for name, kind in (("rj1", "RayJob"), ("rj2", "RayJob"), ("rj1", "Pod")):
        core.create_namespaced_event(namespace, {
            "metadata": {"generateName": "ev-"}, "reason": "R", "message": f"{kind} {name}", "type": "Normal",
            "involvedObject": {"kind": kind, "name": name, "namespace": namespace}})
    found = core.list_namespaced_event(namespace, field_selector="involvedObject.name=rj1,involvedObject.kind=RayJob")
    assert [e.message for e in found.items] == ["RayJob rj1"]
    v1 = client.EventsV1Api(api).list_namespaced_event(namespace, field_selector="regarding.name=rj2")
    assert [e.note for e in v1.items] == ["RayJob rj2"]


def test_replace_conflict_status_subresource_and_generation(crd: client.CustomObjectsApi, namespace: str) -> None:
    obj = crd.create_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", rayjob("st"))
    stale = json.loads(json.dumps(obj))
    obj["spec"]["entrypoint"] = "echo changed"
    obj["status"] = {"jobDeploymentStatus": "Hacked"}
    updated = crd.replace_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", "st", obj)
    assert updated["spec"]["entrypoint"] == "echo changed"
    assert "status" not in updated or updated["status"].get("jobDeploymentStatus") != "Hacked"
    assert updated["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as err:
        crd.replace_namespaced_custom_object(GROUP, VERSION, namespace, "rayjobs", "st", stale)
    assert err.value.status == 409
    updated["spec"]["entrypoint"] = "ignored"
    updated["status"] = {"jobDeploymentStatus": "Initializing"}
    after = crd.replace_namespaced_custom_object_status(GROUP, VERSION, namespace, "rayjobs", "st", updated)
    assert after["status"]["jobDeploymentStatus"] == "Initializing"
    assert after["spec"]["entrypoint"] == "echo changed" and after["metadata"]["generation"] == 2
    assert after["status"]["succeeded"] == 0 and after["status"]["failed"] == 0  # CRD status defaults


def test_patch_flavours(core: client.CoreV1Api, local_stack: LocalStack, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod("p", {"a": "1", "b": "2"}))
    merged = core.patch_namespaced_pod("p", namespace, {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert merged.metadata.labels == {"b": "2", "c": "3"}
    ops = [{"op": "add", "path": "/metadata/labels/d", "value": "4"}, {"op": "remove", "path": "/metadata/labels/b"}]
    patched = core.patch_namespaced_pod("p", namespace, ops)
    assert patched.metadata.labels == {"c": "3", "d": "4"}
    request = urllib.request.Request(f"{local_stack.api_url}/api/v1/namespaces/{namespace}/pods/p", method="PATCH",
                                     data=json.dumps({"metadata": {"annotations": {"x": "y"}}}).encode(),
                                     headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(request) as resp:
        assert json.loads(resp.read())["metadata"]["annotations"] == {"x": "y"}


def test_watch_resume_timeout_and_bookmarks(core: client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_pod(namespace, pod("w1"))
    core.create_namespaced_pod(namespace, pod("w2"))
    core.delete_namespaced_pod("w1", namespace)
    began = time.monotonic()
    events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_pod, namespace, resource_version=first.metadata.resource_version, timeout_seconds=1)]
    assert events == [("ADDED", "w2"), ("DELETED", "w1")]
    assert time.monotonic() - began < 5
    initial = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_pod, namespace, timeout_seconds=1)]
    assert initial == [("ADDED", "w2")]
    raw = core.list_namespaced_pod(namespace, watch=True, allow_watch_bookmarks=True, timeout_seconds=7,
                                   resource_version=first.metadata.resource_version, _preload_content=False)
    kinds = [json.loads(line)["type"] for line in raw.read().decode().splitlines() if line]
    assert "BOOKMARK" in kinds


def test_watch_410_after_expiry(core: client.CoreV1Api, local_stack: LocalStack, namespace: str) -> None:
    old = core.create_namespaced_pod(namespace, pod("old")).metadata.resource_version
    seen: list[str] = []

    def consume() -> None:
        try:
            for event in watch.Watch().stream(core.list_namespaced_pod, namespace, timeout_seconds=20):
                seen.append(event["type"])
        except ApiException as exc:
            seen.append(f"error {exc.status}")

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(1.0)
    local_stack.server.faults.expire_watches()
    thread.join(10)
    assert seen == ["ADDED", "error 410"]
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(core.list_namespaced_pod, namespace, resource_version=old, timeout_seconds=2))
    assert err.value.status == 410


def test_drop_watches_closes_stream(core: client.CoreV1Api, local_stack: LocalStack, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod("d"))
    done = threading.Event()

    def consume() -> None:
        try:
            for _ in core.list_namespaced_pod(namespace, watch=True, timeout_seconds=30,
                                              _preload_content=False).stream():
                pass
        except Exception:
            pass
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(1.0)
    local_stack.server.faults.drop_watches()
    assert done.wait(5)


def test_finalizers_and_foreground_deletion(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod("fin", finalizers=["example.com/hold"]))
    core.delete_namespaced_pod("fin", namespace)
    held = core.read_namespaced_pod("fin", namespace)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_pod("fin", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("fin", namespace)
    assert err.value.status == 404

    owner = core.create_namespaced_pod(namespace, pod("owner"))
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner.metadata.uid,
           "controller": True, "blockOwnerDeletion": True}
    core.create_namespaced_pod(namespace, pod("child", ownerReferences=[ref]))
    core.delete_namespaced_pod("owner", namespace, propagation_policy="Foreground")
    marked = core.read_namespaced_pod("owner", namespace)
    assert "foregroundDeletion" in marked.metadata.finalizers
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and core.list_namespaced_pod(namespace).items:
        time.sleep(0.3)
    assert core.list_namespaced_pod(namespace).items == []


def test_background_gc_deletes_dependents(core: client.CoreV1Api, namespace: str) -> None:
    owner = core.create_namespaced_pod(namespace, pod("bg-owner"))
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "bg-owner", "uid": owner.metadata.uid, "controller": True}
    core.create_namespaced_pod(namespace, pod("bg-child", ownerReferences=[ref]))
    core.create_namespaced_pod(namespace, pod("unrelated"))
    core.delete_namespaced_pod("bg-owner", namespace)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(core.list_namespaced_pod(namespace).items) > 1:
        time.sleep(0.3)
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["unrelated"]


_RUNNING = {"phase": "Running", "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                                        "image": "busybox", "imageID": "", "state": {"running": {}}}]}


def _follow_in_thread(core: client.CoreV1Api, name: str, namespace: str) -> tuple[list[str], threading.Thread]:
    """Follow container ``main``'s log of ``name`` in a thread; the chunks it reads land in the returned list."""
    chunks: list[str] = []

    def follow() -> None:
        resp = core.read_namespaced_pod_log(name, namespace, container="main", follow=True, _preload_content=False)
        for chunk in resp.stream(16):
            chunks.append(chunk.decode())

    thread = threading.Thread(target=follow)
    thread.start()
    return chunks, thread


def test_pod_log_follow_streams_until_terminated(core: client.CoreV1Api, local_stack: LocalStack, namespace: str,
                                                 tmp_path: Path) -> None:
    created = core.create_namespaced_pod(namespace, pod("logger"))
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("logger", namespace)
    assert err.value.status == 400 and "waiting to start" in err.value.body
    log_file = tmp_path / "main.log"
    log_file.write_text("line 1\n")
    local_stack.server.register_log(namespace, "logger", "main", log_file)
    running = _RUNNING
    core.patch_namespaced_pod_status("logger", namespace, {"status": running})
    assert read_log(core, "logger", namespace, container="main") == "line 1\n"
    chunks, thread = _follow_in_thread(core, "logger", namespace)
    time.sleep(0.5)
    with log_file.open("a") as fh:
        fh.write("line 2\nline 3\n")
    time.sleep(0.6)
    assert thread.is_alive()
    finished = {"phase": "Succeeded", "containerStatuses": [{**running["containerStatuses"][0], "ready": False,
                                                             "state": {"terminated": {"exitCode": 0}}}]}
    core.patch_namespaced_pod_status("logger", namespace, {"status": finished})
    thread.join(5)
    assert not thread.is_alive()
    assert "".join(chunks) == "line 1\nline 2\nline 3\n"
    assert read_log(core, "logger", namespace, tail_lines=1) == "line 3\n"
    assert created.metadata.name == "logger"


def test_a_line_written_while_a_follow_starts_is_not_skipped(core: client.CoreV1Api, local_stack: LocalStack,
                                                              namespace: str, tmp_path: Path, monkeypatch) -> None:
    from aiohttp import web

    core.create_namespaced_pod(namespace, pod("starter"))
    log_file = tmp_path / "main.log"
    log_file.write_text("line 1\n")
    local_stack.server.register_log(namespace, "starter", "main", log_file)
    running = _RUNNING
    core.patch_namespaced_pod_status("starter", namespace, {"status": running})
    prepare = web.StreamResponse.prepare

    async def prepare_then_write(self, request):  # the driver writes a line while the headers go out
        writer = await prepare(self, request)
        if request.path.endswith("/starter/log"):
            with log_file.open("a") as fh:
                fh.write("line 2\n")
        return writer

    monkeypatch.setattr(web.StreamResponse, "prepare", prepare_then_write)
    chunks, thread = _follow_in_thread(core, "starter", namespace)
    time.sleep(0.5)
    finished = {"phase": "Succeeded", "containerStatuses": [{**running["containerStatuses"][0], "ready": False,
                                                             "state": {"terminated": {"exitCode": 0}}}]}
    core.patch_namespaced_pod_status("starter", namespace, {"status": finished})
    thread.join(5)
    assert "".join(chunks) == "line 1\nline 2\n"


def test_faults_apply_to_external_clients_only(core: client.CoreV1Api, local_stack: LocalStack,
                                               namespace: str) -> None:
    server = local_stack.server
    server.faults.fail_next(2, 429, method="GET", path_contains=f"/namespaces/{namespace}/pods")
    # (no Retry-After header by default: with one, urllib3 inside the kubernetes client retries silently)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.list_namespaced_pod(namespace)
        assert err.value.status == 429
    assert core.list_namespaced_pod(namespace).items == []
    mine = [r for r in server.requests if f"/namespaces/{namespace}/pods" in r.path]
    assert [r.status for r in mine] == [429, 429, 200] and all(r.external for r in mine)
    assert any(not r.external for r in server.requests)  # the controller's own requests keep flowing

    server.faults.delay(1.0, path_contains=f"/namespaces/{namespace}/pods")
    began = time.monotonic()
    core.list_namespaced_pod(namespace)
    assert time.monotonic() - began >= 1.0

    server.faults.outage(1.5)
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod(namespace)
    assert err.value.status == 503
    controller_before = sum(1 for r in server.requests if not r.external and r.status == 200)
    time.sleep(1.6)
    assert sum(1 for r in server.requests if not r.external and r.status == 200) > controller_before
    assert core.list_namespaced_pod(namespace).items == []


def test_kubectl(local_stack: LocalStack, namespace: str) -> None:
    def kubectl(*args: str) -> str:
        return subprocess.run(["kubectl", "--kubeconfig", str(local_stack.kubeconfig_path), "-n", namespace, *args],
                              check=True, capture_output=True, text=True, timeout=60).stdout

    manifest = json.dumps(rayjob("from-kubectl"))
    subprocess.run(["kubectl", "--kubeconfig", str(local_stack.kubeconfig_path), "-n", namespace, "create",
                    "--validate=false", "-f", "-"], input=manifest, check=True, capture_output=True, text=True,
                   timeout=60)
    assert "from-kubectl" in kubectl("get", "rayjobs")
    got = json.loads(kubectl("get", "rayjob", "from-kubectl", "-o", "json"))
    assert got["spec"]["submissionMode"] == "K8sJobMode"
    kubectl("delete", "rayjob", "from-kubectl", "--wait=false")


async def test_kubernetes_asyncio_list_and_watch(local_stack: LocalStack, namespace: str) -> None:
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio import config as aconfig
    from kubernetes_asyncio import watch as awatch

    api = await aconfig.new_client_from_config(config_file=str(local_stack.kubeconfig_path))
    async with api:
        core = aclient.CoreV1Api(api)
        created = await core.create_namespaced_pod(namespace, pod("async"))
        assert created.metadata.uid
        listed = await core.list_namespaced_pod(namespace)
        events = []
        async with awatch.Watch().stream(core.list_namespaced_pod, namespace, timeout_seconds=1,
                                         resource_version=listed.metadata.resource_version) as stream:
            await core.delete_namespaced_pod("async", namespace)
            async for event in stream:
                events.append((event["type"], event["object"].metadata.name))
        assert events == [("DELETED", "async")]


def test_airflow_kubernetes_hook(local_stack: LocalStack, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    hook = KubernetesHook()
    core = client.CoreV1Api(hook.get_conn())
    core.create_namespaced_pod(namespace, pod("from-airflow"))
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["from-airflow"]
