"""Every public operator, sensor, trigger, hook and decorator documents its parameters as Airflow's providers do.

The parameter reference in ``docs/`` is generated from these docstrings (Sphinx autodoc), so a parameter missing
here is missing from the documentation. Rules, per public class of the modules ``get_provider_info()`` registers
(plus the ``@task.ray_job`` decorator):

* every named parameter of its ``__init__`` has a ``:param name:`` entry;
* every name in its ``template_fields`` has a ``:param name:`` entry that says ``(templated)``;
* ``@task.ray_job``'s function documents its own parameters too.

A subclass may rely on the entries of its ``kuberay_provider`` base classes (``RayJobDecoratedOperator`` takes
every ``RayJobOperator`` parameter), never on Airflow's.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator

import pytest

import kuberay_provider
from kuberay_provider.compat import BaseHook, BaseOperator

#: ``:param name:`` or ``:param type name:``; the entry runs until the next field (``:return:``, ``:raises X:``;
#: not a role such as ``:class:`X```) or a blank line.
_PARAM = re.compile(r"^\s*:param\s+(?:[^:\s]+\s+)?(\w+):(.*)$")
_FIELD_OR_BLANK = re.compile(r"^\s*(:\w+(\s[^:]+)?:(\s|$)|$)")

DECORATOR_MODULES = ("kuberay_provider.decorators.ray_job",)


def param_entries(doc: str | None) -> dict[str, str]:
    """``{name: entry text}`` of the ``:param:`` fields of a docstring (continuation lines joined)."""
    entries: dict[str, str] = {}
    current: str | None = None
    for line in (doc or "").splitlines():
        match = _PARAM.match(line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2).strip()
        elif current is not None and not _FIELD_OR_BLANK.match(line):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def _registered_modules() -> list[str]:
    info = kuberay_provider.get_provider_info()
    modules = [m for kind in ("operators", "sensors", "triggers", "hooks")
               for group in info[kind] for m in group["python-modules"]]
    return [*modules, *DECORATOR_MODULES]


def _trigger_base() -> type:
    from airflow.triggers.base import BaseTrigger

    return BaseTrigger


def public_classes() -> Iterator[type]:
    """Public operator/sensor/trigger/hook classes defined in the provider's registered modules."""
    bases = (BaseOperator, BaseHook, _trigger_base())
    for module_name in _registered_modules():
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and obj.__module__ == module_name and not name.startswith("_")
                    and issubclass(obj, bases)):
                yield obj


def init_parameters(func: Callable) -> list[str]:
    """Named parameters of a callable (no ``self``, ``*args``, ``**kwargs``)."""
    return [p.name for p in inspect.signature(func).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def documented(cls: type) -> dict[str, str]:
    """The ``:param:`` entries of a class and of its ``kuberay_provider`` base classes (its own win)."""
    entries: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("kuberay_provider."):
            entries.update(param_entries(klass.__doc__))
    return entries


CLASSES = sorted(public_classes(), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_the_public_classes_are_found() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"RayJobOperator", "RayJobSensor", "RayClusterDeletedSensor", "RayClusterCreateOperator",
            "RayClusterDeleteOperator", "RayJanitorOperator", "RayJobTrigger", "RayClusterDeletedTrigger",
            "KubeRayHook", "AsyncKubeRayHook", "RayJobDecoratedOperator"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_init_parameter_is_documented(cls: type) -> None:
    assert cls.__doc__, f"{cls.__name__} has no docstring"
    entries = documented(cls)
    missing = [p for p in init_parameters(cls.__init__) if p not in entries]
    assert not missing, f"{cls.__name__}'s docstring lacks ':param NAME:' for {missing}"


@pytest.mark.parametrize("cls", [c for c in CLASSES if getattr(c, "template_fields", ())],
                         ids=lambda c: c.__name__)
def test_every_template_field_is_marked_templated(cls: type) -> None:
    entries = documented(cls)
    undocumented = [f for f in cls.template_fields if f not in entries]
    unmarked = [f for f in cls.template_fields if f in entries and "(templated)" not in entries[f]]
    assert not undocumented, f"{cls.__name__}: template fields without ':param NAME:': {undocumented}"
    assert not unmarked, f"{cls.__name__}: template fields whose entry does not say '(templated)': {unmarked}"


def test_non_template_parameters_are_not_marked_templated() -> None:
    wrong = {cls.__name__: sorted(name for name, text in param_entries(cls.__doc__).items()
                                  if "(templated)" in text and name not in getattr(cls, "template_fields", ()))
             for cls in CLASSES}
    assert not {k: v for k, v in wrong.items() if v}, wrong


def test_the_task_decorator_documents_its_parameters() -> None:
    from kuberay_provider.decorators.ray_job import ray_job_task

    entries = param_entries(ray_job_task.__doc__)
    missing = [p for p in init_parameters(ray_job_task) if p not in entries]
    assert not missing, f"ray_job_task's docstring lacks ':param NAME:' for {missing}"


@pytest.mark.parametrize(("doc", "expected"), [
    (":param a: one\n    two (templated)\n:param b: three\n\nprose (templated)", {"a": "one two (templated)", "b": "three"}),
    (":param str a: typed\n:return: x", {"a": "typed"}),
    (":param a: see\n    :mod:`m`. (templated)\n:raises ValueError: no", {"a": "see :mod:`m`. (templated)"}),
    ("no fields", {}),
])
def test_param_entries_parsing(doc: str, expected: dict[str, str]) -> None:
    assert param_entries(doc) == expected
