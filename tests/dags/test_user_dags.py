"""The DAG files of ``tests/dags`` run with ``airflow dags test`` on the local stack; each test asserts what the
user sees: task states, log lines, and which objects are left in which namespace.

One Ray cluster per DAG run at most (the mapped DAG runs its jobs on one shared cluster)."""

from __future__ import annotations

import time

import pytest

from tests.dags.conftest import list_objects, names_by_namespace

pytestmark = [pytest.mark.slow, pytest.mark.composer]  # every CI lane runs the user DAGs


def _eventually(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def _of(local_stack, plural: str, dag_id: str) -> dict[str, list[str]]:
    """``{namespace: [names]}`` of the objects a DAG made (their names start with the DAG id, dashed)."""
    prefix = dag_id.replace("_", "-")
    found = {ns: [n for n in names if n.startswith(prefix)] for ns, names in names_by_namespace(local_stack, plural).items()}
    return {ns: names for ns, names in found.items() if names}


def _only_in(local_stack, dag_id: str, namespace: str) -> None:
    """Nothing of the run was created outside ``namespace`` (in particular not in ``default``)."""
    for plural in ("rayjobs", "rayclusters"):
        assert set(_of(local_stack, plural, dag_id)) <= {namespace}, plural


def test_xcom_entrypoint_and_connection_namespace(run_user_dag, local_stack, namespace):
    run = run_user_dag("user_xcom_namespace_conn.py", "user_xcom_namespace_conn")
    assert run.states == {"build_command": "success", "train": "success", "confirm_teardown": "success"}, run.tail()
    assert "[driver] epochs=2 from xcom" in run.output
    # Everything happened in the connection's namespace: the finished RayJob is kept there as a record, its cluster
    # is gone (the reschedule-mode teardown sensor looked in the same namespace), nothing went to "default".
    assert list(_of(local_stack, "rayjobs", run.dag_id)) == [namespace]
    assert _of(local_stack, "rayclusters", run.dag_id) == {}
    assert f"Teardown confirmed in namespace {namespace}" in run.output
    job = list_objects(local_stack, "rayjobs", namespace)[0]
    assert job["metadata"]["labels"]["team"] == "ml"


def test_jinja_strings_for_numbers_and_yaml_paths_in_strings(run_user_dag, local_stack, namespace):
    run = run_user_dag("user_jinja_params.py", "user_jinja_params")
    assert run.states == {"train": "success"}, run.tail()
    assert "TemplateNotFound" not in run.output
    assert "[driver] config configs/conf.yaml epochs 3 args ['--epochs', '3', '--config', 'conf.yaml']" in run.output
    _only_in(local_stack, run.dag_id, namespace)  # the namespace came from a Variable
    spec = list_objects(local_stack, "rayjobs", namespace)[0]["spec"]
    assert (spec["ttlSecondsAfterFinished"], spec["backoffLimit"]) == (0, 0)
    assert (spec["preRunningDeadlineSeconds"], spec["activeDeadlineSeconds"]) == (240, 300)
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert {"key": "ray-only", "operator": "Exists", "effect": "NoSchedule"} in head["tolerations"]


def test_native_rendering_gives_ints(run_user_dag, local_stack, namespace):
    run = run_user_dag("user_native_rendering.py", "user_native_rendering")
    assert run.states == {"train": "success"}, run.tail()
    assert "[driver] native ok" in run.output, run.tail()
    spec = list_objects(local_stack, "rayjobs", namespace)[0]["spec"]
    group = spec["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["replicas"] == 1  # "{{ params.workers }}" rendered natively to the int 1
    assert spec["ttlSecondsAfterFinished"] == 0
    _only_in(local_stack, run.dag_id, namespace)


def test_jinja_string_replicas(run_user_dag, local_stack, namespace):
    run = run_user_dag("user_jinja_replicas.py", "user_jinja_replicas")
    assert run.states == {"train": "success"}, run.tail()
    assert "[driver] workers=1" in run.output, run.tail()
    job = list_objects(local_stack, "rayjobs", namespace)[0]
    assert job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] == 1


def test_expand_and_expand_kwargs_on_a_shared_cluster(run_user_dag, local_stack, namespace):
    run = run_user_dag("user_mapped_shared_cluster.py", "user_mapped_shared_cluster")
    assert run.states == {
        "create_cluster": "success", "cluster_still_running": "skipped", "shard_kwargs": "success",
        "score[0]": "success", "score[1]": "success", "score_kwargs[0]": "success", "score_kwargs[1]": "success",
        "delete_cluster": "success", "janitor": "success",
    }, run.tail()
    for line in ("expand shard 0", "expand shard 1", "kwargs shard 0", "kwargs shard 1"):
        assert f"[driver] {line}" in run.output, (line, run.tail())
    assert "Sweeping namespace " + namespace in run.output  # the janitor used the connection's namespace
    # the shared cluster is gone; the janitor swept the four finished RayJobs; nothing anywhere else
    assert _eventually(lambda: _of(local_stack, "rayjobs", run.dag_id) == {}), _of(local_stack, "rayjobs", run.dag_id)
    assert _of(local_stack, "rayclusters", "shared") == {}


def test_manifest_file_deferred_failure_is_deleted_in_its_namespace(run_user_dag, local_stack, namespace):
    run = run_user_dag("user_manifest_file_deferred.py", "user_manifest_file_deferred")
    assert run.states == {"train": "failed", "confirm_teardown": "success"}, run.tail()
    assert "TemplateNotFound" not in run.output
    assert "manifest run 2026-11-20 fails on purpose" in run.output  # the file's Jinja was rendered
    assert "--config train.yaml" in run.output or "train.yaml" in run.output
    assert f"Deleted RayJob {namespace}/" in run.output  # deleted where it was created, after the deferral
    assert _eventually(lambda: _of(local_stack, "rayjobs", run.dag_id) == {})
    assert _of(local_stack, "rayclusters", run.dag_id) == {}


def test_ordinary_ml_environment_variables(run_user_dag, local_stack, namespace):
    run = run_user_dag("user_ml_env_vars.py", "user_ml_env_vars")
    assert run.states == {"train": "success"}, run.tail()
    assert "[driver] env false 512" in run.output, run.tail()
    _only_in(local_stack, run.dag_id, namespace)
