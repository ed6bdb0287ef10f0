"""Bounded retries with backoff for Kubernetes API calls, shared by the sync and async hooks (pure logic)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: HTTP statuses worth another try: throttling and server-side trouble.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ApiFailure:
    """An API or transport error reduced to what retry decisions need. ``status`` is None for transport errors."""

    status: int | None
    message: str
    #: a transport error no retry can fix (the server's certificate does not verify against the configured CA)
    permanent: bool = False

    @property
    def retryable(self) -> bool:
        if self.permanent:
            return False
        return self.status is None or self.status in RETRYABLE_STATUSES


def is_certificate_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is, or wraps, a TLS certificate verification failure (wrong CA, wrong host name): a
    configuration error that every retry would meet again. Follows ``__cause__``/``__context__`` and the wrappers
    urllib3 (``MaxRetryError.reason``, ``SSLError`` args) and aiohttp (``certificate_error``) use."""
    import ssl

    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None),
                    getattr(current, "certificate_error", None), *current.args]
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * 2**(n-1)`` capped at ``cap`` seconds, at most ``attempts`` tries."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 10.0
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        # The exponent is bounded: base * 2**1024 overflows a float after ~1000 failures (hours of outage).
        raw = min(self.cap, self.base * (2 ** min(max(0, failures - 1), 64)))
        return raw * (1 + random.uniform(-self.jitter, self.jitter))


Classifier = Callable[[BaseException], ApiFailure | None]


def call_with_retry(fn: Callable[[], T], classify: Classifier, policy: RetryPolicy, *, log=None) -> T:
    """Call ``fn``; retry retryable API failures with backoff; re-raise everything else at once."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            delay = _retry_delay(exc, classify, policy, attempt, log)
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def _retry_delay(exc: Exception, classify: Classifier, policy: RetryPolicy, attempt: int, log) -> float | None:
    """The backoff before the next attempt after ``exc``, or ``None`` when ``exc`` must be re-raised (the decision
    both :func:`call_with_retry` and :func:`acall_with_retry` make)."""
    failure = classify(exc)
    if failure is None or not failure.retryable or attempt == policy.attempts:
        return None
    delay = policy.delay(attempt)
    if log:
        log.warning("Kubernetes API call failed (%s); retry %d/%d in %.1fs",
                    failure.message, attempt, policy.attempts - 1, delay)
    return delay


async def acall_with_retry(fn: Callable[[], Awaitable[T]], classify: Classifier, policy: RetryPolicy, *, log=None) -> T:
    """Async twin of :func:`call_with_retry` (same decisions, non-blocking sleep)."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            delay = _retry_delay(exc, classify, policy, attempt, log)
            if delay is None:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
