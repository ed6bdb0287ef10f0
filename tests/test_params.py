"""params: what counts as "known only at run time", and the one rule per kind of number/flag."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.params import as_bool, as_int, as_number, as_seconds, known_now, resolved_at_runtime


def _xcom_arg():
    from kuberay_provider.compat import DAG

    try:
        from airflow.sdk import task
    except ImportError:  # Airflow 2
        from airflow.decorators import task

    with DAG(dag_id="params_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        @task
        def upstream() -> str:
            return "python x.py"

        return upstream()


def test_xcom_args_and_their_derivatives_are_resolved_at_runtime():
    arg = _xcom_arg()
    for value in (arg, arg["key"], arg.map(str), [{"nested": arg}], {"k": (1, arg)}):
        assert resolved_at_runtime(value), value
        assert not known_now(value)


@pytest.mark.parametrize("value", [
    "{{ params.x }}", "{% if x %}a{% endif %}", ["a", "{{ b }}"], {"k": "{{ v }}"}, {"{{ k }}": 1},
    lambda context, jinja_env: "python x.py",
])
def test_templates_and_callables_are_resolved_at_runtime(value):
    assert resolved_at_runtime(value)


@pytest.mark.parametrize("value", [None, "", "python x.py --config c.yaml", 3, 2.5, True, {"a": [1, "b"]}, dict, str])
def test_plain_values_are_known_now(value):
    assert known_now(value)


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("3", 3), (" 7 ", 7), (4.0, 4), ("+2", 2), (0, 0)])
def test_as_int_accepts_rendered_and_native_integers(value, expected):
    assert as_int(value, "p", minimum=0) == expected


@pytest.mark.parametrize("value", [True, 2.5, "2.5", "three", "", None, [1]])
def test_as_int_refuses_non_integers_naming_the_parameter(value):
    with pytest.raises(InvalidParameterError) as err:
        as_int(value, "worker_groups[0].replicas", minimum=0)
    assert err.value.parameter == "worker_groups[0].replicas"


def test_as_int_bounds():
    with pytest.raises(InvalidParameterError, match="≥ 1"):
        as_int("0", "p", minimum=1)
    assert as_int(None, "p", allow_none=True) is None


@pytest.mark.parametrize(("value", "expected"), [
    (60, 60.0), ("60", 60.0), ("1.5", 1.5), (timedelta(minutes=2), 120.0), (0.5, 0.5),
])
def test_as_seconds(value, expected):
    assert as_seconds(value, "timeout") == expected


@pytest.mark.parametrize("value", [0, "0", -1, "-5", True, "soon", float("nan"), float("inf"), [60]])
def test_as_seconds_refuses(value):
    with pytest.raises(InvalidParameterError) as err:
        as_seconds(value, "timeout")
    assert err.value.parameter == "timeout"


def test_as_seconds_zero_and_none_when_allowed():
    assert as_seconds("0", "t", allow_zero=True) == 0.0
    assert as_seconds(None, "t", allow_none=True) is None


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("0.5", 0.5), ("2", 2), (0, 0)])
def test_as_number(value, expected):
    assert as_number(value, "entrypoint_num_cpus") == expected


@pytest.mark.parametrize("value", [-1, "-0.5", "x", True])
def test_as_number_refuses(value):
    with pytest.raises(InvalidParameterError):
        as_number(value, "entrypoint_num_cpus")


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("False", False), ("true", True), ("0", False)])
def test_as_bool(value, expected):
    assert as_bool(value, "dry_run") is expected


def test_as_bool_refuses():
    with pytest.raises(InvalidParameterError):
        as_bool("maybe", "dry_run")
