"""Values only known at run time (XComArg, mapping, Jinja) construct at parse time for every operator and sensor,
and are judged once resolved, in ``execute``, before anything is created. Cleanup after a deferral happens in the
namespace the job was created in; a non-retryable API error while waiting keeps the (maybe healthy) RayJob."""

from __future__ import annotations

import pendulum
import pytest

from kuberay_provider import constants as c
from kuberay_provider.compat import DAG, AirflowException
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.operators.janitor import RayJanitorOperator
from kuberay_provider.operators.raycluster import RayClusterCreateOperator, RayClusterDeleteOperator
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor, RayJobSensor
from tests.operators.fakes import FakeHook

try:
    from airflow.sdk import task
except ImportError:  # Airflow 2
    from airflow.decorators import task


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))


def test_every_operator_and_sensor_accepts_xcom_args_at_parse_time():
    with _dag("xcom_everywhere"):
        @task
        def value() -> str:
            return "x"

        arg = value()
        RayJobOperator(task_id="a", entrypoint=arg)
        RayJobOperator(task_id="b", entrypoint="python x.py", labels=arg, annotations=arg, head=arg,
                       worker_groups=arg, runtime_env=arg, secret_env=arg, node_selector=arg, tolerations=arg,
                       name=arg, namespace=arg, ttl_seconds_after_finished=arg, log_tail_lines=arg, timeout=arg)
        RayJobOperator(task_id="c", entrypoint="python x.py", worker_groups=[{"name": "cpu", "replicas": arg}])
        RayJobOperator(task_id="d", manifest=arg)
        RayJobSensor(task_id="e", name=arg, namespace=arg)
        RayClusterDeletedSensor(task_id="f", rayjob_name=arg["rayjob_name"], namespace=arg)
        RayClusterDeletedSensor(task_id="g", cluster_names=arg)
        RayClusterCreateOperator(task_id="h", name=arg, head=arg, worker_groups=arg, labels=arg)
        RayClusterDeleteOperator(task_id="i", name=arg, namespace=arg)
        RayJanitorOperator(task_id="j", namespaces=arg, dry_run=arg)


def test_partial_expand_and_expand_kwargs_parse():
    with _dag("mapping") as dag:
        @task
        def kwargs_list() -> list[dict]:
            return [{"entrypoint": "python a.py"}]

        RayJobOperator.partial(task_id="m1", head={"cpu": 1}).expand(entrypoint=["python a.py", "python b.py"])
        RayJobOperator.partial(task_id="m2").expand_kwargs(kwargs_list())
        RayJobOperator.partial(task_id="m3").expand_kwargs([{"entrypoint": "python a.py", "ttl_seconds_after_finished": "5"}])
        RayClusterDeletedSensor.partial(task_id="m4").expand(rayjob_name=["a", "b"])
    assert {"m1", "m2", "m3", "m4"} <= set(dag.task_dict)


def test_unmapped_task_judges_the_resolved_values():
    """What a mapped task instance does at run time: __init__ with the resolved kwargs, all checks apply."""
    RayJobOperator(task_id="ok", entrypoint="python a.py", ttl_seconds_after_finished="5", log_tail_lines="10")
    with pytest.raises(InvalidParameterError) as err:
        RayJobOperator(task_id="bad", entrypoint="python a.py", ttl_seconds_after_finished="five")
    assert err.value.parameter == "ttl_seconds_after_finished"


@pytest.mark.parametrize(("field", "resolved", "parameter"), [
    ("labels", {"bad key": "x"}, "labels['bad key']"),
    ("namespace", "Bad_NS", "namespace"),
    ("log_tail_lines", "many", "log_tail_lines"),
    ("ttl_seconds_after_finished", "-1", "ttl_seconds_after_finished"),
    ("timeout", "soon", "timeout"),
    ("on_existing", "attach", "on_existing"),
    ("secret_env", {"TOKEN": "no-colon"}, "secret_env['TOKEN']"),
])
def test_resolved_values_are_judged_in_execute_before_any_request(field, resolved, parameter):
    with _dag(f"runtime_{field}"):
        @task
        def value() -> str:
            return "x"

        op = RayJobOperator(task_id="t", entrypoint="python a.py", **{field: value()})
    setattr(op, field, resolved)  # what rendering/resolution left
    hook = FakeHook()
    op.hook = lambda: hook
    with pytest.raises(InvalidParameterError) as err:
        op.execute({"ti": None})
    assert err.value.parameter == parameter
    assert hook.requests == [] and hook.deleted == []


def _resumed(namespace_seen_by_execute: str | None = None) -> tuple[RayJobOperator, FakeHook]:
    op = RayJobOperator(task_id="t", entrypoint="python a.py", kubernetes_conn_id="kuberay_user")
    hook = FakeHook(namespace="from-connection")
    op.hook = lambda: hook
    return op, hook


class _Ti:
    def xcom_push(self, **_):
        pass

    def xcom_pull(self, **_):
        return "job-from-xcom"


def test_after_a_deferred_error_the_job_is_deleted_where_it_was_created():
    op, hook = _resumed()
    event = {"status": "error", "message": "TypeError: boom", "rayjob": None, "diagnostics": [], "log_tail": []}
    with pytest.raises(AirflowException, match="boom"):
        op.execute_complete({"ti": _Ti()}, event, name="train-job-1", namespace="ml-team")
    assert hook.deleted == [(c.RAYJOB_KIND, "ml-team", "train-job-1")]


def test_the_event_namespace_wins_and_the_connection_is_the_last_resort():
    op, hook = _resumed()
    event = {"status": "timeout", "message": "late", "rayjob": None, "name": "j", "namespace": "from-event"}
    with pytest.raises(AirflowException):
        op.execute_complete({"ti": _Ti()}, event)
    assert hook.deleted == [(c.RAYJOB_KIND, "from-event", "j")]
    op, hook = _resumed()
    with pytest.raises(AirflowException):
        op.execute_complete({"ti": _Ti()}, {"status": "timeout", "message": "late", "rayjob": None})
    assert hook.deleted == [(c.RAYJOB_KIND, "from-connection", "job-from-xcom")]


@pytest.mark.parametrize("status", [401, 403])
def test_a_forbidden_wait_fails_saying_the_job_may_still_run_and_keeps_it(status):
    from kuberay_provider.hooks.watching import RayJobWaitError
    from kuberay_provider.lifecycle import wait_sync

    class Forbidden(FakeHook):
        def wait_for_rayjob(self, name, namespace, **_):
            raise RayJobWaitError(f"Kubernetes API error {status} while waiting for RayJob {namespace}/{name}: "
                                  f"{status} Forbidden")

    hook = Forbidden()
    event = wait_sync(hook, "train-1", "ml", deadline=None, log_tail_lines=5, stream_logs=False,
                      emit_line=print)
    assert event["status"] == "error" and event["api_status"] == status and event["job_may_be_running"]
    op = RayJobOperator(task_id="t", entrypoint="python a.py")
    op.hook = lambda: hook
    op._rayjob_name, op._rayjob_namespace = "train-1", "ml"
    with pytest.raises(AirflowException) as err:
        op._complete({"ti": _Ti()}, event, reattached=False, hook=hook)
    assert "may still be running" in str(err.value) and "NOT deleted" in str(err.value)
    assert hook.deleted == []


def test_a_forbidden_wait_reported_by_a_trigger_as_text_also_keeps_the_job():
    op, hook = _resumed()
    event = {"status": "error", "rayjob": None,
             "message": "RayJobWaitError: Kubernetes API error 403 while waiting for RayJob ml/j: 403 Forbidden"}
    with pytest.raises(AirflowException, match="may still be running"):
        op.execute_complete({"ti": _Ti()}, event, name="j", namespace="ml")
    assert hook.deleted == []


def test_templated_fields_include_pod_settings_and_numbers():
    for field in ("secret_env", "node_selector", "tolerations", "ttl_seconds_after_finished", "backoff_limit",
                  "pre_running_deadline_seconds", "active_deadline_seconds", "log_tail_lines", "timeout"):
        assert field in RayJobOperator.template_fields


def test_arguments_of_a_mapped_task_group_are_accepted():
    """Inside ``@task_group(...).expand(...)`` the group's arguments are MappedArguments, resolved per map index."""
    try:
        from airflow.sdk import task_group
    except ImportError:  # Airflow 2
        from airflow.decorators import task_group

    with _dag("mapped_group") as dag:
        @task_group
        def per_shard(command: str, workers: int):
            RayJobOperator(task_id="run", entrypoint=command, worker_groups=[{"name": "cpu", "replicas": workers}],
                           ttl_seconds_after_finished=workers)

        per_shard.expand(command=["python a.py", "python b.py"], workers=[1, 2])
    assert "per_shard.run" in dag.task_dict
