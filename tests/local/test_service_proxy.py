"""The local API server's service proxy behaves like a real one: 404 for an unknown Service or port, 503 without a
ready endpoint, and otherwise the endpoint's answer, with the endpoint's own headers instead of the caller's
credentials. (That the stored "Ray Dashboard" link opens a running job's real dashboard through it is checked end to
end in tests/integration/test_rayjob_lifecycle.py.)"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client, config

from kuberay_provider.local import service_proxy
from kuberay_provider.local.stack import LocalStack


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _open(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _head_service(namespace: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": "None", "selector": {"ray.io/cluster": "rc-1", "ray.io/node-type": "head"},
                     "ports": [{"name": "dashboard", "port": 8265}, {"name": "client", "port": 10001}]}}


def test_the_proxy_answers_like_a_real_api_server(local_stack: LocalStack, namespace: str, endpoint: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(local_stack.kubeconfig_path)))
    core.create_namespaced_service(namespace, _head_service(namespace, "rc-1-head-svc"))
    base = f"{local_stack.api_url}/api/v1/namespaces/{namespace}/services"
    asked: list[tuple[str, str]] = []

    def resolve(ns: str, service: dict, port: str) -> tuple[str, dict[str, str]] | None:
        asked.append((ns, port))
        return (endpoint, {"Authorization": "Bearer endpoint-token"}) if port == "dashboard" else None

    monkeypatch.setattr(local_stack.server, "resolve_service", resolve)
    status, body = _open(f"{base}/nope-head-svc:dashboard/proxy/")
    assert status == 404 and body["reason"] == "NotFound"
    status, body = _open(f"{base}/rc-1-head-svc:metrics/proxy/")
    assert status == 404 and "metrics" in body["message"]
    status, body = _open(f"{base}/rc-1-head-svc:client/proxy/")  # the resolver has no endpoint for it
    assert status == 503 and body["message"] == 'no endpoints available for service "rc-1-head-svc"'
    status, body = _open(f"{base}/http:rc-1-head-svc:8265/proxy/api/version?x=1",
                         headers={"Authorization": "Bearer the-users-kube-token"})
    assert status == 200 and body["path"] == "/api/version?x=1"
    assert body["headers"]["Authorization"] == "Bearer endpoint-token"  # never the caller's credentials
    assert asked[-1] == (namespace, "dashboard")


def test_proxy_paths_parse_as_kubernetes_spells_them() -> None:
    parse = service_proxy.parse
    assert parse("/api/v1/namespaces/ml/services/rc-head-svc:dashboard/proxy/") == \
        service_proxy.ProxyTarget("ml", "rc-head-svc", "dashboard", "/")
    assert parse("/api/v1/namespaces/ml/services/https:rc-head-svc:8265/proxy") == \
        service_proxy.ProxyTarget("ml", "rc-head-svc", "8265", "/")
    assert parse("/api/v1/namespaces/ml/services/rc-head-svc/proxy/#/jobs") == \
        service_proxy.ProxyTarget("ml", "rc-head-svc", "", "/#/jobs")
    assert parse("/api/v1/namespaces/ml/services/rc-head-svc") is None
    assert parse("/api/v1/namespaces/ml/pods/p/proxy/") is None
