"""Airflow names that work on every supported Airflow (2.10, 2.11, 3.x).

Each name comes from ``airflow.providers.common.compat.sdk`` when the installed common-compat has it, and otherwise
from Airflow 2's own location: the newest common-compat that supports Airflow 2.10 (1.9.0) lacks ``AirflowException``,
``conf`` and ``mask_secret``, and common-compat only gained ``mask_secret`` in 1.22.

Names resolve lazily (PEP 562), so ``from kuberay_provider.compat import BaseOperator`` costs what importing the
name from common-compat costs, and nothing is imported for a name nobody asks for.
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> Airflow 2 module that defines it (the fallback when common-compat lacks the name); ``module:attr`` when
#: Airflow 2 calls it differently (an Asset is a Dataset there).
AIRFLOW_2_LOCATIONS: dict[str, str] = {
    "AirflowException": "airflow.exceptions",
    "AirflowSkipException": "airflow.exceptions",
    "AirflowFailException": "airflow.exceptions",
    "TaskDeferred": "airflow.exceptions",
    "BaseOperator": "airflow.models.baseoperator",
    "BaseSensorOperator": "airflow.sensors.base",
    "PokeReturnValue": "airflow.sensors.base",
    "BaseOperatorLink": "airflow.models.baseoperatorlink",
    "BaseHook": "airflow.hooks.base",
    "XCom": "airflow.models.xcom",
    "conf": "airflow.configuration",
    "mask_secret": "airflow.utils.log.secrets_masker",
    "Context": "airflow.utils.context",
    "TaskGroup": "airflow.utils.task_group",
    "DAG": "airflow.models.dag",
    "Param": "airflow.models.param",
    "get_current_context": "airflow.operators.python",
    "DecoratedOperator": "airflow.decorators.base",
    "task_decorator_factory": "airflow.decorators.base",
    "Asset": "airflow.datasets:Dataset",
}

__all__ = sorted(AIRFLOW_2_LOCATIONS)


def _from_common_compat(name: str) -> Any:
    try:
        module = importlib.import_module("airflow.providers.common.compat.sdk")
    except ImportError:
        raise AttributeError(name) from None
    return getattr(module, name)  # AttributeError (or ImportError from its lazy loader) when it lacks the name


def __getattr__(name: str) -> Any:
    if name not in AIRFLOW_2_LOCATIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = _from_common_compat(name)
    except (AttributeError, ImportError):
        module, _, attr = AIRFLOW_2_LOCATIONS[name].partition(":")
        value = getattr(importlib.import_module(module), attr or name)
    globals()[name] = value  # resolved once per process
    return value


def airflow_major_version() -> int:
    """The installed Airflow's major version (2 or 3)."""
    from airflow import __version__

    return int(__version__.split(".", 1)[0])
