"""Weekly churn retraining: Spark ETL from raw BigQuery tables → XGBoost on a transient Ray cluster → BigQuery.

Deployable unchanged to a Composer bucket and to the local stack; only Airflow connections and Variables differ,
and every Variable is read per run through templates (never when the file is parsed):

==============================  =======================================  ==========================================
Variable                        meaning                                  default
==============================  =======================================  ==========================================
kuberay_bq_project              BigQuery project                         local-project
kuberay_bq_raw_dataset          dataset with ``events``/``customers``    churn_raw
kuberay_bq_dataset              dataset for features/metrics/predictions churn
kuberay_bq_rest_endpoint        emulator REST endpoint (local only)      "" (real BigQuery)
kuberay_bq_grpc_endpoint        emulator Storage gRPC endpoint (local)   "" (real BigQuery)
kuberay_model_root              where models go (gs://… on GKE)          /tmp/kuberay-models/churn
kuberay_staging_uri             where the job's code is staged (gs://…)  /tmp/kuberay-staging
kuberay_spark_mode              local | spark_operator                   local
kuberay_namespace               Kubernetes namespace for Ray and Spark   default
==============================  =======================================  ==========================================

On the local stack, ``kuberay-local up --dir DIR`` writes the emulator's values into DIR/env as
``AIRFLOW_VAR_KUBERAY_BQ_PROJECT``, ``AIRFLOW_VAR_KUBERAY_BQ_REST_ENDPOINT``, ``AIRFLOW_VAR_KUBERAY_BQ_GRPC_ENDPOINT``
and ``AIRFLOW_VAR_KUBERAY_MODEL_ROOT`` (``source DIR/env``; ``scripts/demo.sh`` runs this DAG that way).

**Assets.** The features, metrics and predictions tables are Airflow assets (datasets on Airflow 2),
``bigquery://<project>/<dataset>/<table>``, outlets of the ETL and train tasks; ``dags/churn_predictions_report.py``
is scheduled on the predictions. Asset URIs are fixed at parse time, so they read ``kuberay_bq_project`` and
``kuberay_bq_dataset`` only from the environment (``AIRFLOW_VAR_KUBERAY_BQ_PROJECT``/``_DATASET``), else the defaults.

**Quality gate.** After training, the new model's holdout AUC is compared with the champion's (the newest
``champion`` row of the metrics table): it is promoted (a ``champion`` row, and ``champion.json`` in the model root)
only when better by at least the param ``promotion_margin`` (default 0.0: any improvement); otherwise it stays a
challenger, the reason is in the ``train`` task's log, and the run still succeeds.

The trigger param ``spark_mode`` overrides the Variable for one run. Each run trains on the
``feature_window_days`` (param, default 56) before the end of its data interval; the last ``label_days`` of it
decide the label. Connection: ``kubernetes_default`` (the GKE cluster, or the one ``kuberay-local up`` writes).
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from kuberay_provider.pipelines.assets import churn_asset_tables
from kuberay_provider.pipelines.builder import retraining_pipeline


def var(name: str, default: str) -> str:
    """A template reading Airflow Variable ``name`` at run time."""
    return "{{ var.value.get('" + name + "', '" + default + "') }}"


PROJECT = var("kuberay_bq_project", "local-project")
RAW = var("kuberay_bq_raw_dataset", "churn_raw")
OUT = var("kuberay_bq_dataset", "churn")

with DAG(
    dag_id="ray_retraining",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 9, 28, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["kuberay", "spark", "bigquery", "retraining"],
    params={
        "spark_mode": Param("", type="string", enum=["", "local", "spark_operator"],
                            description="Override the kuberay_spark_mode Variable for this run"),
        "feature_window_days": Param(56, type="integer", minimum=8, description="Days of events used per run"),
        "promotion_margin": Param(0.0, type="number", minimum=0,
                                  description="Promote the new model only if its holdout AUC beats the champion's "
                                              "by at least this much"),
    },
    doc_md=__doc__,
) as dag:
    retraining_pipeline(
        "churn",
        raw_events_table=f"{RAW}.events",
        raw_customers_table=f"{RAW}.customers",
        features_table=f"{OUT}.features",
        metrics_table=f"{OUT}.metrics",
        predictions_table=f"{OUT}.predictions",
        model_uri=var("kuberay_model_root", "/tmp/kuberay-models/churn") + "/{{ data_interval_end.strftime('%Y%m%d') }}",
        staging_uri=var("kuberay_staging_uri", "/tmp/kuberay-staging"),
        bigquery_project=PROJECT,
        bigquery_env={
            "KUBERAY_BQ_REST_ENDPOINT": var("kuberay_bq_rest_endpoint", ""),
            "KUBERAY_BQ_GRPC_ENDPOINT": var("kuberay_bq_grpc_endpoint", ""),
        },
        window_start="{{ (data_interval_end - macros.timedelta(days=params.feature_window_days)).isoformat() }}",
        window_end="{{ data_interval_end.isoformat() }}",
        label_days=7,
        spark_mode="{{ params.spark_mode or var.value.get('kuberay_spark_mode', 'local') }}",
        namespace=var("kuberay_namespace", "default"),
        num_workers=2,
        worker_cpu=1,
        worker_memory="2Gi",
        head={"cpu": 1, "memory": "3Gi"},
        num_boost_round=100,
        rayjob_kwargs={"ttl_seconds_after_finished": 5, "pre_running_deadline_seconds": 600},
        teardown_poke_interval=2,
        asset_tables=churn_asset_tables(),
        promotion_margin="{{ params.promotion_margin }}",
    )
