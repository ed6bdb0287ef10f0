"""``retraining_pipeline`` (the ETL → train → confirm-teardown TaskGroup): graph shape, teardown wiring, templated
fields and how they render, and bad parameters. Fast: nothing runs, nothing heavy is imported."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pendulum
import pytest

from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.operators.rayjob import RayJobOperator
from kuberay_provider.pipelines import JOBS_DIR
from kuberay_provider.pipelines.builder import (
    DEFAULT_SPARK_TEMPLATE,
    choose_spark_mode,
    etl_arguments,
    render_spark_application,
    retraining_pipeline,
    train_arguments,
)
from kuberay_provider.pipelines.spark import SparkApplicationOperator

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "raw_events_table": "raw.events", "raw_customers_table": "raw.customers", "features_table": "out.features",
    "metrics_table": "out.metrics", "predictions_table": "out.predictions",
}  # fmt: skip
END = pendulum.datetime(2026, 11, 16, tz="UTC")


def build(**overrides: Any) -> Any:
    """A DAG holding one pipeline group ``g`` with the given parameters."""
    from airflow.providers.common.compat.sdk import DAG

    params: dict[str, Any] = {**TABLES, "model_uri": "/tmp/models/churn", "bigquery_project": "proj-1",
                              "staging_uri": "/tmp/kuberay-staging-test", **overrides}
    with DAG(dag_id="builder_test", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        retraining_pipeline("g", **params)
    return dag


def downstream(dag: Any, task_id: str) -> set[str]:
    return set(dag.get_task(task_id).downstream_task_ids)


class FakeVariables:
    """``var.value`` for rendering: returns each Variable's default, like a fresh Airflow without Variables."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = values or {}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)


def render(dag: Any, task_id: str, field: str, **extra: Any) -> Any:
    """Render one templated field the way Airflow would for a run ending at END."""
    from tests.integration.airflow_support import macros

    task = dag.get_task(task_id)
    context = {"data_interval_start": END.subtract(weeks=1), "data_interval_end": END, "run_id": "manual__test",
               "params": {"spark_mode": "", "feature_window_days": 56}, "macros": macros(),
               "var": {"value": FakeVariables(extra.pop("variables", None))}, "ti": None, **extra}
    return task.render_template(getattr(task, field), context)


# ----------------------------------------------------------------------------------------------- graph shape
def test_local_mode_graph_and_teardown_wiring() -> None:
    dag = build(spark_mode="local")
    assert set(dag.task_dict) == {"g.etl_local", "g.stage_cluster_package", "g.train", "g.confirm_teardown"}
    assert downstream(dag, "g.etl_local") == downstream(dag, "g.stage_cluster_package") == {"g.train"}
    assert downstream(dag, "g.train") == {"g.confirm_teardown"}
    train, confirm = dag.get_task("g.train"), dag.get_task("g.confirm_teardown")
    assert confirm.is_teardown and train.is_setup and not dag.get_task("g.etl_local").is_setup
    # The teardown runs when training failed, and confirms the teardown of *this* task's RayJob.
    assert str(confirm.trigger_rule) in ("all_done_setup_success", "TriggerRule.ALL_DONE_SETUP_SUCCESS")
    assert confirm.rayjob_name == "{{ ti.xcom_pull(task_ids='g.train', key='rayjob_name') }}"
    assert (confirm.poke_interval, confirm.timeout) == (5.0, 600.0)
    assert str(train.trigger_rule).endswith(("none_failed_min_one_success", "NONE_FAILED_MIN_ONE_SUCCESS"))
    # the ETL and training tasks are the stock operators plus their OpenLineage report (pipelines.tasks)
    assert isinstance(train, RayJobOperator) and type(train).__name__ == "TrainingRayJobOperator"
    assert type(confirm).__name__ == "RayClusterDeletedSensor"


def test_templated_spark_mode_builds_a_branch_over_both_etl_tasks() -> None:
    dag = build(spark_mode="{{ params.spark_mode or 'local' }}")
    assert set(dag.task_dict) == {"g.choose_etl", "g.etl_local", "g.etl_spark_operator", "g.stage_cluster_package",
                                  "g.train", "g.confirm_teardown"}
    assert downstream(dag, "g.choose_etl") == {"g.etl_local", "g.etl_spark_operator"}
    assert downstream(dag, "g.etl_local") == downstream(dag, "g.etl_spark_operator") == {"g.train"}
    choose = dag.get_task("g.choose_etl")
    assert choose.op_kwargs == {"mode": "{{ params.spark_mode or 'local' }}", "local_task_id": "g.etl_local",
                                "operator_task_id": "g.etl_spark_operator"}
    # The branch callable picks per run and rejects a bad rendered value, naming the parameter.
    assert choose.python_callable(**{**choose.op_kwargs, "mode": "spark_operator"}) == "g.etl_spark_operator"
    assert choose.python_callable(**{**choose.op_kwargs, "mode": " local "}) == "g.etl_local"
    with pytest.raises(InvalidParameterError, match=r"spark_mode='yarn'.*one of \['local', 'spark_operator'\]"):
        choose.python_callable(**{**choose.op_kwargs, "mode": "yarn"})


def test_spark_operator_task_is_lazy_and_carries_the_rendered_manifest() -> None:
    dag = build(spark_mode="spark_operator", namespace="ml", spark_executor={"instances": 3, "memory": "4g"})
    task = dag.get_task("g.etl_spark_operator")
    assert isinstance(task, SparkApplicationOperator) and type(task).__name__ == "SparkEtlOperator"
    assert task._delegate is None
    assert set(task.template_fields) >= {"template_spec", "namespace"}
    spec = task.template_spec
    assert spec["kind"] == "SparkApplication" and spec["metadata"]["namespace"] == "ml"
    assert spec["spec"]["mainApplicationFile"] == f"local://{JOBS_DIR / 'churn_etl.py'}"
    assert spec["spec"]["executor"]["instances"] == 3 and spec["spec"]["executor"]["memory"] == "4g"
    assert {"name": "KUBERAY_BQ_PROJECT", "value": "proj-1"} in spec["spec"]["driver"]["env"]
    args = spec["spec"]["arguments"]
    assert args[args.index("--start") + 1] == "{{ data_interval_start.isoformat() }}"
    assert args[args.index("--features-table") + 1] == "out.features"


def test_working_dir_adds_a_staging_task_feeding_the_runtime_env(tmp_path: Path) -> None:
    dag = build(spark_mode="local", working_dir=str(tmp_path), staging_uri=str(tmp_path / "stage"))
    assert downstream(dag, "g.stage_working_dir") == {"g.train"}
    train = dag.get_task("g.train")
    assert train.runtime_env["working_dir"] == "{{ ti.xcom_pull(task_ids='g.stage_working_dir') }}"
    assert dag.get_task("g.stage_working_dir").op_kwargs == {"working_dir": str(tmp_path),
                                                              "staging_uri": str(tmp_path / "stage")}


def test_an_image_with_the_cluster_side_installed_ships_nothing() -> None:
    dag = build(spark_mode="local", staging_uri=None, ship_cluster_package=False, cluster_pip=(),
                runtime_env={"env_vars": {"A": "1"}})
    assert set(dag.task_dict) == {"g.etl_local", "g.train", "g.confirm_teardown"}
    train = dag.get_task("g.train")
    assert "py_modules" not in train.runtime_env and "pip" not in train.runtime_env


def test_uv_or_conda_runtime_envs_are_left_to_the_user() -> None:
    for runtime_env in ({"uv": ["xgboost-cpu"]}, {"conda": {"dependencies": ["xgboost"]}}, {"pip": "reqs.txt"}):
        train = build(spark_mode="local", runtime_env=runtime_env).get_task("g.train")
        assert {k: train.runtime_env[k] for k in runtime_env} == runtime_env and (
            "pip" not in train.runtime_env or train.runtime_env["pip"] == runtime_env.get("pip"))


# ----------------------------------------------------------------------------------------------- templated fields
def test_etl_command_renders_to_one_argument_per_value() -> None:
    dag = build(spark_mode="local", raw_events_table="{{ var.value.get('raw', 'r0') }}.events",
                window_start="{{ (data_interval_end - macros.timedelta(days=56)).isoformat() }}",
                bigquery_env={"KUBERAY_BQ_REST_ENDPOINT": "{{ var.value.get('rest', '') }}"})
    task = dag.get_task("g.etl_local")
    assert "bash_command" in task.template_fields and "env" in task.template_fields
    argv = shlex.split(render(dag, "g.etl_local", "bash_command", variables={"raw": "churn_raw"}))
    assert argv[:2] == [sys.executable, str(JOBS_DIR / "churn_etl.py")]
    assert argv[argv.index("--start") + 1] == "2026-09-21T00:00:00+00:00"
    assert argv[argv.index("--end") + 1] == "2026-11-16T00:00:00+00:00"
    assert argv[argv.index("--events-table") + 1] == "churn_raw.events"
    assert argv[argv.index("--master") + 1] == "local[2]"
    assert "spark.ui.enabled=false" in argv
    env = render(dag, "g.etl_local", "env", variables={"rest": "http://127.0.0.1:9050"})
    assert env["KUBERAY_BQ_REST_ENDPOINT"] == "http://127.0.0.1:9050" and env["KUBERAY_BQ_PROJECT"] == "proj-1"
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1" and env["PYSPARK_PYTHON"] == sys.executable and task.append_env is True


def test_train_entrypoint_and_runtime_env_render() -> None:
    dag = build(spark_mode="local", num_workers=3, num_boost_round=40, model_uri="{{ var.value.get('root', '/m') }}/x",
                runtime_env={"env_vars": {"EXTRA": "1"}, "pip": ["scikit-learn==1.9.1", "polars"]},
                bigquery_env={"KUBERAY_BQ_GRPC_ENDPOINT": "{{ var.value.get('grpc', '') }}"})
    train = dag.get_task("g.train")
    assert {"entrypoint", "runtime_env"} <= set(train.template_fields)
    argv = shlex.split(render(dag, "g.train", "entrypoint", variables={"root": "/models"}))
    assert argv[:3] == ["python", "-m", "kuberay_provider.pipelines.jobs.churn_train"]
    assert argv[argv.index("--model-uri") + 1] == "/models/x"
    assert argv[argv.index("--run-id") + 1] == "manual__test"
    assert argv[argv.index("--num-workers") + 1] == "3" and argv[argv.index("--num-boost-round") + 1] == "40"
    staged = type("TI", (), {"xcom_pull": lambda self, task_ids: f"file:///staging/{task_ids}.zip"})()
    runtime_env = render(dag, "g.train", "runtime_env", variables={"grpc": "127.0.0.1:9060"}, ti=staged)
    assert runtime_env["py_modules"] == ["file:///staging/g.stage_cluster_package.zip"]
    # The user's entries win; what the job needs beyond a stock Ray image is added; the cluster side ships as
    # py_modules, staged by its own task.
    assert runtime_env["pip"] == ["scikit-learn==1.9.1", "polars", "google-cloud-bigquery>=3.20",
                                  "google-cloud-bigquery-storage>=2.25", "db-dtypes>=1.2", "xgboost-cpu>=2.0"]
    assert train.runtime_env["py_modules"] == ["{{ ti.xcom_pull(task_ids='g.stage_cluster_package') }}"]
    assert dag.get_task("g.stage_cluster_package").op_kwargs == {"staging_uri": "/tmp/kuberay-staging-test"}
    assert runtime_env["env_vars"] == {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1", "KUBERAY_BQ_PROJECT": "proj-1",
                                       "KUBERAY_BQ_GRPC_ENDPOINT": "127.0.0.1:9060", "EXTRA": "1"}
    assert train.worker_groups == [{"name": "train", "replicas": 3, "cpu": 1, "memory": "2Gi"}]


def test_argument_helpers_match_the_job_clis() -> None:
    from kuberay_provider.pipelines.jobs import churn_etl, churn_train

    etl = etl_arguments(window_start="2026-09-21T00:00:00+00:00", window_end="2026-11-16T00:00:00+00:00",
                        raw_events_table="raw.events", raw_customers_table="raw.customers",
                        features_table="out.features", label_days=7, bigquery_project="proj-1")
    parsed = churn_etl.parse_args(etl)
    assert parsed.features_table == "out.features" and parsed.label_days == 7 and parsed.project == "proj-1"
    train = train_arguments(features_table="out.features", metrics_table="out.metrics", predictions_table="out.p",
                            model_uri="/m", bigquery_project="proj-1", num_workers=2, num_boost_round=5, run_id="r1")
    parsed = churn_train.parse_args(train)
    assert (parsed.num_workers, parsed.num_boost_round, parsed.run_id) == (2, 5, "r1")
    assert (parsed.gate_metric, parsed.promotion_margin, parsed.champion_uri) == ("auc", 0.0, "/champion.json")
    gated = churn_train.parse_args(train_arguments(
        features_table="out.features", metrics_table="out.metrics", predictions_table="out.p", model_uri="gs://b/m/r1",
        bigquery_project="proj-1", num_workers=2, num_boost_round=5, gate_metric="logloss", promotion_margin="0.02",
        champion_uri="gs://b/pointers/churn.json"))  # fmt: skip
    assert (parsed.features_table, gated.gate_metric, gated.promotion_margin) == ("out.features", "logloss", 0.02)
    assert gated.champion_uri == "gs://b/pointers/churn.json"
    assert churn_train.parse_args([*train[:train.index("--gate-metric")], "--model-uri", "gs://b/m/r2"]
                                  ).champion_uri == "gs://b/m/champion.json"


# ----------------------------------------------------------------------------------------------- bad parameters
@pytest.mark.parametrize(("overrides", "parameter", "rule"), [
    ({"raw_events_table": "events"}, "raw_events_table", "[project.]dataset.table"),
    ({"features_table": ""}, "features_table", "[project.]dataset.table"),
    ({"predictions_table": "a.b.c.d"}, "predictions_table", "[project.]dataset.table"),
    ({"model_uri": " "}, "model_uri", "path or URI"),
    ({"bigquery_project": ""}, "bigquery_project", "project id"),
    ({"spark_mode": "yarn"}, "spark_mode", "one of ['local', 'spark_operator']"),
    ({"num_workers": 0}, "num_workers", "integer ≥ 1"),
    ({"num_boost_round": True}, "num_boost_round", "integer ≥ 1"),
    ({"label_days": "7"}, "label_days", "integer ≥ 1"),
    ({"working_dir": "/tmp", "staging_uri": None}, "staging_uri", "required with working_dir"),
    ({"staging_uri": None}, "staging_uri", "required to ship the cluster-side code"),
    ({"ship_cluster_package": "yes"}, "ship_cluster_package", "True or False"),
    ({"cluster_pip": "xgboost"}, "cluster_pip", "list of requirement strings"),
    ({"teardown_timeout": 0}, "teardown_timeout", "seconds > 0"),
    ({"teardown_poke_interval": "5"}, "teardown_poke_interval", "seconds > 0"),
    ({"spark_mode": "spark_operator", "spark_application_template": "/nonexistent.yaml"},
     "spark_application_template", "existing YAML file"),
    ({"gate_metric": "f1"}, "gate_metric", "one of ['accuracy', 'auc', 'logloss']"),
    ({"promotion_margin": -0.01}, "promotion_margin", "finite number ≥ 0"),
    ({"promotion_margin": "a lot"}, "promotion_margin", "finite number ≥ 0"),
    ({"asset_tables": {"model": "p-1.d.t"}}, "asset_tables", "keys must be among"),
    ({"asset_tables": ["p-1.d.t"]}, "asset_tables", "mapping of role to table name"),
])  # fmt: skip
def test_bad_parameters_are_rejected_naming_the_parameter(overrides: dict[str, Any], parameter: str, rule: str) -> None:
    with pytest.raises(InvalidParameterError) as exc:
        build(**overrides)
    assert exc.value.parameter == parameter
    assert str(exc.value).startswith(f"Invalid {parameter}=")
    assert rule in str(exc.value)
    shown = overrides.get(parameter)
    if shown is not None:
        assert repr(shown) in str(exc.value)


def test_choose_spark_mode() -> None:
    assert choose_spark_mode("spark_operator") == "spark_operator"
    with pytest.raises(InvalidParameterError, match="spark_mode=''"):
        choose_spark_mode("")


def test_render_spark_application(tmp_path: Path) -> None:
    manifest = render_spark_application(
        DEFAULT_SPARK_TEMPLATE, name="etl", namespace="ns", image="img:1", main_application_file="local:///x.py",
        arguments=["--start", "{{ ds }}"], spark_version="4.0.1", shuffle_partitions="8", service_account="spark",
        driver_cores=1, driver_memory="2g", executor_cores=1, executor_instances=2, executor_memory="2g",
        env=[{"name": "A", "value": "b"}],
    )  # fmt: skip
    assert manifest["metadata"] == {"name": "etl", "namespace": "ns",
                                    "labels": {"app.kubernetes.io/part-of": "kuberay-retraining"}}
    assert manifest["spec"]["arguments"] == ["--start", "{{ ds }}"]  # Airflow's templates survive the first pass
    assert manifest["spec"]["driver"]["env"] == [{"name": "A", "value": "b"}]
    missing = tmp_path / "missing.yaml"
    missing.write_text("kind: SparkApplication\nspec: {image: ${image}, other: ${not_provided}}\n")
    with pytest.raises(InvalidParameterError, match=r"spark_application_template=.*uses \$\{not_provided\}"):
        render_spark_application(missing, image="i")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("kind: Pod\n")
    with pytest.raises(InvalidParameterError, match="must be a SparkApplication manifest"):
        render_spark_application(wrong)


def test_spark_application_operator_rejects_bad_input() -> None:
    from kuberay_provider.pipelines.spark import SparkApplicationOperator

    with pytest.raises(InvalidParameterError, match=r"template_spec=.*SparkApplication manifest"):
        SparkApplicationOperator(task_id="s", template_spec={"kind": "Pod"})
    with pytest.raises(InvalidParameterError, match=r"spark_kubernetes_kwargs=.*deferrable is not supported"):
        SparkApplicationOperator(task_id="s", template_spec={"kind": "SparkApplication"},
                                 spark_kubernetes_kwargs={"deferrable": True})


# ----------------------------------------------------------------------------------------------- parse-time cost
PROBE = textwrap.dedent("""
    import importlib.util, json, sys
    import airflow  # on Airflow 2 this alone imports kubernetes: judge what the DAG adds on top of it
    baseline = set(sys.modules)
    spec = importlib.util.spec_from_file_location("ray_retraining", {path!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    heavy = sorted(m for m in set(sys.modules) - baseline
                   if m.split(".")[0] in ("ray", "kubernetes", "kubernetes_asyncio", "pyspark")
                   or m.startswith(("google.cloud.bigquery", "google.cloud.storage")))
    print(json.dumps({{"heavy": heavy, "tasks": sorted(module.dag.task_dict)}}))
""")


def test_parsing_the_retraining_dag_imports_nothing_heavy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run([sys.executable, "-c", PROBE.format(path=str(REPO / "dags" / "ray_retraining.py"))],
                            env=env, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["heavy"] == []
    assert probe["tasks"] == ["churn.choose_etl", "churn.confirm_teardown", "churn.etl_local",
                              "churn.etl_spark_operator", "churn.stage_cluster_package", "churn.train"]
