"""GKE mode against the local doubles over real TLS with tokens that expire every 2 s: the official sync and
async clients, the watch (sync, and the trigger's shared informer), the log stream, Test connection, impersonation
and the GKE API's errors. No Ray: the RayJob's status is driven by hand on the API server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("google.cloud.container_v1", reason="the google extra (google-cloud-container) is not installed")

from kuberay_provider.hooks.gke import GkeConnectionError
from kuberay_provider.local.google import Cluster
from kuberay_provider.local.tls import make_ca
from tests.gke.conftest import CLUSTER, LOCATION, PRINCIPAL, PROJECT, TOKEN_LIFETIME


def _hook(conn_id: str = "kuberay_gke"):
    from kuberay_provider.hooks.kuberay import KubeRayHook

    return KubeRayHook(conn_id=conn_id)


def _rayjob(name: str, status: dict | None = None) -> dict:
    obj = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": name, "namespace": "ns"},
           "spec": {"entrypoint": "python x.py"}}
    if status is not None:
        obj["status"] = status
    return obj


def test_sync_client_refreshes_before_expiry_and_once_after_a_401(gke):
    hook = _hook()
    assert hook.list_rayjobs("ns") == []
    tokens = hook.gke_access.tokens
    time.sleep(TOKEN_LIFETIME + 0.5)
    assert hook.list_rayjobs("ns") == []
    assert tokens.refreshes == 2 and tokens.forced == 0 and gke.server.unauthorized == 0  # refreshed in time
    gke.google.revoke_all()  # the server forgets every token: the next request gets 401
    assert hook.list_rayjobs("ns") == []
    assert tokens.forced == 1 and gke.server.unauthorized == 1
    # the API server saw the Google identity, over HTTPS
    assert gke.google.issued[-1][0] == PRINCIPAL
    assert hook.api_client.configuration.host.startswith("https://127.0.0.1:")


def _refuse_next_request(gke) -> None:
    """The API server refuses the next request's token once (as after a revocation or clock skew)."""
    accept, pending = gke.google.principal_of, [True]

    def authenticate(token):
        if pending:
            pending.pop()
            return None
        return accept(token)

    gke.server.authenticate = authenticate


def test_sync_watch_resumes_after_a_401_and_the_wait_finishes(gke):
    gke.commit("ADDED", _rayjob("job-a", {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}))
    hook = _hook()
    result: dict = {}
    waiting = threading.Thread(target=lambda: result.setdefault("status", hook.wait_for_rayjob("job-a", "ns",
                                                                                             timeout=120)))
    waiting.start()
    time.sleep(1.0)
    _refuse_next_request(gke)
    gke.run(gke.server._drop_watches)  # the watch reconnects and is refused once: 401
    time.sleep(TOKEN_LIFETIME * 2)  # a further expiry while the wait goes on
    gke.commit("MODIFIED", _rayjob("job-a", {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}))
    waiting.join(60)
    assert result["status"].is_success
    assert gke.server.unauthorized >= 1 and hook.gke_access.tokens.forced >= 1


def test_async_watch_and_log_follow_through_the_shared_informer_survive_401s(gke):
    from kuberay_provider.hooks.kuberay import AsyncKubeRayHook
    from kuberay_provider.hooks.watching import RayJobWaiter

    gke.commit("ADDED", _rayjob("job-b", {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}))

    async def scenario():
        hook = AsyncKubeRayHook(conn_id="kuberay_gke")
        seen = []

        async def finish_later():
            await asyncio.sleep(1.0)
            before = gke.server.unauthorized
            _refuse_next_request(gke)
            gke.run(gke.server._drop_watches)  # the watch reconnects and is refused once: 401
            await asyncio.sleep(TOKEN_LIFETIME * 2)
            assert gke.server.unauthorized == before + 1
            gke.commit("MODIFIED", _rayjob("job-b", {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}))

        async with hook.shared_client() as shared:
            before = gke.server.unauthorized
            await hook.list_objects("RayJob", "ns")
            gke.google.revoke_all()
            await hook.list_objects("RayJob", "ns")  # a short request answered 401 once, then retried
            assert gke.server.unauthorized == before + 1
            finisher = asyncio.create_task(finish_later())
            async for status in hook.watch_object(RayJobWaiter("job-b", "ns", timeout=60)):
                seen.append(status)
            await finisher
            rayjobs = await hook.list_objects("RayJob", "ns")
            tokens = shared.api.configuration.host
        return seen, rayjobs, tokens

    seen, rayjobs, host = asyncio.run(scenario())
    assert host.startswith("https:"), host
    assert seen[-1].is_success and [j["metadata"]["name"] for j in rayjobs] == ["job-b"]
    assert gke.server.unauthorized >= 1


def test_follow_pod_log_is_authorized(gke, tmp_path: Path):
    from kuberay_provider.local.resources import BY_PATH

    log_file = tmp_path / "driver.log"
    log_file.write_text("line 1\nline 2\n")
    pods = BY_PATH[("", "v1", "pods")]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
           "spec": {"containers": [{"name": "c", "image": "x"}]},
           "status": {"phase": "Succeeded", "containerStatuses": [
               {"name": "c", "state": {"terminated": {"exitCode": 0}}}]}}
    gke.run(lambda: gke.server.store.commit(pods.storage_key, "ADDED", pod))
    gke.server.register_log("ns", "p", "c", log_file)
    hook = _hook()
    assert hook.list_pods("ns", "") != []
    time.sleep(TOKEN_LIFETIME + 0.2)
    gke.google.revoke_all()
    assert list(hook.follow_pod_log("p", "ns", "c")) == ["line 1", "line 2"]
    assert hook.gke_access.tokens.refreshes >= 2


def test_wrong_ca_is_refused(gke, monkeypatch):
    other = make_ca("some other CA")
    endpoint = gke.google.clusters[(PROJECT, LOCATION, CLUSTER)].endpoint
    gke.google.add_cluster(PROJECT, LOCATION, "wrong-ca", Cluster(endpoint, other.ca_pem))
    monkeypatch.setenv("AIRFLOW_CONN_KUBERAY_WRONG", gke.connection(cluster_name="wrong-ca"))
    ok, message = _hook("kuberay_wrong").test_connection()
    assert not ok
    assert message.startswith("Cluster endpoint https://127.0.0.1:") and "CERTIFICATE_VERIFY_FAILED" in message
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        _hook("kuberay_wrong").list_rayjobs("ns")


def test_gke_api_404_and_403_name_the_field(gke, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KUBERAY_404", gke.connection(cluster_name="nope"))
    ok, message = _hook("kuberay_404").test_connection()
    assert not ok and "GKE API failed (cluster_name='nope')" in message and "404" in message
    gke.google.cluster_readers = {"someone-else@x.iam.gserviceaccount.com"}
    with pytest.raises(GkeConnectionError) as info:
        _hook().list_rayjobs("ns")
    assert info.value.field == "gcp_conn_id" and "403" in str(info.value)
    assert "container.clusters.get" in str(info.value)


def test_impersonation_is_used_when_set(gke, monkeypatch):
    target = f"ray-runner@{PROJECT}.iam.gserviceaccount.com"
    delegate = f"hop@{PROJECT}.iam.gserviceaccount.com"
    monkeypatch.setenv("AIRFLOW_CONN_KUBERAY_IMP", gke.connection(impersonation_chain=f"{delegate},{target}"))
    seen: list[str] = []
    gke.server.authorize = lambda principal, attrs: seen.append(principal) or True
    ok, message = _hook("kuberay_imp").test_connection()
    assert ok, message
    assert gke.google.impersonations[0]["caller"] == PRINCIPAL
    assert gke.google.impersonations[0]["target"] == target
    assert gke.google.impersonations[0]["delegates"] == [delegate]
    assert set(seen) == {target}  # the API server authenticated the impersonated account
    gke.google.impersonators = set()  # nobody may impersonate any more
    monkeypatch.setenv("AIRFLOW_CONN_KUBERAY_IMP2", gke.connection(impersonation_chain=target))
    ok, message = _hook("kuberay_imp2").test_connection()
    assert not ok and "Impersonation failed" in message and target in message


def test_test_connection_reports_each_denied_verb(gke):
    from kuberay_provider.hooks.access_check import PROVIDER_VERBS

    reviews: list[dict] = []

    def authorize(principal, attrs):
        reviews.append(attrs)
        return not (attrs.get("verb") == "delete" or attrs.get("subresource") == "log")

    gke.server.authorize = authorize
    ok, message = _hook().test_connection()
    assert not ok
    assert message == ("RBAC: namespace 'ns' denies delete ray.io/rayjobs, delete ray.io/rayclusters, get pods/log "
                       "(see deploy/rbac.yaml)")
    assert len(reviews) == len(PROVIDER_VERBS) and all(r["namespace"] == "ns" for r in reviews)
    gke.server.authorize = None
    ok, message = _hook().test_connection()
    assert ok and f"all {len(PROVIDER_VERBS)} verbs" in message


def test_bad_credentials_and_settings_are_named(gke, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_KUBERAY_BAD", gke.connection(location=None))
    ok, message = _hook("kuberay_bad").test_connection()
    assert not ok and message.startswith("Connection settings: Invalid location=None")
    missing = tmp_path / "missing.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    ok, message = _hook().test_connection()
    assert not ok and message.startswith("Google credentials failed (gcp_conn_id='google_cloud_default')")


def test_the_token_is_never_logged(gke, caplog):
    caplog.set_level(logging.DEBUG)
    hook = _hook()
    hook.list_rayjobs("ns")
    time.sleep(TOKEN_LIFETIME + 0.2)
    hook.list_rayjobs("ns")
    tokens = list(gke.google.tokens)
    assert tokens and not any(token in caplog.text for token in tokens)
    assert "Google access token refreshed" in caplog.text
