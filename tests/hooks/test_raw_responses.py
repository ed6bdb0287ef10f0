"""Raw (``_preload_content=False``) calls must raise on HTTP errors, so retries and watch backoff apply.

Runs against the local API server over HTTP (no Ray cluster is started).
"""

from __future__ import annotations

import asyncio

import pytest

from kuberay_provider.hooks.retry import RetryPolicy
from kuberay_provider.hooks.watching import Get, RayJobWaiter, Sleep, Watch

NO_RETRY = RetryPolicy(attempts=1)


@pytest.fixture
def hooks(local_stack, monkeypatch):
    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    from kuberay_provider.hooks.kuberay import AsyncKubeRayHook, KubeRayHook

    yield KubeRayHook(retry=NO_RETRY), AsyncKubeRayHook(retry=NO_RETRY)
    local_stack.server.faults.clear()


@pytest.mark.parametrize("call", ["list_pods", "list_events", "read_pod_log", "read_submitter_job"])
def test_sync_raw_calls_raise_on_503(hooks, local_stack, namespace, call):
    from kubernetes.client.exceptions import ApiException

    sync, _ = hooks
    local_stack.server.faults.fail_next(1, 503)
    args = {"list_pods": (namespace, "a=b"), "list_events": (namespace,), "read_pod_log": ("p", namespace),
            "read_submitter_job": ("rj", namespace)}[call]
    with pytest.raises(ApiException) as raised:
        getattr(sync, call)(*args)
    assert raised.value.status == 503


@pytest.mark.parametrize("call", ["list_pods", "list_events", "read_pod_log", "read_submitter_job"])
def test_async_raw_calls_raise_on_503(hooks, local_stack, namespace, call):
    from kubernetes_asyncio.client.exceptions import ApiException

    _, hook = hooks
    local_stack.server.faults.fail_next(1, 503)
    args = {"list_pods": (namespace, "a=b"), "list_events": (namespace,), "read_pod_log": ("p", namespace),
            "read_submitter_job": ("rj", namespace)}[call]
    with pytest.raises(ApiException) as raised:
        asyncio.run(getattr(hook, call)(*args))
    assert raised.value.status == 503


def test_missing_submitter_job_is_none_and_retries_recover(local_stack, namespace, monkeypatch):
    for key, value in local_stack.env.items():
        monkeypatch.setenv(key, value)
    from kuberay_provider.hooks.kuberay import KubeRayHook

    hook = KubeRayHook(retry=RetryPolicy(attempts=3, base=0.01, cap=0.02))
    local_stack.server.faults.fail_next(2, 503, path_contains="/pods")
    assert hook.list_pods(namespace, "a=b") == []  # two 503s retried, then the real (empty) answer
    assert hook.read_submitter_job("no-such-job", namespace) is None


def test_sync_watch_503_backs_off_instead_of_reconnecting(hooks, local_stack, namespace):
    sync, _ = hooks
    waiter = RayJobWaiter("absent", namespace, timeout=30)
    assert isinstance(waiter.next_action(), Get)
    waiter.on_object({"metadata": {"name": "absent", "namespace": namespace, "resourceVersion": "1"}})
    action = waiter.next_action()
    assert isinstance(action, Watch)
    local_stack.server.faults.fail_next(1, 503)
    from kuberay_provider.hooks.kuberay import classify_sync_error

    with pytest.raises(Exception) as raised:
        list(sync._watch_lines("absent", namespace, action))
    waiter.on_failure(classify_sync_error(raised.value))
    assert isinstance(waiter.next_action(), Sleep)


def test_async_watch_503_backs_off_instead_of_reconnecting(hooks, local_stack, namespace):
    _, hook = hooks
    from kuberay_provider.hooks.kuberay import classify_async_error

    waiter = RayJobWaiter("absent", namespace, timeout=30)
    waiter.next_action()
    waiter.on_object({"metadata": {"name": "absent", "namespace": namespace, "resourceVersion": "1"}})
    action = waiter.next_action()

    async def watch_once() -> BaseException:
        try:
            async with hook.get_conn() as api:
                async for _ in hook._watch_lines(api, "absent", namespace, action):
                    pass
        except Exception as exc:
            return exc
        raise AssertionError("a 503 watch must raise")

    local_stack.server.faults.fail_next(1, 503)
    error = asyncio.run(watch_once())
    waiter.on_failure(classify_async_error(error))
    assert isinstance(waiter.next_action(), Sleep)
