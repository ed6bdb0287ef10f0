"""The Kubernetes API server's service proxy, for the local stack.

A real API server forwards ``/api/v1/namespaces/<ns>/services/<[scheme:]name[:port]>/proxy/<path>`` to an endpoint
of the Service (the ready pods behind it): that is how the provider's "Ray Dashboard" link reaches a head node from a
browser, with the user's own Kubernetes credentials. The local stack has no pod network, so the API server asks a
*resolver* (set by :class:`~kuberay_provider.local.stack.LocalStack`, answered by the controller) for the address
that stands for the Service's endpoint, and the headers the local cluster needs (its Ray token, which replaces the
private cluster network a real head node sits behind). As on a real API server: the Service must exist (404), its
port must be one of the Service's (404), and a Service without a ready endpoint answers 503.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import ClientSession, ClientTimeout, web

#: ``(namespace, Service object, port name) -> (base URL, headers)`` of a ready endpoint behind the Service's
#: selector, or None
Resolver = Callable[[str, dict, str], "tuple[str, dict[str, str]] | None"]

_PROXY_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<svc>[^/]+)/proxy(?P<rest>/.*)?$")
# hop-by-hop headers (RFC 9110 7.6.1) and what the proxy itself sets
_NOT_FORWARDED = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "host", "authorization", "content-length"}


@dataclass(frozen=True)
class ProxyTarget:
    """One parsed service-proxy request."""

    namespace: str
    service: str
    port: str  # the port's name or number as the URL gave it ("" = the Service's only/first port)
    path: str  # what follows ``/proxy`` (at least "/")


def parse(path: str) -> ProxyTarget | None:
    """The target of a service-proxy path, or None if ``path`` is not one."""
    match = _PROXY_PATH.match(path)
    if match is None:
        return None
    service = match["svc"].split(":")
    if service[0] in ("http", "https") and len(service) > 1:
        service = service[1:]  # <scheme>:<name>[:<port>]
    return ProxyTarget(match["ns"], service[0], service[1] if len(service) > 1 else "", match["rest"] or "/")


def port_of(service: dict, port: str) -> str | None:
    """The Service port named (or numbered) ``port`` as its name, or None if the Service has no such port."""
    ports = (service.get("spec") or {}).get("ports") or []
    if not port:
        return (ports[0].get("name") or str(ports[0].get("port"))) if ports else None
    for entry in ports:
        if port in (entry.get("name"), str(entry.get("port"))):
            return entry.get("name") or str(entry.get("port"))
    return None


async def forward(request: web.Request, base_url: str, headers: dict[str, str], path: str) -> web.StreamResponse:
    """Forward ``request`` to ``base_url + path`` and stream the answer back."""
    outgoing = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
    outgoing.update(headers)
    body = await request.read() if request.can_read_body else None
    async with ClientSession(timeout=ClientTimeout(total=60)) as session, session.request(
            request.method, base_url.rstrip("/") + path, params=request.query, headers=outgoing, data=body,
            allow_redirects=False) as upstream:
        response = web.StreamResponse(status=upstream.status, headers={
            k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED | {"content-encoding"}})
        await response.prepare(request)
        async for chunk in upstream.content.iter_chunked(64 * 1024):
            await response.write(chunk)
        await response.write_eof()
        return response
