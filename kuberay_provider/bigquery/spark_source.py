"""The ``bigquery`` Spark 4 Python Data Source over the BigQuery Storage Read / Write APIs (runs inside Spark jobs).

Usage::

    from kuberay_provider.bigquery.spark_source import register
    register(spark)
    df = (spark.read.format("bigquery").option("table", "ds.events")
          .option("columns", "id,label").option("filter", "label = 1").load())
    df.write.format("bigquery").option("table", "ds.out").mode("overwrite").save()

Options (case-insensitive):
    ``table`` (required): ``dataset.table`` or ``project.dataset.table``.
    ``columns``: comma-separated columns to read (pushed into the read session).
    ``filter``: a BigQuery SQL boolean expression (``row_restriction``); ANDed with filters Spark pushes down.
    ``parallelism``: number of read streams requested (one Spark partition per stream; default 8).
    ``project``, ``location``, ``rest_endpoint``, ``grpc_endpoint``, ``credentials_file``, ``credentials_info``:
    connection settings (:meth:`BigQueryConfig.to_options`); without ``project`` the ``KUBERAY_BQ_*`` environment
    of the driver is used.

Writes: every Spark task appends to its own PENDING stream; ``commit()`` on the driver commits all of them in one
``BatchCommitWriteStreams`` (and swaps the staging table in for ``mode("overwrite")``); ``abort()`` commits
nothing and leaves the table untouched. Spark's simple comparisons (=, <, <=, >, >=, IN, IS [NOT] NULL, NOT =,
LIKE 'x%') are pushed down when ``spark.sql.python.filterPushdown.enabled`` is true (``register`` sets it).

Production users may instead use Google's spark-bigquery-connector jar (``format("bigquery")`` from the JVM),
which has the same Storage API design with more features; this source exists so the same code runs against the
local emulator and needs no jar.
"""

from __future__ import annotations

import datetime
import decimal
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    EqualTo,
    Filter,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    InputPartition,
    IsNotNull,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Not,
    StringStartsWith,
    WriterCommitMessage,
)
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

from kuberay_provider.bigquery import storage
from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.errors import InvalidParameterError

NAME = "bigquery"
DEFAULT_PARALLELISM = 8


def register(spark: Any) -> None:
    """Register the ``bigquery`` data source on ``spark`` and enable Python filter pushdown."""
    spark.dataSource.register(BigQueryDataSource)
    spark.conf.set("spark.sql.python.filterPushdown.enabled", "true")


def stop_spark(spark: Any, timeout: float = 20.0) -> None:
    """Stop ``spark`` and the py4j gateway JVM behind it.

    ``SparkSession.stop()`` leaves the gateway JVM running until the Python interpreter exits; a long-lived driver
    process (a test session, a notebook, a benchmark) that starts several sessions would keep one JVM per session.
    """
    import contextlib

    from pyspark import SparkContext

    gateway = SparkContext._gateway
    spark.stop()
    proc = getattr(gateway, "proc", None)
    if gateway is not None:
        with contextlib.suppress(Exception):
            gateway.shutdown()
    if proc is not None:
        with contextlib.suppress(Exception):
            proc.stdin.close()  # the gateway JVM exits when its stdin closes
        try:
            proc.wait(timeout)
        except Exception:
            proc.kill()
            proc.wait(5)
    SparkContext._gateway = None
    SparkContext._jvm = None


def _option(options: dict[str, str], key: str) -> str | None:
    for k, v in options.items():
        if k.lower() == key:
            return v
    return None


class BigQueryDataSource(DataSource):
    """``spark.read.format("bigquery")`` / ``df.write.format("bigquery")``."""

    @classmethod
    def name(cls) -> str:
        return NAME

    def _config(self) -> BigQueryConfig:
        return BigQueryConfig.from_options(dict(self.options))

    def _table(self) -> str:
        table = _option(self.options, "table") or _option(self.options, "path")
        if not table:
            raise InvalidParameterError("table", table, "set .option('table', 'dataset.table') for format('bigquery')")
        return table

    def _columns(self) -> list[str] | None:
        raw = _option(self.options, "columns")
        return [c.strip() for c in raw.split(",") if c.strip()] if raw else None

    def schema(self) -> StructType:
        config = self._config()
        ref = storage.TableRef.parse(self._table(), config)
        arrow = storage.table_arrow_schema(config, ref)
        columns = self._columns()
        if columns is not None:
            lowered = {n.lower(): n for n in arrow.names}
            unknown = [c for c in columns if c.lower() not in lowered]
            if unknown:  # same message as a Ray read
                storage.plan_read(config, ref, columns=columns)
            arrow = pa.schema([arrow.field(lowered[c.lower()]) for c in columns])
        # every column nullable: the Storage API's Arrow schema does not carry REQUIRED
        return from_arrow_schema(pa.schema([f.with_nullable(True) for f in arrow]), prefer_timestamp_ntz=True)

    def reader(self, schema: StructType) -> BigQueryReader:
        parallelism = _option(self.options, "parallelism")
        return BigQueryReader(
            self._config(),
            self._table(),
            columns=list(schema.fieldNames()),
            arrow_schema=to_arrow_schema(schema, timezone="UTC"),
            row_filter=_option(self.options, "filter"),
            parallelism=int(parallelism) if parallelism else DEFAULT_PARALLELISM,
        )

    def writer(self, schema: StructType, overwrite: bool) -> BigQueryWriter:
        return BigQueryWriter(self._config(), self._table(), schema, "overwrite" if overwrite else "append")


@dataclass(frozen=True)
class StreamPartition(InputPartition):
    """One Storage Read stream (with its session's plan: read() runs on a copy of the reader without it)."""

    stream: str
    plan: storage.ReadPlan


class BigQueryReader(DataSourceReader):
    """One Spark partition per Storage Read stream, yielding Arrow record batches."""

    def __init__(
        self,
        config: BigQueryConfig,
        table: str,
        *,
        columns: Sequence[str],
        arrow_schema: pa.Schema,
        row_filter: str | None,
        parallelism: int,
    ) -> None:
        self.config = config
        self.arrow_schema = arrow_schema  # what Spark expects back (e.g. time64[ns], list items named "element")
        self.table = table
        self.columns = list(columns)
        self.row_filter = row_filter
        self.pushed: list[str] = []
        self.parallelism = parallelism

    def pushFilters(self, filters: list[Filter]) -> Iterator[Filter]:
        self.pushed = []  # called once per planning with the complete list
        for item in filters:
            sql = filter_to_sql(item)
            if sql is None:
                yield item
            else:
                self.pushed.append(sql)

    @property
    def effective_filter(self) -> str | None:
        """The user's ``filter`` option ANDed with the filters Spark pushed down."""
        parts = [f"({self.row_filter})"] if self.row_filter else []
        parts += [f"({p})" for p in self.pushed]
        return " AND ".join(parts) or None

    def partitions(self) -> Sequence[InputPartition]:
        plan = storage.plan_read(
            self.config, self.table, columns=self.columns, row_filter=self.effective_filter, max_streams=self.parallelism
        )
        return [StreamPartition(s, plan) for s in plan.streams]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        if not isinstance(partition, StreamPartition):  # no streams (empty result): Spark passes a placeholder
            return
        target = self.arrow_schema
        for batch in storage.read_stream(self.config, partition.plan, partition.stream):
            if batch.schema.equals(target):
                yield batch
            else:
                yield pa.RecordBatch.from_arrays(
                    [col if col.type == f.type else col.cast(f.type) for col, f in zip(batch.columns, target, strict=True)],
                    schema=target,
                )


def _literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return f"NUMERIC '{value}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return f"DATE '{value.isoformat()}'"
    return None  # timestamps (session time zone), bytes, arrays: Spark evaluates them


def _column(path: tuple[str, ...]) -> str | None:
    return f"`{path[0]}`" if len(path) == 1 and "`" not in path[0] else None


_COMPARISONS = {EqualTo: "=", GreaterThan: ">", GreaterThanOrEqual: ">=", LessThan: "<", LessThanOrEqual: "<="}


def filter_to_sql(item: Filter) -> str | None:
    """A BigQuery SQL predicate for a Spark pushed filter, or None when it is not pushed."""
    column = _column(item.attribute) if hasattr(item, "attribute") else None
    if isinstance(item, Not) and isinstance(item.child, EqualTo):
        inner = filter_to_sql(item.child)
        return f"NOT ({inner})" if inner else None
    if column is None:
        return None
    if type(item) in _COMPARISONS:
        literal = _literal(item.value)
        return f"{column} {_COMPARISONS[type(item)]} {literal}" if literal is not None else None
    if isinstance(item, In):
        literals = [_literal(v) for v in item.value]
        if not literals or any(v is None for v in literals):
            return None
        return f"{column} IN ({', '.join(literals)})"
    if isinstance(item, IsNull):
        return f"{column} IS NULL"
    if isinstance(item, IsNotNull):
        return f"{column} IS NOT NULL"
    if isinstance(item, StringStartsWith):
        literal = _literal(item.value)
        return f"STARTS_WITH({column}, {literal})" if literal else None
    return None


@dataclass
class StreamCommit(WriterCommitMessage):
    """A finalized PENDING stream written by one Spark task."""

    stream: str
    rows: int


class BigQueryWriter(DataSourceArrowWriter):
    """Each task appends Arrow batches to its own PENDING stream; ``commit`` commits all at once on the driver."""

    def __init__(self, config: BigQueryConfig, table: str, schema: StructType, mode: str) -> None:
        self.config = config
        arrow_schema = to_arrow_schema(schema, timezone="UTC")
        self.plan = storage.plan_write(config, table, arrow_schema, mode)  # driver: validate + stage

    def write(self, iterator: Iterator[pa.RecordBatch]) -> StreamCommit:
        result = storage.write_stream(self.config, self.plan, iterator)
        return StreamCommit(result.stream, result.rows)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        results = [storage.StreamResult(m.stream, m.rows) for m in messages if isinstance(m, StreamCommit)]
        storage.commit_write(self.config, self.plan, results)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        storage.abort_write(self.config, self.plan)


def default_parallelism() -> int:
    """Read streams requested when ``parallelism`` is not given."""
    return max(DEFAULT_PARALLELISM, os.cpu_count() or 1)
