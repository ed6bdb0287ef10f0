"""Bounded retries with backoff (sync and async twins make the same decisions)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kuberay_provider.hooks import retry
from kuberay_provider.hooks.retry import RETRYABLE_STATUSES, ApiFailure, RetryPolicy, acall_with_retry, call_with_retry


class HttpError(Exception):
    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status = status


def classify(exc: BaseException) -> ApiFailure | None:
    if isinstance(exc, HttpError):
        return ApiFailure(exc.status, str(exc))
    if isinstance(exc, ConnectionError):
        return ApiFailure(None, str(exc))
    return None


class Flaky:
    """Raises the given exceptions in order, then returns ``"ok"``."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture
def sleeps(monkeypatch):
    """The backoff sleeps of the test's own thread; other threads (a session's local stack, Ray's driver threads)
    keep sleeping for real, since time.sleep and asyncio.sleep are patched process-wide."""
    recorded: list[float] = []
    mine = threading.current_thread()
    real_sleep, real_async_sleep = time.sleep, asyncio.sleep

    def fake_sleep(seconds):
        if threading.current_thread() is mine:
            recorded.append(seconds)
        else:
            real_sleep(seconds)

    async def fake_async_sleep(seconds, *args, **kwargs):
        if threading.current_thread() is mine:
            recorded.append(seconds)
        else:
            await real_async_sleep(seconds, *args, **kwargs)

    monkeypatch.setattr(retry.time, "sleep", fake_sleep)
    monkeypatch.setattr(retry.asyncio, "sleep", fake_async_sleep)
    return recorded


@pytest.mark.parametrize("status", [*sorted(RETRYABLE_STATUSES), None])
def test_retryable(status):
    assert ApiFailure(status, "x").retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_not_retryable(status):
    assert not ApiFailure(status, "x").retryable


def test_delay_grows_exponentially_and_is_capped():
    p = RetryPolicy(base=0.5, cap=10.0, jitter=0.0)
    assert [p.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert p.delay(0) == 0.5  # defensive: never below base
    assert p.delay(10_000) == 10.0  # no overflow for long outages


def test_jitter_stays_within_bounds():
    p = RetryPolicy(base=1.0, cap=100.0, jitter=0.2)
    delays = [p.delay(3) for _ in range(500)]
    assert all(4 * 0.8 <= d <= 4 * 1.2 for d in delays)
    assert len(set(delays)) > 1  # actually jittered


def test_success_after_transient_failures(sleeps):
    fn = Flaky(HttpError(503), ConnectionError("reset"), HttpError(429))
    assert call_with_retry(fn, classify, RetryPolicy(attempts=4, base=1, jitter=0)) == "ok"
    assert fn.calls == 4
    assert sleeps == [1, 2, 4]


def test_gives_up_after_attempts_and_reraises_the_last_error(sleeps):
    fn = Flaky(*[HttpError(500) for _ in range(10)])
    with pytest.raises(HttpError) as err:
        call_with_retry(fn, classify, RetryPolicy(attempts=3, base=1, jitter=0))
    assert err.value.status == 500
    assert fn.calls == 3
    assert sleeps == [1, 2]


@pytest.mark.parametrize("exc", [HttpError(403), HttpError(404), HttpError(422), ValueError("bug")])
def test_non_retryable_errors_raise_at_once(sleeps, exc):
    fn = Flaky(exc)
    with pytest.raises(type(exc)):
        call_with_retry(fn, classify, RetryPolicy(attempts=5))
    assert fn.calls == 1 and sleeps == []


def test_logs_each_retry(sleeps):
    class Log:
        def __init__(self):
            self.messages = []

        def warning(self, fmt, *args):
            self.messages.append(fmt % args)

    log = Log()
    call_with_retry(Flaky(HttpError(503)), classify, RetryPolicy(attempts=3, base=1, jitter=0), log=log)
    assert log.messages == ["Kubernetes API call failed (HTTP 503); retry 1/2 in 1.0s"]


async def test_async_twin_makes_the_same_decisions(sleeps):
    fn = Flaky(HttpError(503), ConnectionError("reset"))

    async def call():
        return fn()

    assert await acall_with_retry(call, classify, RetryPolicy(attempts=3, base=1, jitter=0)) == "ok"
    assert sleeps == [1, 2]

    fn2 = Flaky(HttpError(403))

    async def call2():
        return fn2()

    with pytest.raises(HttpError):
        await acall_with_retry(call2, classify, RetryPolicy(attempts=3))
    assert fn2.calls == 1

    fn3 = Flaky(*[HttpError(502)] * 5)

    async def call3():
        return fn3()

    with pytest.raises(HttpError):
        await acall_with_retry(call3, classify, RetryPolicy(attempts=2, base=1, jitter=0))
    assert fn3.calls == 2


async def test_async_sleep_does_not_block_the_loop():
    """With real (tiny) delays the event loop keeps running other tasks during the backoff."""
    ticks = []

    async def ticker():
        for _ in range(3):
            ticks.append(1)
            await asyncio.sleep(0)

    fn = Flaky(HttpError(503))

    async def call():
        return fn()

    result, _ = await asyncio.gather(acall_with_retry(call, classify, RetryPolicy(base=0.01, jitter=0)), ticker())
    assert result == "ok" and len(ticks) == 3


@pytest.mark.parametrize(("extras", "expected"), [({}, 30.0), ({"request_timeout": 5}, 5.0), ({"request_timeout": "2.5"}, 2.5)])
def test_request_timeout_comes_from_the_connection(extras, expected):
    from kuberay_provider.hooks.kuberay import request_timeout_from

    assert request_timeout_from(extras) == expected


@pytest.mark.parametrize("value", [0, -1, "soon", True, None])
def test_bad_request_timeout_is_refused_naming_it(value):
    from kuberay_provider.errors import InvalidParameterError
    from kuberay_provider.hooks.kuberay import request_timeout_from

    with pytest.raises(InvalidParameterError) as err:
        request_timeout_from({"request_timeout": value})
    assert err.value.parameter == "request_timeout"
