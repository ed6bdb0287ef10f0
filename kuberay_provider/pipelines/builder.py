"""``retraining_pipeline``: Spark ETL → Ray training on a transient cluster → confirmation that no cluster is left.

The TaskGroup it returns::

    [choose_etl] ─▶ etl_local / etl_spark_operator ─┐
    stage_cluster_package, [stage_working_dir] ─────┴▶ train ─▶ confirm_teardown (teardown)

- **ETL** runs ``jobs/churn_etl.py`` for the run's window (Airflow templates, rendered per run):
  ``spark_mode="spark_operator"`` submits a SparkApplication from the template in ``templates/`` with the cncf
  provider's ``SparkKubernetesOperator``, imported only when the task runs
  (:class:`~kuberay_provider.pipelines.spark.SparkApplicationOperator`; production, and the local stack's
  spark-operator double);
  ``spark_mode="local"`` runs the same script with ``local[N]`` Spark in the Airflow worker's process tree
  (a BashOperator). That is for laptops and CI only: there the worker *is* the laptop, so the rule "data never
  passes through the Airflow worker" is relaxed on purpose. A templated ``spark_mode`` (e.g. from an Airflow
  Variable) builds both and picks one per run with a branch task.
- **train** is a :class:`~kuberay_provider.operators.rayjob.RayJobOperator` running ``jobs/churn_train.py`` on a
  stock ``rayproject/ray`` image: ``stage_cluster_package`` stages the provider's cluster side (no Airflow in it,
  :data:`~kuberay_provider.pipelines.packaging.CLUSTER_SIDE`) to ``staging_uri`` and the job's runtime_env gets it
  through ``py_modules``, with :data:`~kuberay_provider.pipelines.packaging.CLUSTER_PIP` in ``pip``; the BigQuery
  settings reach it as runtime_env ``env_vars`` (``KUBERAY_BQ_*``). With ``working_dir`` set, a local directory is
  zipped and staged too (see :mod:`kuberay_provider.pipelines.packaging`) and referenced by URI.
- **confirm_teardown** is a :class:`~kuberay_provider.sensors.rayjob.RayClusterDeletedSensor` made a teardown of
  ``train``, so it runs (and fails loudly on leftovers) even when training fails.

**Lineage.** The ETL tasks and ``train`` are the stock operators extended by :mod:`kuberay_provider.pipelines.tasks`:
with Airflow's OpenLineage provider installed, their COMPLETE events report the BigQuery tables they read and write
(raw events and customers → features → metrics and predictions) with their columns
(:mod:`kuberay_provider.pipelines.tables`), and their outlets; without it nothing changes.

Only names, URIs and small JSON summaries travel through XCom. Neither importing this module nor building the
TaskGroup imports ray, pyspark, kubernetes or google.cloud (the cncf provider's Spark operator is imported when the
spark_operator ETL task runs).
"""

from __future__ import annotations

import json
import shlex
import string
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from kuberay_provider.bigquery.names import check_table_name, split_table_name
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.namespaces import DEFAULT_NAMESPACE
from kuberay_provider.pipelines import JOBS_DIR, TEMPLATES_DIR

SPARK_MODES = ("local", "spark_operator")
DEFAULT_SPARK_TEMPLATE = TEMPLATES_DIR / "churn_etl_sparkapplication.yaml"
DEFAULT_SPARK_IMAGE = "apache/spark:4.0.1-python3"
DEFAULT_RAY_IMAGE = "rayproject/ray:2.60.0-py311"
DEFAULT_WINDOW_START = "{{ data_interval_start.isoformat() }}"
DEFAULT_WINDOW_END = "{{ data_interval_end.isoformat() }}"
DEFAULT_LOCAL_SPARK_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "4",
}  # fmt: skip
TRAIN_ENV_DEFAULTS: Mapping[str, str] = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1"}


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _quote(value: Any) -> str:
    """Shell-quote a literal; a Jinja template is quoted as a whole so its rendered value stays one argument."""
    text = str(value)
    if _is_template(text):
        return f"'{text}'" if "'" not in text else f'"{text}"'
    return shlex.quote(text)


def choose_spark_mode(mode: str) -> str:
    """Validate a rendered ``spark_mode``; raises naming the parameter."""
    value = (mode or "").strip()
    if value not in SPARK_MODES:
        raise InvalidParameterError("spark_mode", mode, f"must be one of {list(SPARK_MODES)}")
    return value


def _check_table(param: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterError(param, value, "must be a BigQuery table name, [project.]dataset.table")
    if not _is_template(value):
        check_table_name(value, param=param)  # the rules the job's argparse types and the BigQuery I/O apply


def etl_arguments(*, window_start: str, window_end: str, raw_events_table: str, raw_customers_table: str,
                  features_table: str, label_days: int, bigquery_project: str) -> list[str]:
    """The ``churn_etl.py`` CLI arguments (templated strings; rendered by Airflow per run)."""
    return [
        "--start", window_start, "--end", window_end,
        "--events-table", raw_events_table, "--customers-table", raw_customers_table,
        "--features-table", features_table, "--label-days", str(label_days), "--project", bigquery_project,
    ]  # fmt: skip


def train_arguments(*, features_table: str, metrics_table: str, predictions_table: str, model_uri: str,
                    bigquery_project: str, num_workers: int, num_boost_round: int,
                    run_id: str = "{{ run_id }}", gate_metric: str = "auc", promotion_margin: float | str = 0.0,
                    champion_uri: str | None = None) -> list[str]:
    """The ``churn_train.py`` CLI arguments (templated strings)."""
    return [
        "--features-table", features_table, "--metrics-table", metrics_table,
        "--predictions-table", predictions_table, "--model-uri", model_uri, "--project", bigquery_project,
        "--run-id", run_id, "--num-workers", str(num_workers), "--num-boost-round", str(num_boost_round),
        "--gate-metric", gate_metric, "--promotion-margin", str(promotion_margin),
        *(["--champion-uri", champion_uri] if champion_uri else []),
    ]  # fmt: skip


def default_asset_tables(tables: Mapping[str, str], bigquery_project: str) -> dict[str, str]:
    """The pipeline tables whose names are known when the DAG is parsed (literals), qualified with the project
    when that is a literal too; templated names, and names Airflow cannot make an asset of, are left out (pass
    ``asset_tables`` for them)."""
    from kuberay_provider.pipelines.assets import bigquery_asset

    project = None if _is_template(bigquery_project) else bigquery_project
    chosen = {}
    for role, table in tables.items():
        if _is_template(table):
            continue
        own_project, dataset, name = split_table_name(table, param=f"{role}_table")
        if own_project is None and project is None:
            continue
        qualified = table if own_project is not None else f"{project}.{dataset}.{name}"
        try:
            bigquery_asset(qualified)
        except InvalidParameterError:  # a name Airflow takes for no asset (Airflow 2: ASCII URIs only)
            continue
        chosen[role] = qualified
    return chosen


def render_spark_application(template: str | Path, **values: Any) -> dict[str, Any]:
    """Fill the ``${...}`` placeholders of a SparkApplication template and parse it (Airflow's ``{{ }}`` kept).

    Mappings and lists are inserted as JSON (valid YAML flow style); missing placeholders raise naming them.
    """
    import yaml

    path = Path(template)
    if not path.is_file():
        raise InvalidParameterError("spark_application_template", str(template), "must be an existing YAML file")
    filled = {k: json.dumps(v if isinstance(v, (list, tuple, dict, int, float)) else str(v)) for k, v in values.items()}
    try:
        text = string.Template(path.read_text()).substitute(filled)
    except KeyError as missing:
        raise InvalidParameterError(
            "spark_application_template", str(template), f"uses ${{{missing.args[0]}}}, which the builder does not provide"
        ) from None
    manifest = yaml.safe_load(text)
    if not isinstance(manifest, dict) or manifest.get("kind") != "SparkApplication":
        raise InvalidParameterError("spark_application_template", str(template), "must be a SparkApplication manifest")
    return manifest


def _branch(mode: str, local_task_id: str, operator_task_id: str) -> str:
    """Branch callable: the ETL task id for the rendered ``mode``."""
    return local_task_id if choose_spark_mode(mode) == "local" else operator_task_id


def _stage_cluster_package(staging_uri: str) -> str:
    """Task callable: stage the provider's cluster side; returns the zip URI (small XCom)."""
    from kuberay_provider.pipelines.packaging import stage_cluster_package

    return stage_cluster_package(staging_uri)


def _stage_working_dir(working_dir: str, staging_uri: str) -> str:
    """Task callable: package and stage ``working_dir``; returns the zip URI (small XCom)."""
    from kuberay_provider.pipelines.packaging import build_zip, package_name, stage

    payload = build_zip(working_dir)
    return stage(payload, staging_uri, package_name(payload))


def retraining_pipeline(
    group_id: str = "retraining",
    *,
    raw_events_table: str,
    raw_customers_table: str,
    features_table: str,
    metrics_table: str,
    predictions_table: str,
    model_uri: str,
    bigquery_project: str,
    bigquery_env: Mapping[str, str] | None = None,
    window_start: str = DEFAULT_WINDOW_START,
    window_end: str = DEFAULT_WINDOW_END,
    label_days: int = 7,
    spark_mode: str = "local",
    spark_application_template: str | Path = DEFAULT_SPARK_TEMPLATE,
    spark_image: str = DEFAULT_SPARK_IMAGE,
    spark_main_application_file: str | None = None,
    spark_version: str = "4.0.1",
    spark_service_account: str = "spark",
    spark_driver: Mapping[str, Any] | None = None,
    spark_executor: Mapping[str, Any] | None = None,
    local_spark_master: str = "local[2]",
    local_spark_conf: Mapping[str, str] | None = None,
    python_executable: str | None = None,
    image: str = DEFAULT_RAY_IMAGE,
    head: Mapping[str, Any] | None = None,
    num_workers: int = 2,
    worker_cpu: float = 1,
    worker_memory: str = "2Gi",
    num_boost_round: int = 100,
    train_entrypoint: str | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    working_dir: str | None = None,
    staging_uri: str | None = None,
    ship_cluster_package: bool = True,
    cluster_pip: Sequence[str] | None = None,
    kubernetes_conn_id: str = "kubernetes_default",
    namespace: str | None = None,
    etl_timeout: timedelta = timedelta(hours=1),
    train_timeout: timedelta = timedelta(hours=2),
    teardown_timeout: float = 600.0,
    teardown_poke_interval: float = 5.0,
    rayjob_kwargs: Mapping[str, Any] | None = None,
    asset_tables: Mapping[str, str] | None = None,
    gate_metric: str = "auc",
    promotion_margin: float | str = 0.0,
    champion_uri: str | None = None,
) -> Any:
    """Build the ETL → train → confirm-teardown TaskGroup inside the current DAG context; returns the TaskGroup.

    Table names are ``[project.]dataset.table`` and, like ``model_uri``, ``window_start``/``window_end`` (ISO
    timestamps) and ``bigquery_env`` values, may be Airflow templates rendered per run (``{{ var.value... }}``).

    :param spark_mode: ``"local"``, ``"spark_operator"`` or a template rendering to one of them per run.
    :param bigquery_env: extra environment for both jobs, e.g. ``KUBERAY_BQ_REST_ENDPOINT`` for the emulator;
        ``KUBERAY_BQ_PROJECT`` is set from ``bigquery_project``.
    :param spark_application_template: a SparkApplication YAML with ``${...}`` placeholders (see the default).
    :param spark_main_application_file: the ETL script as the Spark image sees it; default: the installed
        ``churn_etl.py`` as ``local://`` (right for the local stack and images that install this provider).
    :param python_executable: interpreter for ``spark_mode="local"``; default the DAG processor's.
    :param head: Ray head resources (default 1 CPU, 2Gi); ``num_workers`` worker pods of ``worker_cpu``/
        ``worker_memory`` host the Ray Train workers (``--num-workers``, one CPU each).
    :param train_entrypoint: override the training command (default ``python -m ...churn_train`` with its args).
    :param working_dir: a local directory zipped and staged to ``staging_uri`` at run time and used as the job's
        runtime_env ``working_dir`` (K8sJobMode cannot upload local directories).
    :param staging_uri: where packages are staged at run time (``gs://bucket/path`` on GKE; a local path or
        ``file://`` where Ray runs on the same machine); required unless nothing is shipped.
    :param ship_cluster_package: stage the provider's cluster side and add it to the job's runtime_env
        ``py_modules``, so a stock ``rayproject/ray`` image runs the job; ``False`` for an image that installs it.
    :param cluster_pip: requirements added to the job's runtime_env ``pip`` (default
        :data:`~kuberay_provider.pipelines.packaging.CLUSTER_PIP`, what the job needs beyond a stock Ray image;
        ``()`` for an image that has them). Entries the runtime_env already names win; a runtime_env using ``uv``,
        ``conda`` or a requirements file is left as it is.
    :param teardown_timeout: seconds ``confirm_teardown`` waits for the training cluster to be gone before failing.
    :param teardown_poke_interval: seconds between its checks.
    :param rayjob_kwargs: extra :class:`RayJobOperator` arguments (e.g. ``deferrable``, ``ttl_seconds_after_finished``).
    :param asset_tables: ``{"features" | "metrics" | "predictions": "[project.]dataset.table"}``, the literal names
        of the Airflow assets (datasets on Airflow 2) declared as outlets of the tasks that write those tables
        (``bigquery://project/dataset/table``, see :mod:`kuberay_provider.pipelines.assets`): the ETL tasks for
        features, ``train`` for metrics and predictions. Default: the table parameters that are literals; ``{}``
        declares none. Needed for templated table names, since asset URIs are fixed when the DAG is parsed.
    :param gate_metric: the holdout metric of the quality gate: ``auc`` (default), ``accuracy`` or ``logloss``.
    :param promotion_margin: the quality gate's margin (templated, e.g. ``"{{ params.promotion_margin }}"``): the
        new model becomes champion only if its holdout ``gate_metric`` beats the champion's (the newest
        ``split='champion'`` row of ``metrics_table``) by at least this much; otherwise it is kept as a challenger,
        the reason is in the train task's log, and the run still succeeds. See
        :mod:`kuberay_provider.pipelines.jobs.gate`.
    :param champion_uri: the champion pointer the gate writes on promotion (default ``champion.json`` next to
        ``model_uri``'s directory).
    """
    from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator

    from kuberay_provider.compat import TaskGroup
    from kuberay_provider.pipelines.tasks import LocalSparkEtlOperator, SparkEtlOperator, TrainingRayJobOperator
    from kuberay_provider.sensors.rayjob import RayClusterDeletedSensor

    for param, table in (("raw_events_table", raw_events_table), ("raw_customers_table", raw_customers_table),
                         ("features_table", features_table), ("metrics_table", metrics_table),
                         ("predictions_table", predictions_table)):  # fmt: skip
        _check_table(param, table)
    if not isinstance(model_uri, str) or not model_uri.strip():
        raise InvalidParameterError("model_uri", model_uri, "must be a path or URI (gs://bucket/models/churn/...)")
    if not isinstance(bigquery_project, str) or not bigquery_project.strip():
        raise InvalidParameterError("bigquery_project", bigquery_project, "must be a BigQuery project id")
    if not _is_template(spark_mode):
        choose_spark_mode(spark_mode)
    for param, value, minimum in (("num_workers", num_workers, 1), ("num_boost_round", num_boost_round, 1),
                                  ("label_days", label_days, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidParameterError(param, value, f"must be an integer ≥ {minimum}")
    for param, value in (("teardown_timeout", teardown_timeout), ("teardown_poke_interval", teardown_poke_interval)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidParameterError(param, value, "must be a number of seconds > 0")
    if working_dir is not None and not staging_uri:
        raise InvalidParameterError("staging_uri", staging_uri, "is required with working_dir (gs://bucket/path or a local path)")
    if not isinstance(ship_cluster_package, bool):
        raise InvalidParameterError("ship_cluster_package", ship_cluster_package, "must be True or False")
    if ship_cluster_package and not staging_uri:
        raise InvalidParameterError(
            "staging_uri", staging_uri, "is required to ship the cluster-side code through runtime_env py_modules "
            "(gs://bucket/path, or a local path for the local stack); or pass ship_cluster_package=False with an "
            "image that installs it")
    if cluster_pip is not None and (isinstance(cluster_pip, str) or not all(isinstance(r, str) for r in cluster_pip)):
        raise InvalidParameterError("cluster_pip", cluster_pip, "must be a list of requirement strings")
    from kuberay_provider.pipelines.assets import pipeline_assets
    from kuberay_provider.pipelines.jobs.gate import GATE_METRICS, check_margin

    if gate_metric not in GATE_METRICS:
        raise InvalidParameterError("gate_metric", gate_metric, f"must be one of {sorted(GATE_METRICS)}")
    if not _is_template(promotion_margin):
        try:
            check_margin(promotion_margin)
        except ValueError:
            raise InvalidParameterError("promotion_margin", promotion_margin,
                                        "must be a finite number ≥ 0 (or a template rendering to one)") from None
    if asset_tables is not None and not isinstance(asset_tables, Mapping):
        raise InvalidParameterError("asset_tables", asset_tables, "must be a mapping of role to table name")
    assets = pipeline_assets(default_asset_tables(
        {"features": features_table, "metrics": metrics_table, "predictions": predictions_table}, bigquery_project,
    ) if asset_tables is None else asset_tables)  # fmt: skip

    env = {"KUBERAY_BQ_PROJECT": bigquery_project, **dict(bigquery_env or {})}
    modes = SPARK_MODES if _is_template(spark_mode) else (spark_mode,)

    with TaskGroup(group_id=group_id) as group:
        def full_id(task_id: str) -> str:
            return group.child_id(task_id)

        etl_args = etl_arguments(
            window_start=window_start, window_end=window_end, raw_events_table=raw_events_table,
            raw_customers_table=raw_customers_table, features_table=features_table, label_days=label_days,
            bigquery_project=bigquery_project,
        )  # fmt: skip
        etl_tasks = []
        etl_lineage = {  # reported to OpenLineage (kuberay_provider.lineage) when the provider is installed
            "bigquery_inputs": [{"table": raw_events_table, "schema": "events"},
                                {"table": raw_customers_table, "schema": "customers"}],
            "bigquery_outputs": [{"table": features_table, "schema": "features"}],
            "bigquery_project": bigquery_project,
        }
        if "local" in modes:
            conf = {**DEFAULT_LOCAL_SPARK_CONF, **dict(local_spark_conf or {})}
            python = python_executable or sys.executable
            command = [python, str(JOBS_DIR / "churn_etl.py"), *etl_args,
                       "--master", local_spark_master, *[x for k, v in conf.items() for x in ("--conf", f"{k}={v}")]]
            etl_tasks.append(LocalSparkEtlOperator(
                task_id="etl_local",
                bash_command=" ".join(_quote(part) for part in command),
                env={**env, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": python},
                append_env=True,
                execution_timeout=etl_timeout,
                outlets=[assets["features"]] if "features" in assets else [],
                doc_md="Runs churn_etl.py with local Spark in the worker (dev/CI only). Pushes its JSON summary.",
                **etl_lineage,
            ))  # fmt: skip
        if "spark_operator" in modes:
            main_file = spark_main_application_file or f"local://{JOBS_DIR / 'churn_etl.py'}"
            manifest = render_spark_application(
                spark_application_template, name="churn-etl", namespace=namespace or DEFAULT_NAMESPACE, image=spark_image,
                main_application_file=main_file, arguments=etl_args, spark_version=spark_version,
                shuffle_partitions="8", service_account=spark_service_account,
                driver_cores=(spark_driver or {}).get("cores", 1), driver_memory=(spark_driver or {}).get("memory", "2g"),
                executor_cores=(spark_executor or {}).get("cores", 1),
                executor_instances=(spark_executor or {}).get("instances", 2),
                executor_memory=(spark_executor or {}).get("memory", "2g"),
                env=[{"name": k, "value": v} for k, v in env.items()],
            )  # fmt: skip
            if namespace is None:  # resolved at run time like every task's: the connection's, else default
                manifest.get("metadata", {}).pop("namespace", None)
            etl_tasks.append(SparkEtlOperator(
                task_id="etl_spark_operator",
                template_spec=manifest,
                namespace=namespace,
                kubernetes_conn_id=kubernetes_conn_id,
                get_logs=True,
                delete_on_termination=True,
                execution_timeout=etl_timeout,
                outlets=[assets["features"]] if "features" in assets else [],
                **etl_lineage,
            ))  # fmt: skip

        from kuberay_provider.pipelines.packaging import CLUSTER_PIP, with_pip, with_py_modules

        train_env = with_pip(runtime_env, CLUSTER_PIP if cluster_pip is None else cluster_pip)
        train_env["env_vars"] = {**TRAIN_ENV_DEFAULTS, **env, **dict(train_env.get("env_vars") or {})}
        upstream: list[Any] = list(etl_tasks)
        if ship_cluster_package:
            upstream.append(PythonOperator(
                task_id="stage_cluster_package", python_callable=_stage_cluster_package,
                op_kwargs={"staging_uri": staging_uri},
                doc_md="Stages the provider's cluster side (no Airflow) for the training job's runtime_env py_modules.",
            ))  # fmt: skip
            train_env = with_py_modules(
                train_env, "{{ ti.xcom_pull(task_ids='" + full_id("stage_cluster_package") + "') }}")
        if working_dir is not None:
            stage_task = PythonOperator(
                task_id="stage_working_dir", python_callable=_stage_working_dir,
                op_kwargs={"working_dir": working_dir, "staging_uri": staging_uri},
            )  # fmt: skip
            train_env["working_dir"] = "{{ ti.xcom_pull(task_ids='" + full_id("stage_working_dir") + "') }}"
            upstream.append(stage_task)

        entrypoint = train_entrypoint or " ".join(
            _quote(p) for p in ["python", "-m", "kuberay_provider.pipelines.jobs.churn_train", *train_arguments(
                features_table=features_table, metrics_table=metrics_table, predictions_table=predictions_table,
                model_uri=model_uri, bigquery_project=bigquery_project, num_workers=num_workers,
                num_boost_round=num_boost_round, gate_metric=gate_metric, promotion_margin=promotion_margin,
                champion_uri=champion_uri)]
        )  # fmt: skip
        train = TrainingRayJobOperator(
            task_id="train",
            entrypoint=entrypoint,
            image=image,
            head=dict(head or {"cpu": 1, "memory": "2Gi"}),
            worker_groups=[{"name": "train", "replicas": num_workers, "cpu": worker_cpu, "memory": worker_memory}],
            runtime_env=train_env,
            namespace=namespace,
            kubernetes_conn_id=kubernetes_conn_id,
            execution_timeout=train_timeout,
            trigger_rule="none_failed_min_one_success",
            bigquery_inputs=[{"table": features_table, "schema": "features"}],
            bigquery_outputs=[{"table": metrics_table, "schema": "metrics"},
                              {"table": predictions_table, "schema": "predictions"}],
            bigquery_project=bigquery_project,
            **{**dict(rayjob_kwargs or {}), "outlets": [  # the user's outlets (rayjob_kwargs) are added to ours
                *(assets[role] for role in ("metrics", "predictions") if role in assets),
                *(dict(rayjob_kwargs or {}).get("outlets") or [])]},
        )
        confirm = RayClusterDeletedSensor(
            task_id="confirm_teardown",
            rayjob_name="{{ ti.xcom_pull(task_ids='" + full_id("train") + "', key='rayjob_name') }}",
            namespace=namespace,
            kubernetes_conn_id=kubernetes_conn_id,
            poke_interval=teardown_poke_interval,
            timeout=teardown_timeout,
        )
        if len(modes) > 1:
            choose = BranchPythonOperator(
                task_id="choose_etl", python_callable=_branch,
                op_kwargs={"mode": spark_mode, "local_task_id": full_id("etl_local"),
                           "operator_task_id": full_id("etl_spark_operator")},
            )  # fmt: skip
            choose >> etl_tasks
        upstream >> train
        train >> confirm.as_teardown(setups=train)
    return group


__all__: Sequence[str] = ("SPARK_MODES", "choose_spark_mode", "default_asset_tables", "etl_arguments",
                          "render_spark_application", "retraining_pipeline", "train_arguments")  # fmt: skip
