"""The BigQuery tables of the churn pipeline and their columns, as the jobs write them (standard library only).

The columns are what OpenLineage reports as each table's schema facet (:mod:`kuberay_provider.lineage`); the
end-to-end lineage test compares them with the tables the jobs actually create in BigQuery, so a job that changes
its output changes this contract or fails that test. Types are BigQuery standard SQL names.
"""

from __future__ import annotations

from collections.abc import Mapping

from kuberay_provider.pipelines.jobs.features import FEATURE_COLUMNS, LABEL_COLUMN

Columns = tuple[tuple[str, str], ...]

_FLOAT_FEATURES = {"spend_total", "spend_avg", "recency_days", "trend_7d", "ticket_share", "tenure_days"}

#: raw events (``pipelines.seed``), read by the ETL
EVENTS: Columns = (("event_id", "INT64"), ("customer_id", "INT64"), ("event_ts", "TIMESTAMP"),
                   ("event_type", "STRING"), ("session_id", "INT64"), ("amount", "FLOAT64"))
#: raw customers (``pipelines.seed``), read by the ETL
CUSTOMERS: Columns = (("customer_id", "INT64"), ("signup_ts", "TIMESTAMP"), ("plan", "STRING"),
                      ("country", "STRING"), ("age", "INT64"))
#: features, written by the ETL (``jobs/churn_etl.py``), read by training
FEATURES: Columns = (
    ("customer_id", "INT64"), ("snapshot_ts", "TIMESTAMP"),
    *((c, "FLOAT64" if c in _FLOAT_FEATURES else "INT64") for c in FEATURE_COLUMNS),
    ("plan", "STRING"), ("country", "STRING"), (LABEL_COLUMN, "INT64"), ("window_end", "TIMESTAMP"),
)  # fmt: skip
#: metrics, appended by training (``jobs/churn_train.py``): one row per split and run (``trained_at`` is a
#: DATETIME: Ray Data turns the job's UTC datetimes into a timestamp without time zone)
METRICS: Columns = (
    ("run_id", "STRING"), ("split", "STRING"), ("trained_at", "DATETIME"), ("features_table", "STRING"),
    ("model_uri", "STRING"), ("num_workers", "INT64"), ("num_boost_round", "INT64"), ("training_seconds", "FLOAT64"),
    ("auc", "FLOAT64"), ("logloss", "FLOAT64"), ("accuracy", "FLOAT64"), ("positive_rate", "FLOAT64"),
    ("rows", "INT64"),
)  # fmt: skip
#: predictions, overwritten by training: one row per feature row
PREDICTIONS: Columns = (
    ("customer_id", "INT64"), ("snapshot_ts", "TIMESTAMP"), (LABEL_COLUMN, "INT64"), ("split", "STRING"),
    ("churn_probability", "FLOAT64"), ("predicted_churn", "INT64"), ("run_id", "STRING"), ("model_uri", "STRING"),
)  # fmt: skip

#: columns by table role
TABLE_COLUMNS: Mapping[str, Columns] = {"events": EVENTS, "customers": CUSTOMERS, "features": FEATURES,
                                        "metrics": METRICS, "predictions": PREDICTIONS}

__all__ = ("CUSTOMERS", "EVENTS", "FEATURES", "METRICS", "PREDICTIONS", "TABLE_COLUMNS", "Columns")
