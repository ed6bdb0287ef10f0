"""Parameter checks the operators and sensors share (pure, no heavy imports: DAG files import these modules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kuberay_provider.errors import InvalidParameterError


def is_templated(value: Any) -> bool:
    """True if ``value`` (or any key, value or item inside it) still holds Jinja.

    Operators skip construction-time checks for such values and check them again after rendering, in ``execute``.
    """
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(is_templated(v) for v in value)
    return False


def check_conn_id(conn_id: Any, parameter: str = "kubernetes_conn_id") -> None:
    """Refuse a connection id that cannot name an Airflow connection."""
    if not isinstance(conn_id, str) or not conn_id.strip():
        raise InvalidParameterError(parameter, conn_id, "must name an Airflow connection")
