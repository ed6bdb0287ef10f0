"""What of the local stack can be reached from other machines, and that it never hands user input to a shell.

* The emulated Kubernetes API binds 127.0.0.1 (fast: a bare API server, no controller, no Ray).
* Ray's own servers cannot be bound to loopback (Ray 2.60 listens on every interface), so each local cluster runs
  with Ray token authentication: reached from a non-loopback address without the token, they refuse (slow, one
  real local Ray cluster).
* No module of ``kuberay_provider/local`` runs a shell: no ``shell=True``, ``os.system``/``os.popen``,
  ``create_subprocess_shell`` or ``bash -c`` argv (static, from the source's syntax tree).
"""

from __future__ import annotations

import ast
import asyncio
import ipaddress
import json
import socket
from pathlib import Path

import psutil
import pytest

LOCAL = Path(__file__).resolve().parents[2] / "kuberay_provider" / "local"
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash", "zsh", "dash"}
#: Known argv lists that mention a shell, and why they are harmless. Anything new fails the test.
DISPLAY_ONLY = {("rayjobs.py", "_create_submitter"): "the submitter Job's command, as KubeRay writes it; the local "
                "stack never executes container commands (submitter.py submits through JobSubmissionClient)"}


def _listening(pid: int) -> list[tuple[str, int]]:
    return sorted({(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
                   if c.status == psutil.CONN_LISTEN})


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (to try reaching the server from "outside")."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not ipaddress.ip_address(address.address).is_loopback:
                return address.address
    return None


def test_api_server_binds_loopback_only() -> None:
    from kuberay_provider.local.apiserver import KubeAPIServer

    async def scenario() -> tuple[str, list[tuple[str, int]], bool | None]:
        server = KubeAPIServer()
        url = await server.start()  # what LocalStack does: the default host
        try:
            port = int(url.rsplit(":", 1)[1])
            sockets = [(ip, p) for ip, p in _listening(psutil.Process().pid) if p == port]
            other = _non_loopback_address()
            reachable = None
            if other is not None:
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(other, port), timeout=2)
                    writer.close()
                    reachable = True
                except (TimeoutError, OSError):
                    reachable = False
            return url, sockets, reachable
        finally:
            await server.stop()

    url, sockets, reachable = asyncio.run(scenario())
    assert url.startswith("http://127.0.0.1:")
    assert sockets and all(ipaddress.ip_address(ip).is_loopback for ip, _ in sockets), sockets
    assert reachable is not True, "the API server answers on a non-loopback address"


def _shell_sites(path: Path) -> list[tuple[str, str, int, str]]:
    """(file, enclosing function, line, what) for every way ``path`` could run a shell."""
    tree = ast.parse(path.read_text(), filename=str(path))
    sites: list[tuple[str, str, int, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Call):
                target = ast.unparse(child.func)
                if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                       for k in child.keywords):
                    sites.append((path.name, name, child.lineno, f"{target}(shell=...)"))
                if target.split(".")[-1] in {"system", "popen", "create_subprocess_shell", "getoutput",
                                             "getstatusoutput", "spawnl", "spawnlp", "execl", "execlp"}:
                    sites.append((path.name, name, child.lineno, target))
            if isinstance(child, ast.List) and child.elts:
                first = child.elts[0]
                if isinstance(first, ast.Constant) and first.value in SHELLS:
                    sites.append((path.name, name, child.lineno, f"argv {ast.unparse(child)[:60]}"))
            visit(child, name)

    visit(tree, "<module>")
    return sites


def test_the_checker_finds_shell_use(tmp_path: Path) -> None:
    """The static check is not vacuous."""
    sample = tmp_path / "sample.py"
    sample.write_text("import os, subprocess\n\ndef f(x):\n    subprocess.run(x, shell=True)\n    os.system(x)\n"
                      "    subprocess.Popen(['/bin/bash', '-c', x])\n    subprocess.run(['ls', x], shell=False)\n")
    assert [(s[1], s[3].split("(")[0]) for s in _shell_sites(sample)] == [
        ("f", "subprocess.run"), ("f", "os.system"), ("f", "argv ['/bin/bash', '-c', x]")]


def test_local_stack_never_runs_a_shell() -> None:
    sites = [s for path in sorted(LOCAL.glob("*.py")) for s in _shell_sites(path)]
    unexpected = [s for s in sites if (s[0], s[1]) not in DISPLAY_ONLY]
    assert unexpected == [], unexpected
    assert {(s[0], s[1]) for s in sites} <= set(DISPLAY_ONLY)


@pytest.mark.slow
def test_ray_processes_reachable_from_the_network_refuse_unauthenticated_clients(local_stack, namespace) -> None:
    """A real RayCluster on the local stack. Ray 2.60 binds its gRPC servers (GCS, raylet, agents) to every
    interface whatever ``--node-ip-address`` says, so each local cluster runs with Ray token authentication and a
    token of its own: from a non-loopback address, without the token, neither the job API (HTTP) nor the GCS
    (what ``ray.init`` talks to) serves anything. The controller, holding the token, still can."""
    import urllib.error
    import urllib.request

    from kuberay_provider import constants as c
    from kuberay_provider.hooks.kuberay import KubeRayHook
    from kuberay_provider.local import jobapi
    from kuberay_provider.operators.raycluster import RayClusterCreateOperator
    from tests.integration.airflow_support import wait_until

    hook = KubeRayHook(config_file=str(local_stack.kubeconfig_path))
    body = RayClusterCreateOperator(task_id="x", name="exposure", namespace=namespace,
                                    head={"cpu": 1, "memory": "1Gi"}).build_manifest()
    hook.create_object(c.RAYCLUSTER_KIND, body, namespace)
    try:
        wait_until(lambda: ((hook.get_object(c.RAYCLUSTER_KIND, "exposure", namespace) or {}).get("status") or {})
                   .get("state") == "ready", timeout=180)
        cluster = local_stack.controller.runtime.get((namespace, "exposure"))
        assert cluster is not None
        family = {p for pid in cluster.pids() for p in [pid, *(ch.pid for ch in psutil.Process(pid).children(recursive=True))]}
        assert all(psutil.Process(pid).environ().get("RAY_AUTH_MODE") == "token" for pid in [cluster.head.pid])
        wide: set[tuple[str, int]] = set()
        for pid in sorted(family):
            try:
                wide |= {(ip, port) for ip, port in _listening(pid) if not ipaddress.ip_address(ip).is_loopback}
            except psutil.NoSuchProcess:
                continue
        outside = _non_loopback_address()
        if outside is None:
            pytest.skip("this machine has no non-loopback address to try from")
        # The job API over the network: not reachable (bound to loopback), or 401 without the token.
        with pytest.raises(urllib.error.URLError) as refused:
            urllib.request.urlopen(f"http://{outside}:{cluster.dashboard_port}/api/jobs/", timeout=5)
        assert getattr(refused.value, "code", 401) == 401, refused.value
        # The GCS, as a Ray driver would reach it from another machine, without the token: refused.
        probe = (
            "import ray, sys\n"
            "try:\n"
            f"    ray.init(address='{outside}:{cluster.gcs_port}', log_to_driver=False)\n"
            "except Exception as exc:\n"
            "    print('REFUSED', type(exc).__name__, str(exc)[:200]); sys.exit(3)\n"
            "print('CONNECTED', ray.cluster_resources())\n"
        )
        import os
        import subprocess
        import sys

        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        env.update(RAY_AUTH_MODE="disabled", HOME=str(local_stack.base_dir))  # an outsider: no token anywhere
        result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 3 and "REFUSED" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
        # What is exposed is listed for the record; the controller with the token is served.
        print("non-loopback listeners (token-protected):", json.dumps(sorted(wide)))
        assert jobapi.job_info(cluster.dashboard, "no-such-job") is None
    finally:
        hook.delete_object(c.RAYCLUSTER_KIND, "exposure", namespace)
        wait_until(lambda: local_stack.controller.running_clusters() == {} and local_stack.leftover_ray_pids() == [],
                   timeout=120)
