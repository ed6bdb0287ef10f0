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


def as_int(value: Any, parameter: str, *, minimum: int | None = None, maximum: int | None = None,
           allow_none: bool = False) -> int | None:
    """``value`` as an ``int``: an int, or (after Jinja rendered it) a string holding an integer such as ``"3"``.

    The one rule for every numeric parameter: a templated ``"{{ params.workers }}"`` renders to the string ``"3"``,
    which is accepted; ``True``, ``2.5``, ``"2.5"`` and ``"three"`` are refused naming ``parameter``.
    """
    if value is None and allow_none:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)  # native rendering (render_template_as_native_obj) of "{{ 2 * 2 }}" may give 4.0
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    bounds = (f" ≥ {minimum}" if minimum is not None else "") + (f" and ≤ {maximum}" if maximum is not None else "")
    if number is None:
        raise InvalidParameterError(parameter, value, f"must be an integer{bounds} (or a string holding one)")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise InvalidParameterError(parameter, value, f"must be an integer{bounds}")
    return number
