"""The sensors are ordinary Airflow sensors (poke + BaseSensorOperator's loop: reschedule, soft_fail,
exponential_backoff, timeout) and look in the namespace every task uses (parameter > connection > default)."""

from __future__ import annotations

import pytest

from kuberay_provider.compat import airflow_major_version
from kuberay_provider.sensors import rayjob as sensors
from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor, RayJobSensor
from tests.operators.fakes import FakeHook, raycluster
from tests.rayjob_sequences import rayjob_object


@pytest.fixture
def hook(monkeypatch) -> FakeHook:
    fake = FakeHook(namespace="ml", objects=[raycluster("shared", "ml")])
    monkeypatch.setattr(sensors, "_hook", lambda conn_id: fake)
    return fake


def _deleted_sensor(**kwargs) -> RayClusterDeletedSensor:
    kwargs.setdefault("task_id", "confirm")
    kwargs.setdefault("cluster_names", ["shared"])
    kwargs.setdefault("poke_interval", 0.01)
    kwargs.setdefault("timeout", 0.05)
    return RayClusterDeletedSensor(**kwargs)


def test_the_teardown_sensor_looks_in_the_connections_namespace(hook):
    """With a connection naming "ml", a cluster alive in "ml" is not confirmed gone (it used to check "default")."""
    assert _deleted_sensor().poke({}) is False
    assert ("get", "RayCluster", "ml", "shared") in hook.requests
    hook.objects.clear()
    result = _deleted_sensor().poke({})
    assert result and result.xcom_value["namespace"] == "ml"


def test_an_explicit_namespace_wins(hook):
    assert _deleted_sensor(namespace="other").poke({})  # nothing in "other"
    assert all(r[2] == "other" for r in hook.requests if r[0] == "get")


def test_timeout_lists_what_is_left(hook):
    with pytest.raises(Exception) as err:
        _deleted_sensor().execute({})
    assert type(err.value).__name__ == "AirflowSensorTimeout"
    assert "RayCluster ml/shared state=ready" in str(err.value)


def test_soft_fail_skips_instead(hook):
    with pytest.raises(Exception) as err:
        _deleted_sensor(soft_fail=True).execute({})
    assert type(err.value).__name__ == "AirflowSkipException"


def test_exponential_backoff_and_success_return_the_summary(hook):
    hook.objects.clear()
    assert _deleted_sensor(exponential_backoff=True).execute({})["clusters_left"] == 0


@pytest.mark.skipif(airflow_major_version() < 3, reason="Airflow 2 reads the first reschedule date from the DB")
def test_reschedule_mode_reschedules_instead_of_sleeping(hook):
    class Ti:
        def get_first_reschedule_date(self, context):
            return None

    with pytest.raises(Exception) as err:
        _deleted_sensor(mode="reschedule", timeout=60, poke_interval=5).execute({"ti": Ti()})
    assert type(err.value).__name__ == "AirflowRescheduleException"


def test_the_rayjob_sensor_uses_the_connections_namespace_and_returns_the_summary(monkeypatch):
    job = rayjob_object("Complete", "SUCCEEDED", name="train-1")
    job["metadata"]["namespace"] = "ml"
    job["kind"] = "RayJob"
    fake = FakeHook(namespace="ml", objects=[job])
    monkeypatch.setattr(sensors, "_hook", lambda conn_id: fake)
    result = RayJobSensor(task_id="wait", name="train-1", poke_interval=0.01, timeout=1).execute({})
    assert result["name"] == "train-1" and result["namespace"] == "ml" and result["job_status"] == "SUCCEEDED"


@pytest.mark.parametrize(("param", "value"), [("poke_interval", "2"), ("timeout", "30"), ("poke_interval", 1.5)])
def test_numeric_strings_for_sensor_seconds(param, value):
    RayClusterDeletedSensor(task_id="x", rayjob_name="a", **{param: value})
    RayJobSensor(task_id="y", name="a", **{param: value})
