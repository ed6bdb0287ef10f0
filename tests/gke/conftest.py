"""Fixtures for GKE mode: the emulated API server over HTTPS with bearer-token auth and the Google doubles
(token endpoint, IAM impersonation, GKE GetCluster), on a loop thread of their own; no Ray, no controller."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kuberay_provider.local.apiserver import KubeAPIServer
from kuberay_provider.local.google import Cluster, GoogleDoubles
from kuberay_provider.local.resources import BY_PATH
from kuberay_provider.local.tls import TestCA, make_ca

PROJECT, LOCATION, CLUSTER = "proj-1", "europe-west4", "ray-cluster"
PRINCIPAL = f"airflow@{PROJECT}.iam.gserviceaccount.com"
RAYJOBS = BY_PATH[("ray.io", "v1", "rayjobs")]
TOKEN_LIFETIME = 2.0


@dataclass
class GkeDoubles:
    server: KubeAPIServer
    google: GoogleDoubles
    ca: TestCA
    key_path: Path
    loop: asyncio.AbstractEventLoop

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the servers' loop (store mutations must happen there)."""
        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def connection(self, **extra: Any) -> str:
        base = {"project_id": PROJECT, "location": LOCATION, "cluster_name": CLUSTER, "namespace": "ns",
                "gke_api_endpoint": self.google.url, "iam_endpoint": self.google.url}
        return json.dumps({"conn_type": "kuberay", "extra": {k: v for k, v in {**base, **extra}.items()
                                                             if v is not None}})

    def commit(self, kind: str, obj: dict[str, Any]) -> None:
        self.run(lambda: self.server.store.commit(RAYJOBS.storage_key, kind, obj))


@pytest.fixture
def gke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GkeDoubles]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gke-doubles", daemon=True)
    thread.start()
    server, google, ca = KubeAPIServer(bookmark_interval=1.0), GoogleDoubles(token_lifetime=TOKEN_LIFETIME), make_ca()

    async def boot() -> None:
        await server.start()
        tls_url = await server.start_tls(ca.server_context(tmp_path / "tls"), authenticate=google.principal_of)
        await google.start()
        google.add_cluster(PROJECT, LOCATION, CLUSTER, Cluster(tls_url.removeprefix("https://"), ca.ca_pem))

    asyncio.run_coroutine_threadsafe(boot(), loop).result(30)
    key = google.write_service_account_key(tmp_path / "key.json", PRINCIPAL, PROJECT)
    doubles = GkeDoubles(server, google, ca, key, loop)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("AIRFLOW_CONN_KUBERAY_GKE", doubles.connection())
    try:
        yield doubles
    finally:
        async def shutdown() -> None:
            await server.stop()
            await google.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
