"""The one rule for "which namespace": the task's ``namespace`` parameter, else the connection's, else ``default``.

Every operator, sensor, the pipeline's Spark step and the janitor resolve their namespace here, in ``execute``
(the connection is read at run time, never at DAG-parse time), so a connection whose extra names a namespace
(``{"namespace": "ml"}`` on a cncf ``kubernetes`` connection) is honoured everywhere the same way. The resolved
namespace then travels with the work: in the operator's XCom, in every trigger and trigger event, and into the
cleanup after a deferral, so a resumed task deletes where it created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kuberay_provider import constants as c
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.naming import validate_namespace

if TYPE_CHECKING:
    from kuberay_provider.hooks.kuberay import KubeRayHook

DEFAULT_NAMESPACE = c.DEFAULT_NAMESPACE


def connection_namespace(kubernetes_conn_id: str, hook: KubeRayHook | None = None) -> str | None:
    """The namespace the connection names (cncf extra ``namespace``), or None.

    :raises InvalidParameterError: naming ``kubernetes_conn_id`` when the connection cannot be read.
    """
    try:
        if hook is None:
            from kuberay_provider.hooks.kuberay import KubeRayHook

            hook = KubeRayHook(kubernetes_conn_id=kubernetes_conn_id)
        namespace = hook.get_namespace()
    except InvalidParameterError:
        raise
    except Exception as exc:
        raise InvalidParameterError("kubernetes_conn_id", kubernetes_conn_id, f"could not be read: {exc}") from exc
    if namespace in (None, ""):
        return None
    validate_namespace(namespace, f"namespace (extra of connection {kubernetes_conn_id!r})")
    return namespace


def resolve_namespace(namespace: Any, kubernetes_conn_id: str, *, hook: KubeRayHook | None = None,
                      parameter: str = "namespace") -> str:
    """The namespace a task works in: ``namespace`` if given, else the connection's, else ``default``.

    ``namespace`` must already be rendered; an empty string counts as "not given" (what a template such as
    ``"{{ var.value.get('ns', '') }}"`` renders to when the Variable is unset).
    """
    if namespace is not None and not isinstance(namespace, str):
        raise InvalidParameterError(parameter, namespace, "must be a Kubernetes namespace name (a string)")
    if namespace:
        return validate_namespace(namespace, parameter)
    return connection_namespace(kubernetes_conn_id, hook) or DEFAULT_NAMESPACE
