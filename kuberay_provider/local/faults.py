"""Fault injection and the request log of the local API server. Faults apply to external clients only."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

CONTROLLER_USER_AGENT = "kuberay-local-controller"


@dataclass(frozen=True)
class RequestRecord:
    """One request the API server answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    external: bool
    time: float = field(default_factory=time.time)
    user_agent: str = ""

    @property
    def is_watch(self) -> bool:
        """Whether the request was a watch."""
        return self.query.get("watch", "").lower() in ("true", "1")


@dataclass
class _Rule:
    remaining: int
    status: int
    seconds: float
    method: str | None
    path_contains: str | None
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_contains is None or self.path_contains in path
        )


class Faults:
    """Explicit fault API (thread-safe). Rules are consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Rule] = []
        self._delays: list[_Rule] = []
        self._outage_until = 0.0
        self.expire_watches_hook: Any = None
        self.drop_watches_hook: Any = None

    def fail_next(
        self, n: int = 1, status: int = 500, *, method: str | None = None, path_contains: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``n`` matching external requests with HTTP ``status`` (e.g. 429, 500, 503).

        ``retry_after`` adds a ``Retry-After`` header (urllib3, inside the kubernetes client, then retries 429/503
        by itself, so the caller may never see the error).
        """
        if n < 1 or not 400 <= status <= 599:
            raise ValueError("fail_next needs n >= 1 and an HTTP error status")
        with self._lock:
            self._failures.append(_Rule(n, status, 0.0, method, path_contains, retry_after))

    def delay(
        self, seconds: float, *, path_contains: str | None = None, method: str | None = None, times: int = 1
    ) -> None:
        """Delay the next ``times`` matching external requests by ``seconds`` before answering them."""
        with self._lock:
            self._delays.append(_Rule(times, 0, seconds, method, path_contains))

    def outage(self, seconds: float) -> None:
        """Answer every external request with 503 for the next ``seconds`` (open watches are dropped too)."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds
        if self.drop_watches_hook:
            self.drop_watches_hook()

    def expire_watches(self) -> None:
        """Send an ERROR 410 Gone event on every open external watch and expire all resourceVersions seen so far."""
        if self.expire_watches_hook:
            self.expire_watches_hook()

    def drop_watches(self) -> None:
        """Close every open external watch stream abruptly (no final chunk)."""
        if self.drop_watches_hook:
            self.drop_watches_hook()

    def clear(self) -> None:
        """Forget pending failures, delays and any outage."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()
            self._outage_until = 0.0

    def take(self, method: str, path: str) -> tuple[int | None, int | None, float]:
        """Consume the rules matching one external request: ``(fail status or None, Retry-After, delay seconds)``."""
        with self._lock:
            if time.monotonic() < self._outage_until:
                return 503, None, 0.0
            status = self._consume(self._failures, method, path)
            delay = self._consume(self._delays, method, path)
        return ((status.status, status.retry_after) if status else (None, None)) + (delay.seconds if delay else 0.0,)

    @staticmethod
    def _consume(rules: list[_Rule], method: str, path: str) -> _Rule | None:
        for rule in rules:
            if rule.matches(method, path):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    rules.remove(rule)
                return rule
        return None
