"""GKE mode: the cluster's endpoint and CA from the GKE API, a bearer token from Google credentials, refreshed.

* Credentials: the google provider's ``GoogleBaseHook`` when it is installed (it always is on Composer) and no
  IAM endpoint override is set; otherwise google-auth directly, reading the ``gcp_conn_id`` connection's extras the
  way the google provider does (``key_path``, ``keyfile_dict``, ``credential_config_file``, ``scope``), else
  Application Default Credentials. ``impersonation_chain`` goes through ``google.auth.impersonated_credentials``.
* The cluster: google-cloud-container's ``ClusterManagerClient.get_cluster`` (REST transport).
* The token: :class:`TokenSource` refreshes it before expiry; :func:`install_sync` / :func:`install_async` put it
  on every request of a kubernetes / kubernetes_asyncio client (short calls, watches, log follows alike) and answer
  a 401 with one forced refresh and one retry. The token is never logged.

All google imports happen inside functions (the base install stays light; importing this module costs nothing).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kuberay_provider.hooks.conn_mode import GkeTarget

log = logging.getLogger(__name__)
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: Refresh a token this long before it expires (or a quarter of its lifetime, if that is shorter).
REFRESH_MARGIN = dt.timedelta(minutes=3)


class GkeConnectionError(RuntimeError):
    """Reaching a GKE cluster failed; the message names the step and the connection field to look at."""

    def __init__(self, step: str, field_name: str, value: Any, message: str) -> None:
        self.step, self.field, self.value = step, field_name, value
        super().__init__(f"{step} failed ({field_name}={value!r}): {message}")


# ------------------------------------------------------------------------------------------------ credentials
def _gcp_connection_extras(gcp_conn_id: str) -> dict[str, Any] | None:
    """The extras of the ``gcp_conn_id`` connection, or None when no such connection exists."""
    from kuberay_provider.compat import BaseHook

    try:
        conn = BaseHook.get_connection(gcp_conn_id)
    except Exception as exc:  # AirflowNotFoundException: use ADC
        if type(exc).__name__ not in ("AirflowNotFoundException", "ConnectionNotFound"):
            raise
        return None
    return dict(conn.extra_dejson or {})


def _google_field(extras: Mapping[str, Any], name: str) -> Any:
    for key in (name, f"extra__google_cloud_platform__{name}"):
        if extras.get(key) not in (None, ""):
            return extras[key]
    return None


def credentials_from_extras(extras: Mapping[str, Any] | None, gcp_conn_id: str) -> tuple[Any, str | None]:
    """google-auth credentials (+ project) from a google connection's extras, as the google provider reads them;
    Application Default Credentials when ``extras`` is None or names no key."""
    import google.auth
    from google.oauth2 import service_account

    extras = extras or {}
    scope = _google_field(extras, "scope")
    scopes = [s.strip() for s in scope.split(",")] if scope else [CLOUD_PLATFORM_SCOPE]
    key_path = _google_field(extras, "key_path")
    keyfile_dict = _google_field(extras, "keyfile_dict")
    config_file = _google_field(extras, "credential_config_file")
    project = _google_field(extras, "project")
    try:
        if key_path:
            creds = service_account.Credentials.from_service_account_file(key_path, scopes=scopes)
            return creds, project or creds.project_id
        if keyfile_dict:
            info = json.loads(keyfile_dict) if isinstance(keyfile_dict, str) else dict(keyfile_dict)
            creds = service_account.Credentials.from_service_account_info(info, scopes=scopes)
            return creds, project or creds.project_id
        if config_file:
            creds, found = google.auth.load_credentials_from_file(config_file, scopes=scopes)
            return creds, project or found
        creds, found = google.auth.default(scopes=scopes)
        return creds, project or found
    except Exception as exc:
        raise GkeConnectionError("Google credentials", "gcp_conn_id", gcp_conn_id,
                                 f"{type(exc).__name__}: {exc}") from exc


def impersonate(source: Any, chain: tuple[str, ...], iam_endpoint: str | None) -> Any:
    """``source`` acting as the last account of ``chain`` (the others are delegates)."""
    from google.auth import impersonated_credentials

    kwargs: dict[str, Any] = {}
    if iam_endpoint:
        kwargs["iam_endpoint_override"] = (f"{iam_endpoint}/v1/projects/-/serviceAccounts/{chain[-1]}"
                                           ":generateAccessToken")
    return impersonated_credentials.Credentials(source_credentials=source, target_principal=chain[-1],
                                                delegates=list(chain[:-1]), target_scopes=[CLOUD_PLATFORM_SCOPE],
                                                **kwargs)


def google_credentials(target: GkeTarget) -> tuple[Any, str | None]:
    """Credentials (impersonating ``target.impersonation_chain`` if set) and their project."""
    if target.iam_endpoint is None:
        try:
            from airflow.providers.google.common.hooks.base_google import GoogleBaseHook
        except ImportError:
            GoogleBaseHook = None
        if GoogleBaseHook is not None:
            try:
                hook = GoogleBaseHook(gcp_conn_id=target.gcp_conn_id,
                                      impersonation_chain=list(target.impersonation_chain) or None)
                return hook.get_credentials_and_project_id()
            except Exception as exc:
                raise GkeConnectionError("Google credentials", "gcp_conn_id", target.gcp_conn_id,
                                         f"{type(exc).__name__}: {exc}") from exc
    creds, project = credentials_from_extras(_gcp_connection_extras(target.gcp_conn_id), target.gcp_conn_id)
    if target.impersonation_chain:
        creds = impersonate(creds, target.impersonation_chain, target.iam_endpoint)
    return creds, project


# ------------------------------------------------------------------------------------------------ token
class TokenSource:
    """A bearer token from google-auth credentials, refreshed before it expires and on demand (thread-safe).

    ``refreshes`` counts the refreshes (tests and the closing note report it); the token is never logged.
    """

    def __init__(self, credentials: Any, *, step: str = "Google credentials", field_name: str = "gcp_conn_id",
                 field_value: Any = None) -> None:
        self.credentials = credentials
        self.refreshes = 0
        self.forced = 0
        self._lock = threading.Lock()
        self._lifetime: dt.timedelta | None = None
        self._error = (step, field_name, field_value)

    def _stale(self) -> bool:
        creds = self.credentials
        if not creds.token:
            return True
        expiry = creds.expiry  # naive UTC in google-auth
        if expiry is None:
            return False
        margin = REFRESH_MARGIN if self._lifetime is None else min(REFRESH_MARGIN, self._lifetime / 4)
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) >= expiry - margin

    def needs_refresh(self) -> bool:
        """Whether :meth:`token` would refresh now."""
        return self._stale()

    def token(self, force: bool = False, stale: str | None = None) -> str:
        """A valid token; ``force`` refreshes unless another caller already replaced ``stale``."""
        with self._lock:
            if force and stale is not None and self.credentials.token != stale:
                return self.credentials.token
            if force or self._stale():
                self._refresh(force)
            return self.credentials.token

    def _refresh(self, forced: bool) -> None:
        import google.auth.transport.requests

        try:
            self.credentials.refresh(google.auth.transport.requests.Request())
        except Exception as exc:
            step, name, value = self._error
            raise GkeConnectionError(step, name, value, f"token refresh: {type(exc).__name__}: {exc}") from exc
        self.refreshes += 1
        self.forced += int(forced)
        expiry = self.credentials.expiry
        if expiry is not None:
            self._lifetime = expiry - dt.datetime.now(dt.UTC).replace(tzinfo=None)
        _mask(self.credentials.token)
        log.debug("Google access token refreshed (%d so far, %d after a 401)", self.refreshes, self.forced)


def _mask(token: str | None) -> None:
    if not token:
        return
    try:
        from kuberay_provider.compat import mask_secret

        mask_secret(token)
    except Exception:  # masking is best effort outside Airflow
        pass


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def token_refused(status: int | None) -> bool:
    """The one rule of both clients: a 401 means the API server refused the token (expired, revoked, clock
    skew), answered by one forced refresh (:meth:`TokenSource.token` with ``force`` and the refused token, so
    concurrent callers refresh once) and one retry; any other status is the caller's to handle."""
    return status == 401


def install_sync(api_client: Any, source: TokenSource) -> Any:
    """Authorize every request of a ``kubernetes`` ApiClient with ``source``'s token; one refresh + retry on 401."""
    from kubernetes.client.exceptions import ApiException

    rest = api_client.rest_client
    request = rest.request

    def authorized(method: str, url: str, query_params: Any = None, headers: Any = None, *args: Any,
                   **kwargs: Any) -> Any:
        token = source.token()
        try:
            return request(method, url, query_params, {**(headers or {}), "Authorization": _bearer(token)},
                           *args, **kwargs)
        except ApiException as exc:
            if not token_refused(exc.status):
                raise
        token = source.token(force=True, stale=token)
        return request(method, url, query_params, {**(headers or {}), "Authorization": _bearer(token)},
                       *args, **kwargs)

    rest.request = authorized
    return api_client


def install_async(api_client: Any, source: TokenSource) -> Any:
    """:func:`install_sync` for a ``kubernetes_asyncio`` ApiClient (refreshes run off the loop)."""
    from kubernetes_asyncio.client.exceptions import ApiException

    rest = api_client.rest_client
    request = rest.request

    async def token(force: bool = False, stale: str | None = None) -> str:
        if force or source.needs_refresh():
            return await asyncio.to_thread(source.token, force, stale)
        return source.token()

    async def authorized(method: str, url: str, query_params: Any = None, headers: Any = None, *args: Any,
                         **kwargs: Any) -> Any:
        current = await token()
        try:
            response = await request(method, url, query_params,
                                     {**(headers or {}), "Authorization": _bearer(current)}, *args, **kwargs)
        except ApiException as exc:
            if not token_refused(exc.status):
                raise
        else:
            if not token_refused(getattr(response, "status", None)):
                return response
            response.release()  # a raw (``_preload_content=False``) 401
        current = await token(force=True, stale=current)
        return await request(method, url, query_params, {**(headers or {}), "Authorization": _bearer(current)},
                             *args, **kwargs)

    rest.request = authorized
    return api_client


# ------------------------------------------------------------------------------------------------ cluster
@dataclass(frozen=True)
class GkeEndpoint:
    """Where the cluster's API server answers and the CA that signs its certificate (None: public roots)."""

    host: str  # https://...
    ca_pem: bytes | None

    def ca_file(self) -> str | None:
        """The CA written to a private temp file (the kubernetes clients take a path)."""
        if self.ca_pem is None:
            return None
        with tempfile.NamedTemporaryFile("wb", prefix="kuberay-gke-ca-", suffix=".pem", delete=False) as handle:
            handle.write(self.ca_pem)
        return handle.name


def fetch_endpoint(target: GkeTarget, credentials: Any, project_id: str | None) -> GkeEndpoint:
    """Read the cluster from the GKE API (``GetCluster``) and pick its endpoint and CA."""
    from google.api_core import exceptions as gexc
    from google.cloud import container_v1

    if not project_id:
        raise GkeConnectionError("GKE API", "project_id", None, "no project: set the connection's project_id or use "
                                 "credentials that carry one")
    options = {"api_endpoint": target.gke_api_endpoint} if target.gke_api_endpoint else None
    client = container_v1.ClusterManagerClient(credentials=credentials, transport="rest", client_options=options)
    path = target.cluster_path(project_id)
    try:
        cluster = client.get_cluster(name=path, timeout=30)
    except gexc.NotFound as exc:
        raise GkeConnectionError("GKE API", "cluster_name", target.cluster_name,
                                 f"no cluster {path} (404: {exc.message})") from exc
    except (gexc.PermissionDenied, gexc.Forbidden) as exc:
        raise GkeConnectionError("GKE API", "gcp_conn_id", target.gcp_conn_id,
                                 f"the credentials may not read {path} (403: {exc.message}); grant "
                                 "container.clusters.get (e.g. roles/container.clusterViewer)") from exc
    except gexc.GoogleAPICallError as exc:
        raise GkeConnectionError("GKE API", "cluster_name", target.cluster_name, f"{exc}") from exc
    finally:
        client.transport.close()
    return endpoint_of(cluster, target)


def endpoint_of(cluster: Any, target: GkeTarget) -> GkeEndpoint:
    """The endpoint the connection asks for (public, private IP or DNS) from a ``container_v1.Cluster``."""
    if target.use_dns_endpoint:
        dns = cluster.control_plane_endpoints_config.dns_endpoint_config.endpoint
        if not dns:
            raise GkeConnectionError("GKE API", "use_dns_endpoint", True, f"cluster {target.cluster_name} has no "
                                     "DNS-based endpoint enabled")
        return GkeEndpoint(f"https://{dns}", None)  # public roots
    address = cluster.private_cluster_config.private_endpoint if target.use_internal_ip else cluster.endpoint
    if not address:
        name = "use_internal_ip" if target.use_internal_ip else "cluster_name"
        raise GkeConnectionError("GKE API", name, target.use_internal_ip or target.cluster_name,
                                 "the cluster reports no " + ("private" if target.use_internal_ip else "") + " endpoint")
    ca = cluster.master_auth.cluster_ca_certificate
    if not ca:
        raise GkeConnectionError("GKE API", "cluster_name", target.cluster_name, "the cluster reports no CA")
    return GkeEndpoint(f"https://{address}", base64.b64decode(ca))


@dataclass
class GkeAccess:
    """Everything a client needs: endpoint, CA file and the token source."""

    endpoint: GkeEndpoint
    ca_file: str | None
    tokens: TokenSource


def connect(target: GkeTarget) -> GkeAccess:
    """Credentials → first token → GetCluster (blocking; run it off an event loop)."""
    creds, project = google_credentials(target)
    step = "Impersonation" if target.impersonation_chain else "Google credentials"
    name, value = ("impersonation_chain", ",".join(target.impersonation_chain)) if target.impersonation_chain \
        else ("gcp_conn_id", target.gcp_conn_id)
    tokens = TokenSource(creds, step=step, field_name=name, field_value=value)
    tokens.token()  # fail here, naming the credentials, rather than inside the GKE API call
    endpoint = fetch_endpoint(target, creds, target.project_id or project)
    return GkeAccess(endpoint, endpoint.ca_file(), tokens)


def sync_api_client(access: GkeAccess, user_agent: str) -> Any:
    """A ``kubernetes`` ApiClient for the cluster, TLS pinned to its CA, every request authorized."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = access.endpoint.host
    configuration.ssl_ca_cert = access.ca_file
    configuration.verify_ssl = True
    api = client.ApiClient(configuration)
    api.user_agent = user_agent
    return install_sync(api, access.tokens)


def async_configuration(access: GkeAccess) -> Any:
    """A ``kubernetes_asyncio`` Configuration for the cluster (pair it with :func:`install_async`)."""
    from kubernetes_asyncio.client import Configuration

    configuration = Configuration()
    configuration.host = access.endpoint.host
    configuration.ssl_ca_cert = access.ca_file
    configuration.verify_ssl = True
    return configuration
