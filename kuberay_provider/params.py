"""Parameter checks the operators and sensors share (pure, no heavy imports: DAG files import these modules).

Two kinds of check exist for every parameter: the one made when the DAG is parsed (``__init__``), which must skip
every value that is only known when the task runs, and the one made in ``execute`` on the rendered, resolved value.
:func:`resolved_at_runtime` is the single definition of "only known when the task runs".
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from kuberay_provider.errors import InvalidParameterError


def _is_lazy_reference(value: Any) -> bool:
    """An Airflow object resolved at run time: ``XComArg`` (``task.output``, ``.map()``, ``.zip()``),
    ``MappedArgument`` (an argument of a mapped task group), or any other ``ResolveMixin``.

    Recognised by shape (``resolve`` + ``iter_references``, what Airflow's templater itself keys on) so that the
    check costs no Airflow import and holds on Airflow 2.10 and 3.x alike.
    """
    if isinstance(value, (str, bytes, os.PathLike, type)):
        return False
    return callable(getattr(value, "resolve", None)) and callable(getattr(value, "iter_references", None))


def is_templated(value: Any) -> bool:
    """True if ``value`` (or any key, value or item inside it) still holds Jinja (``{{`` or ``{%``)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_templated(k) or is_templated(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(is_templated(v) for v in value)
    return False


def resolved_at_runtime(value: Any) -> bool:
    """True if ``value``, or anything nested in it, is only known when the task runs.

    That is: a Jinja string, an ``XComArg``/``MappedArgument`` (anything Airflow resolves at run time), or a
    callable template value (Airflow 3 calls ``value(context=..., jinja_env=...)`` when rendering). Parse-time
    checks skip such values; ``execute`` checks them once Airflow has rendered and resolved them.
    """
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if _is_lazy_reference(value):
        return True
    if isinstance(value, Mapping):
        return any(resolved_at_runtime(k) or resolved_at_runtime(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(resolved_at_runtime(v) for v in value)
    return callable(value) and not isinstance(value, type)


def known_now(*values: Any) -> bool:
    """True if none of ``values`` is :func:`resolved_at_runtime` (so a parse-time check can judge them)."""
    return not any(resolved_at_runtime(v) for v in values)


def check_conn_id(conn_id: Any, parameter: str = "kubernetes_conn_id") -> None:
    """Refuse a connection id that cannot name an Airflow connection."""
    if resolved_at_runtime(conn_id):
        return
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


def as_seconds(value: Any, parameter: str, *, allow_zero: bool = False, allow_none: bool = False) -> float | None:
    """``value`` as a number of seconds: an int or float, a ``timedelta``, or (after Jinja rendered it) a string
    holding a number such as ``"90"`` or ``"1.5"``. Refuses booleans, negatives, NaN/inf and zero (unless
    ``allow_zero``), naming ``parameter``."""
    if value is None and allow_none:
        return None
    seconds: float | None = None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            seconds = None
    rule = f"must be a {'non-negative' if allow_zero else 'positive'} number of seconds (or a string holding one)"
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise InvalidParameterError(parameter, value, rule)
    return seconds


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def as_bool(value: Any, parameter: str) -> bool:
    """``value`` as a bool: ``True``/``False``, or (after Jinja rendered it) ``"True"``/``"false"``/``"1"``/``"0"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidParameterError(parameter, value, "must be True or False")


def as_number(value: Any, parameter: str, *, minimum: float = 0.0, allow_none: bool = False) -> float | int | None:
    """``value`` as an int or float ≥ ``minimum``: a number, or (after Jinja rendered it) a string holding one."""
    if value is None and allow_none:
        return None
    number: float | int | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < minimum:
        raise InvalidParameterError(parameter, value, f"must be a number ≥ {minimum:g} (or a string holding one)")
    return number
