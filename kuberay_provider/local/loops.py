"""The watch-and-reconcile loops every local controller runs (level-triggered, like controller-runtime).

A controller names the plurals it watches and gives one ``reconcile`` coroutine; :class:`ReconcileLoops` wakes it on
every watch event and every ``requeue_seconds``, re-watches after any stream error, and never lets one failed pass
stop the loop. Talks to the API server through the controller's :class:`~kuberay_provider.local.kube.Kube` client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

from kuberay_provider.local.kube import Kube, KubeError

log = logging.getLogger(__name__)
WATCH_SECONDS = "300"


class ReconcileLoops:
    """One watch task per plural plus one reconcile loop; :meth:`wake` asks for a pass now."""

    def __init__(self, kube: Kube, plurals: Sequence[str], reconcile: Callable[[], Awaitable[None]], *,
                 requeue_seconds: float, name: str) -> None:
        self.kube = kube
        self.plurals = tuple(plurals)
        self.reconcile = reconcile
        self.requeue_seconds = requeue_seconds
        self.name = name
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Run a reconcile pass as soon as the current one (if any) ends."""
        self._wake.set()

    def start(self) -> None:
        """Start the watch tasks and the reconcile loop (the client must be open)."""
        self._tasks = [asyncio.create_task(self._watch(p)) for p in self.plurals]
        self._tasks.append(asyncio.create_task(self._loop()))

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _watch(self, plural: str) -> None:
        while True:
            try:
                assert self.kube.session is not None
                async with self.kube.session.get(self.kube.url(plural),
                                                 params={"watch": "true", "timeoutSeconds": WATCH_SECONDS},
                                                 timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
                    async for line in resp.content:
                        if line.strip() and json.loads(line).get("type") != "BOOKMARK":
                            self._wake.set()
            except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError) as err:
                log.info("%s: watch %s: %s", self.name, plural, err)
                await asyncio.sleep(0.5)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.requeue_seconds)
            self._wake.clear()
            try:
                await self.reconcile()
            except (KubeError, aiohttp.ClientError) as err:
                log.warning("%s: reconcile failed: %s", self.name, err)
            except Exception:
                log.exception("%s: reconcile crashed", self.name)
                await asyncio.sleep(1.0)
