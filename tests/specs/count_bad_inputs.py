"""A pytest plugin that counts the DISTINCT bad-input behaviours a test run exercises (not parametrized items).

A behaviour is one (parameter family, rule) pair of an :class:`InvalidParameterError` raised while the tests run:
the parameter with its indices and keys removed (``worker_groups[3].env['X']`` → ``worker_groups[].env[]``) and
the rule with quoted values and numbers replaced (``must be at most 47 characters, got 48`` →
``must be at most N characters, got N``). Fifty parametrized values hitting one rule count once.

    pytest -p tests.specs.count_bad_inputs -m "not slow" tests/

prints ``distinct bad-input behaviours: N (from M raised errors in K tests)`` at the end, and with
``KUBERAY_BAD_INPUTS_LIST=path`` writes the sorted list there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from kuberay_provider.errors import InvalidParameterError

_seen: dict[tuple[str, str], int] = {}
_tests: set[str] = set()
_current: list[str] = [""]
_raised = [0]


def family(parameter: str) -> str:
    """``worker_groups[3].env['X']`` → ``worker_groups[].env[]``."""
    return re.sub(r"\[[^\]]*\]", "[]", str(parameter))


def normalise(rule: str) -> str:
    """Replace the values inside a rule so one rule is one behaviour."""
    rule = re.sub(r"\s*\[manifest path .*\]$", "", rule)
    if rule.startswith("is a literal secret"):
        return "is a literal secret"  # one policy, whichever token format or name shape it recognised
    rule = re.sub(r"(is not valid YAML):.*", r"\1", rule, flags=re.S)
    rule = re.sub(r"\(and \d+ more[^)]*\)", "", rule)
    rule = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", rule)
    rule = re.sub(r"\b\d+(\.\d+)?\b", "N", rule)
    return re.sub(r"\s+", " ", rule).strip()


_original_init = InvalidParameterError.__init__


def _recording_init(self: InvalidParameterError, parameter: str, value: Any, rule: str) -> None:
    _original_init(self, parameter, value, rule)
    key = (family(parameter), normalise(rule))
    _seen[key] = _seen.get(key, 0) + 1
    _raised[0] += 1
    if _current[0]:
        _tests.add(_current[0])


def pytest_configure(config: pytest.Config) -> None:
    InvalidParameterError.__init__ = _recording_init  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    _current[0] = item.nodeid.split("[")[0]
    try:
        return (yield)
    finally:
        _current[0] = ""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(
        f"distinct bad-input behaviours: {len(_seen)} (from {_raised[0]} raised errors in {len(_tests)} tests)")
    target = os.environ.get("KUBERAY_BAD_INPUTS_LIST")
    if target:
        Path(target).write_text("".join(f"{p}\t{r}\n" for p, r in sorted(_seen)))
