"""The loop's shared Kubernetes client: a request costs no thread hop (the environment's proxy is resolved once
when the client is built, not by aiohttp on every request), and that proxy is still honoured."""

from __future__ import annotations

import asyncio

from aiohttp import web

from kuberay_provider.hooks.informer import env_proxy
from kuberay_provider.hooks.kuberay import AsyncKubeRayHook
from tests.triggers.conftest import SUCCEEDED


def _no_proxy_env(monkeypatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "no_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_env_proxy_is_what_the_environment_names_for_the_api_host(monkeypatch):
    _no_proxy_env(monkeypatch)
    assert env_proxy("https://k8s.example:443") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.example:3128")
    proxy, auth = env_proxy("https://k8s.example:443")
    assert (str(proxy), auth.login) == ("http://proxy.example:3128", "user")
    monkeypatch.setenv("NO_PROXY", "k8s.example")
    assert env_proxy("https://k8s.example:443") is None


def test_requests_on_the_shared_client_do_not_hop_to_threads(api, namespace, monkeypatch):
    _no_proxy_env(monkeypatch)
    api.create_rayjob("hop", namespace, SUCCEEDED)

    async def scenario() -> tuple[int, list]:
        hook = AsyncKubeRayHook()
        async with hook.shared_client():
            await hook.get_rayjob("hop", namespace)  # the client is built (in a thread) by the first call
            loop = asyncio.get_running_loop()
            hops = []
            original = loop.run_in_executor

            def counting(*args):
                hops.append(args[1])
                return original(*args)

            loop.run_in_executor = counting  # type: ignore[method-assign]
            found = [await hook.get_rayjob("hop", namespace) for _ in range(20)]
            return len(hops), found

    hops, found = asyncio.run(scenario())
    assert all(obj["metadata"]["name"] == "hop" for obj in found)
    assert hops == 0  # aiohttp's trust_env would have made 2 thread hops per request (netrc, proxy)


def test_the_environments_proxy_is_still_used(api, namespace, monkeypatch):
    _no_proxy_env(monkeypatch)
    api.create_rayjob("via-proxy", namespace, SUCCEEDED)
    seen: list[str] = []

    async def scenario() -> dict:
        async def forward(request: web.Request) -> web.Response:  # a plain-HTTP forward proxy, enough for GETs
            seen.append(str(request.url))
            import aiohttp

            async with aiohttp.ClientSession() as session, session.get(api.server.url + request.path_qs) as r:
                return web.Response(body=await r.read(), status=r.status, content_type=r.content_type)

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", forward)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        try:
            hook = AsyncKubeRayHook()
            async with hook.shared_client():
                return await hook.get_rayjob("via-proxy", namespace)
        finally:
            await runner.cleanup()

    obj = asyncio.run(scenario())
    assert obj["metadata"]["name"] == "via-proxy"
    assert any(f"/namespaces/{namespace}/rayjobs/via-proxy" in url for url in seen)
