""""Test connection" for the ``kuberay`` connection: each step in order, the first failure named.

Steps: the connection's settings (mode), Google credentials and the GKE API (GKE mode), the cluster endpoint
(TLS + authentication), ``ray.io/v1`` RayJobs served, and RBAC: one ``SelfSubjectAccessReview`` per verb the
provider uses (:data:`PROVIDER_VERBS`, the same rules as the ``airflow-kuberay`` Role in ``deploy/rbac.yaml``).
"""

from __future__ import annotations

from typing import Any

from kuberay_provider import constants as c

#: (API group, resource, subresource, verb) the provider's tasks use; ``deploy/rbac.yaml`` grants exactly these.
PROVIDER_VERBS: tuple[tuple[str, str, str, str], ...] = (
    *((c.RAY_GROUP, c.RAYJOB_PLURAL, "", verb) for verb in ("create", "get", "list", "watch", "delete")),
    *((c.RAY_GROUP, c.RAYCLUSTER_PLURAL, "", verb) for verb in ("create", "get", "list", "watch", "delete")),
    ("", "pods", "", "list"),
    ("", "pods", "", "watch"),
    ("", "pods", "log", "get"),
    ("", "events", "", "list"),
    ("batch", "jobs", "", "get"),
)


def describe_verb(group: str, resource: str, subresource: str, verb: str) -> str:
    """``create ray.io/rayjobs`` / ``get pods/log``."""
    name = f"{resource}/{subresource}" if subresource else resource
    return f"{verb} {group}/{name}" if group else f"{verb} {name}"


def denied_verbs(api_client: Any, namespace: str) -> list[str]:
    """The provider's verbs a SelfSubjectAccessReview says the connection's identity may not use in ``namespace``."""
    from kubernetes import client

    api = client.AuthorizationV1Api(api_client)
    denied = []
    for group, resource, subresource, verb in PROVIDER_VERBS:
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, group=group,
                                                            resource=resource, subresource=subresource or None)))
        result = api.create_self_subject_access_review(review)
        if not (result.status and result.status.allowed):
            denied.append(describe_verb(group, resource, subresource, verb))
    return denied


def test_connection(hook: Any) -> tuple[bool, str]:
    """Run the steps with ``hook`` (a :class:`~kuberay_provider.hooks.kuberay.KubeRayHook`)."""
    from kuberay_provider.errors import InvalidParameterError
    from kuberay_provider.hooks.gke import GkeConnectionError

    try:
        mode = hook.connection_mode
    except InvalidParameterError as exc:
        return False, f"Connection settings: {exc}"
    where = "kubeconfig"
    try:
        if mode.is_gke:
            access = hook.gke_access
            where = access.endpoint.host
        api_client = hook.api_client
        where = getattr(api_client.configuration, "host", where)
    except GkeConnectionError as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"Cluster configuration ({where}): {type(exc).__name__}: {exc}"
    from kubernetes import client

    try:
        version = client.VersionApi(api_client).get_code()
    except Exception as exc:
        hint = ("check the CA (GKE: masterAuth.clusterCaCertificate), use_internal_ip / use_dns_endpoint, and the "
                "credentials" if mode.is_gke else "check the kubeconfig's server, CA and credentials")
        return False, f"Cluster endpoint {where}: {type(exc).__name__}: {_short(exc)} ({hint})"
    try:
        resources = client.CustomObjectsApi(api_client).get_api_resources(c.RAY_GROUP, c.RAY_VERSION)
        names = {r.name for r in resources.resources}
    except Exception as exc:
        return False, f"Kubernetes {version.git_version} at {where} does not serve {c.RAY_API_VERSION}: {_short(exc)}"
    if c.RAYJOB_PLURAL not in names:
        return False, f"Kubernetes {version.git_version} answers but does not serve {c.RAY_API_VERSION} rayjobs"
    namespace = hook.resolve_namespace(None)
    try:
        denied = denied_verbs(api_client, namespace)
    except Exception as exc:
        return False, f"RBAC: SelfSubjectAccessReview failed in namespace {namespace}: {_short(exc)}"
    if denied:
        return False, f"RBAC: namespace {namespace!r} denies {', '.join(denied)} (see deploy/rbac.yaml)"
    return True, (f"Connected to Kubernetes {version.git_version} at {where}; {c.RAY_API_VERSION} RayJobs are served; "
                  f"all {len(PROVIDER_VERBS)} verbs the provider uses are allowed in namespace {namespace!r}")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
