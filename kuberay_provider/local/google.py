"""Local doubles of the Google endpoints GKE mode talks to, one aiohttp app on loopback.

* ``POST /token``: the OAuth2 token endpoint of a service-account key (``token_uri`` of the key written by
  :meth:`GoogleDoubles.write_service_account_key`). google-auth itself posts its signed JWT assertion; the double
  verifies the signature with the key's public half and issues an opaque token that expires after
  :attr:`GoogleDoubles.token_lifetime` seconds.
* ``POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken``: IAM Credentials impersonation; records who
  impersonated whom (:attr:`GoogleDoubles.impersonations`).
* ``GET /v1/projects/{project}/locations/{location}/clusters/{cluster}``: the GKE API's GetCluster as the REST
  client calls it; 404 for an unknown cluster, 403 for a principal not in :attr:`GoogleDoubles.cluster_readers`.

:meth:`GoogleDoubles.principal_of` is what the HTTPS API server asks to authenticate a bearer token.
Imports nothing from the product.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


@dataclass
class Cluster:
    """What GetCluster answers for one cluster."""

    endpoint: str  # host:port of the HTTPS API server
    ca_pem: bytes
    private_endpoint: str = ""
    dns_endpoint: str = ""


@dataclass
class Issued:
    principal: str
    expires: float


@dataclass
class GoogleDoubles:
    """Token endpoint, IAM impersonation and GKE GetCluster doubles sharing one token registry."""

    token_lifetime: float = 5.0
    clusters: dict[tuple[str, str, str], Cluster] = field(default_factory=dict)
    #: principals allowed to read clusters (None: everyone)
    cluster_readers: set[str] | None = None
    #: (caller, target) pairs allowed to impersonate (None: everyone)
    impersonators: set[tuple[str, str]] | None = None
    tokens: dict[str, Issued] = field(default_factory=dict)
    issued: list[tuple[str, float]] = field(default_factory=list)  # (principal, time) per token issued
    impersonations: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _keys: dict[str, Any] = field(default_factory=dict)  # client_email -> public key
    _runner: web.AppRunner | None = None

    # ------------------------------------------------------------------------------------------- keys, tokens
    def write_service_account_key(self, path: Path, email: str, project_id: str) -> Path:
        """A service-account key JSON whose ``token_uri`` points at this double (call after :meth:`start`)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys[email] = key.public_key()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        info = {"type": "service_account", "project_id": project_id, "private_key_id": secrets.token_hex(8),
                "private_key": pem, "client_email": email, "client_id": "1", "token_uri": f"{self.url}/token"}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info), encoding="utf-8")
        path.chmod(0o600)
        return path

    def issue(self, principal: str) -> tuple[str, float]:
        """A new token for ``principal`` and its lifetime in seconds."""
        token = "ya29.local-" + secrets.token_urlsafe(24)
        self.tokens[token] = Issued(principal, time.time() + self.token_lifetime)
        self.issued.append((principal, time.time()))
        return token, self.token_lifetime

    def principal_of(self, token: str | None) -> str | None:
        """Who ``token`` belongs to; None when unknown or expired."""
        issued = self.tokens.get(token or "")
        if issued is None or issued.expires <= time.time():
            return None
        return issued.principal

    def revoke_all(self) -> None:
        """Forget every issued token (the next request with one gets 401)."""
        self.tokens.clear()

    def add_cluster(self, project: str, location: str, name: str, cluster: Cluster) -> None:
        self.clusters[(project, location, name)] = cluster

    # ------------------------------------------------------------------------------------------- server
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/-/serviceAccounts/{target}", self._generate_access_token)
        app.router.add_get("/v1/projects/{project}/locations/{location}/clusters/{cluster}", self._get_cluster)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.url = f"http://{host}:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @staticmethod
    def _google_error(code: int, status: str, message: str) -> web.Response:
        return web.json_response({"error": {"code": code, "status": status, "message": message}}, status=code)

    def _caller(self, request: web.Request) -> str | None:
        """The principal of an access token, or of a self-signed service-account JWT (google's clients send one
        to Google APIs that accept them, GKE's included)."""
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token.count(".") == 2:
            claims = self._verified_claims(token, None)
            return claims["iss"] if claims else None
        return self.principal_of(token)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        claims = self._verified_claims(str(form.get("assertion", "")), f"{self.url}/token")
        if claims is None:
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                                     status=400)
        token, lifetime = self.issue(claims["iss"])
        return web.json_response({"access_token": token, "expires_in": int(lifetime) or 1, "token_type": "Bearer"})

    def _verified_claims(self, assertion: str, audience: str | None) -> dict[str, Any] | None:
        """The claims of an unexpired RS256 JWT signed by a key this double wrote, for ``audience`` (None: any);
        None otherwise."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        try:
            header, payload, signature = assertion.split(".")
            claims = json.loads(b64(payload))
            key = self._keys[claims["iss"]]
            key.verify(b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, KeyError, InvalidSignature):
            return None
        # google-auth puts Google's own token URI in ``aud`` whatever the key's token_uri says
        if audience is not None and claims.get("aud") not in (audience, GOOGLE_TOKEN_URI):
            return None
        if float(claims.get("exp", 0)) < time.time():
            return None
        return claims

    async def _generate_access_token(self, request: web.Request) -> web.Response:
        target = request.match_info["target"]
        if not target.endswith(":generateAccessToken"):
            return self._google_error(404, "NOT_FOUND", f"unknown method {target}")
        target = target.removesuffix(":generateAccessToken")
        caller = self._caller(request)
        if caller is None:
            return self._google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if self.impersonators is not None and (caller, target) not in self.impersonators:
            return self._google_error(403, "PERMISSION_DENIED", f"{caller} lacks iam.serviceAccounts."
                                      f"getAccessToken on {target}")
        body = await request.json()
        self.impersonations.append({"caller": caller, "target": target, "delegates": body.get("delegates", []),
                                    "scope": body.get("scope", [])})
        token, lifetime = self.issue(target)
        expire = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
        return web.json_response({"accessToken": token, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")})

    async def _get_cluster(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if caller is None:
            return self._google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        project, location, name = (request.match_info[k] for k in ("project", "location", "cluster"))
        if self.cluster_readers is not None and caller not in self.cluster_readers:
            return self._google_error(403, "PERMISSION_DENIED", f"Required \"container.clusters.get\" permission(s) "
                                      f"for \"projects/{project}/locations/{location}/clusters/{name}\".")
        cluster = self.clusters.get((project, location, name))
        if cluster is None:
            return self._google_error(404, "NOT_FOUND", f"Not found: projects/{project}/locations/{location}/"
                                      f"clusters/{name}.")
        body: dict[str, Any] = {
            "name": name, "location": location, "status": "RUNNING", "endpoint": cluster.endpoint,
            "masterAuth": {"clusterCaCertificate": base64.b64encode(cluster.ca_pem).decode()},
            "privateClusterConfig": {"privateEndpoint": cluster.private_endpoint} if cluster.private_endpoint else {},
        }
        if cluster.dns_endpoint:
            body["controlPlaneEndpointsConfig"] = {"dnsEndpointConfig": {"endpoint": cluster.dns_endpoint}}
        return web.json_response(body)
