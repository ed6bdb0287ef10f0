"""PySpark ETL: raw BigQuery events → one row of churn features per customer, written back to BigQuery.

Windows, for ``--start S --end E --label-days L`` (cutoff ``C = E - L days``):

- features come from events in ``[S, C)`` (counts by type, sessions, active days, spend, recency, a 7-day trend,
  support-ticket share) joined with the customer's attributes (plan, age, tenure);
- ``label`` is 1 (churned) when a customer active in ``[S, C)`` has no event in ``[C, E)``, else 0.

The same script runs under spark-operator (``spark-submit`` sets the master) and locally (``local[*]`` unless
``--master`` says otherwise). Reads and writes go through the ``bigquery`` Spark data source of
:mod:`kuberay_provider.bigquery.spark_source`; the event window is pushed down as a row filter. Connection settings
come from ``KUBERAY_BQ_*`` / ``GOOGLE_APPLICATION_CREDENTIALS`` (see :class:`~kuberay_provider.bigquery.config.BigQueryConfig`).

Prints a one-line JSON summary (tables, window, events read, feature rows written, churn rate, seconds) as its last
stdout line (the BashOperator of the local ETL task pushes it to XCom).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kuberay_provider.pipelines.jobs._cli import (
    check_window,
    positive_int_arg,
    print_summary,
    qualify,
    table_arg,
    timestamp_arg,
)
from kuberay_provider.pipelines.jobs.features import LABEL_COLUMN

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from kuberay_provider.bigquery.config import BigQueryConfig


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the CLI; errors name the argument."""
    parser = argparse.ArgumentParser(prog="churn_etl.py", description="Churn features from raw BigQuery events (PySpark).")
    parser.add_argument("--start", type=timestamp_arg("--start"), required=True, help="window start (ISO-8601)")
    parser.add_argument("--end", type=timestamp_arg("--end"), required=True, help="window end, exclusive (ISO-8601)")
    parser.add_argument("--events-table", type=table_arg("--events-table"), required=True, help="[project.]dataset.table")
    parser.add_argument("--customers-table", type=table_arg("--customers-table"), required=True)
    parser.add_argument("--features-table", type=table_arg("--features-table"), required=True, help="output table")
    parser.add_argument("--label-days", type=positive_int_arg("--label-days"), default=7,
                        help="days at the end of the window that decide the label (default 7)")
    parser.add_argument("--project", default=None, help="BigQuery project (default $KUBERAY_BQ_PROJECT)")
    parser.add_argument("--master", default=None, help="Spark master; default: spark-submit's, else local[*]")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf (repeatable)")
    args = parser.parse_args(argv)
    check_window(parser, args.start, args.end)
    if args.end - timedelta(days=args.label_days) <= args.start:
        parser.error(f"--label-days={args.label_days} leaves no feature window between --start and --end")
    for item in args.conf:
        if "=" not in item or not item.split("=", 1)[0].strip():
            parser.error(f"--conf={item!r}: expected KEY=VALUE")
    return args


def spark_session(app_name: str, master: str | None, conf: Sequence[str]) -> SparkSession:
    """A SparkSession; ``local[*]`` unless a master is given or the script runs under spark-submit."""
    from pyspark.sql import SparkSession

    under_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not under_spark_submit:
        # Plain `python churn_etl.py`: Python workers must run this interpreter (it has this package and pyarrow),
        # not whatever `python3` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC")
    if master:
        builder = builder.master(master)
    elif not under_spark_submit:
        builder = builder.master("local[*]")
    for item in conf:
        key, value = item.split("=", 1)
        builder = builder.config(key.strip(), value)
    return builder.getOrCreate()


def _sql_ts(value: datetime) -> str:
    return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}+00'"


def read_table(spark: SparkSession, config: BigQueryConfig, table: str, *, columns: Sequence[str] | None = None,
               row_filter: str | None = None) -> DataFrame:
    """Read a BigQuery table through the ``bigquery`` data source (columns and filter pushed down)."""
    reader = spark.read.format("bigquery").options(**config.to_options()).option("table", table)
    if columns:
        reader = reader.option("columns", ",".join(columns))
    if row_filter:
        reader = reader.option("filter", row_filter)
    return reader.load()


def build_features(events: DataFrame, customers: DataFrame, *, cutoff: datetime, end: datetime) -> DataFrame:
    """Per-customer features from ``events`` before ``cutoff`` and the churn label from ``[cutoff, end)``.

    ``events`` must already be limited to the whole window; customers without events before the cutoff are left out.
    """
    from pyspark.sql import functions as F

    cutoff_col = F.lit(cutoff).cast("timestamp")
    day = 86400.0
    history = events.where(F.col("event_ts") < cutoff_col)
    outcome = events.where(F.col("event_ts") >= cutoff_col).select("customer_id").distinct().withColumn("_seen", F.lit(1))
    age_days = (cutoff_col.cast("double") - F.col("event_ts").cast("double")) / day

    def count_type(kind: str) -> Any:
        return F.sum(F.when(F.col("event_type") == kind, 1).otherwise(0))

    per_customer = history.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("n_events"),
        F.countDistinct("session_id").alias("n_sessions"),
        F.countDistinct(F.to_date("event_ts")).alias("active_days"),
        count_type("login").alias("n_logins"),
        count_type("page_view").alias("n_page_views"),
        count_type("purchase").alias("n_purchases"),
        count_type("support_ticket").alias("n_support_tickets"),
        F.sum(F.when(F.col("event_type") == "purchase", F.col("amount")).otherwise(0.0)).alias("spend_total"),
        F.min(age_days).alias("recency_days"),
        F.sum(F.when(age_days < 7, 1).otherwise(0)).alias("events_last_7d"),
        F.sum(F.when((age_days >= 7) & (age_days < 14), 1).otherwise(0)).alias("events_prev_7d"),
    )
    features = (
        per_customer.join(customers, "customer_id", "left")
        .join(outcome, "customer_id", "left")
        .select(
            F.col("customer_id").cast("long"),
            cutoff_col.alias("snapshot_ts"),
            *[F.col(c).cast("long") for c in ("n_events", "n_sessions", "active_days", "n_logins", "n_page_views",
                                              "n_purchases", "n_support_tickets")],
            F.round(F.col("spend_total"), 2).cast("double").alias("spend_total"),
            F.round(F.when(F.col("n_purchases") > 0, F.col("spend_total") / F.col("n_purchases")).otherwise(0.0), 2)
            .cast("double").alias("spend_avg"),
            F.round("recency_days", 4).cast("double").alias("recency_days"),
            F.col("events_last_7d").cast("long"),
            F.col("events_prev_7d").cast("long"),
            F.round((F.col("events_last_7d") + 1) / (F.col("events_prev_7d") + 1), 4).cast("double").alias("trend_7d"),
            F.round(F.col("n_support_tickets") / F.col("n_events"), 4).cast("double").alias("ticket_share"),
            F.round((cutoff_col.cast("double") - F.col("signup_ts").cast("double")) / day, 2).cast("double")
            .alias("tenure_days"),
            F.col("age").cast("long"),
            (F.col("plan") == "standard").cast("long").alias("plan_standard"),
            (F.col("plan") == "premium").cast("long").alias("plan_premium"),
            F.col("plan"),
            F.col("country"),
            F.when(F.col("_seen").isNull(), 1).otherwise(0).cast("long").alias(LABEL_COLUMN),
            F.lit(end).cast("timestamp").alias("window_end"),
        )
    )
    return features


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the ETL for parsed ``args``; returns the summary printed by :func:`main`."""
    from kuberay_provider.bigquery.config import BigQueryConfig
    from kuberay_provider.bigquery.spark_source import register

    began = time.monotonic()
    config = BigQueryConfig.from_env(**({"project": args.project} if args.project else {}))
    events_table, customers_table, features_table = (
        qualify(t, config.project) for t in (args.events_table, args.customers_table, args.features_table)
    )
    cutoff = args.end - timedelta(days=args.label_days)
    spark = spark_session("churn_etl", args.master, args.conf)
    try:
        register(spark)
        window = f"event_ts >= {_sql_ts(args.start)} AND event_ts < {_sql_ts(args.end)}"
        # Cached: the features use the window twice (history and label), and the count is the "rows read" figure.
        events = read_table(spark, config, events_table,
                            columns=["customer_id", "event_ts", "event_type", "session_id", "amount"],
                            row_filter=window).cache()
        events_read = events.count()
        customers = read_table(spark, config, customers_table, columns=["customer_id", "signup_ts", "plan", "age", "country"])
        features = build_features(events, customers, cutoff=cutoff, end=args.end).cache()
        stats = features.agg({"*": "count", LABEL_COLUMN: "avg"}).collect()[0]
        rows, churn_rate = int(stats[0]), float(stats[1] or 0.0)
        features.write.format("bigquery").options(**config.to_options()).option("table", features_table).mode(
            "overwrite"
        ).save()
        features.unpersist()
        events.unpersist()
    finally:
        spark.stop()
    return {
        "job": "churn_etl", "events_table": events_table, "customers_table": customers_table,
        "features_table": features_table, "start": args.start.isoformat(), "cutoff": cutoff.isoformat(),
        "end": args.end.isoformat(), "events_read": events_read, "rows": rows, "churn_rate": round(churn_rate, 4),
        "seconds": round(time.monotonic() - began, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    summary = run(parse_args(argv))
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
