"""Exceptions raised by the provider. No heavy imports."""

from __future__ import annotations

from typing import Any


class InvalidParameterError(ValueError):
    """A parameter value breaks a rule. The message names the parameter, the value and the rule."""

    def __init__(self, parameter: str, value: Any, rule: str) -> None:
        self.parameter = parameter
        self.value = value
        self.rule = rule
        shown = repr(value)
        if len(shown) > 200:
            shown = shown[:197] + "..."
        super().__init__(f"Invalid {parameter}={shown}: {rule}")


class RayJobFailedError(RuntimeError):
    """The RayJob ended without success; the message carries the reason and the driver log tail."""


class RayJobGoneError(RuntimeError):
    """The RayJob was deleted while the provider waited for it."""
