"""Ray Data reader and writer for BigQuery over the Storage Read / Write APIs (runs inside Ray jobs).

Unlike ``ray.data.read_bigquery`` these take a :class:`BigQueryConfig`, so they work with endpoints
(the emulator), service-account keys and Workload Identity alike, and writes are atomic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from ray.data import Dataset, read_datasource
from ray.data.block import BlockAccessor, BlockMetadata
from ray.data.datasource import Datasink, Datasource, ReadTask

from kuberay_provider.bigquery import storage
from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.errors import InvalidParameterError

if TYPE_CHECKING:
    from ray.data._internal.execution.interfaces import TaskContext
    from ray.data.datasource.datasink import WriteResult

# Read tasks coalesce Storage API record batches into Ray blocks of about this size.
TARGET_BLOCK_BYTES = 64 * 1024 * 1024


def _resolve(config: BigQueryConfig | None) -> BigQueryConfig:
    return config if config is not None else BigQueryConfig.from_env()


class BigQueryDatasource(Datasource):
    """One Ray ReadTask per Storage Read stream; column selection and row filter are pushed into the session."""

    def __init__(
        self,
        config: BigQueryConfig,
        table: str,
        *,
        columns: Sequence[str] | None = None,
        row_filter: str | None = None,
        max_streams: int | None = None,
    ) -> None:
        self._config = config
        self._table = table
        self._columns = list(columns) if columns is not None else None
        self._row_filter = row_filter
        self._max_streams = max_streams
        self._plan: storage.ReadPlan | None = None

    def _read_plan(self, parallelism: int) -> storage.ReadPlan:
        if self._plan is None:
            streams = self._max_streams or max(1, parallelism)
            self._plan = storage.plan_read(
                self._config, self._table, columns=self._columns, row_filter=self._row_filter, max_streams=streams
            )
        return self._plan

    def get_name(self) -> str:
        return "BigQuery"

    def estimate_inmemory_data_size(self) -> int | None:
        return self._plan.estimated_bytes if self._plan is not None else None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, **_: Any) -> list[ReadTask]:
        plan = self._read_plan(parallelism)
        config = self._config
        share = (plan.estimated_bytes or 0) // max(1, len(plan.streams)) or None
        tasks = []
        for stream in plan.streams:
            metadata = BlockMetadata(num_rows=None, size_bytes=share, input_files=None, exec_stats=None)
            tasks.append(
                ReadTask(
                    lambda stream=stream: _read_blocks(config, plan, stream),
                    metadata,
                    schema=plan.schema,
                    per_task_row_limit=per_task_row_limit,
                )
            )
        if not tasks:  # empty result: one task yielding an empty block keeps the schema
            empty = plan.schema.empty_table()
            tasks.append(ReadTask(lambda: [empty], BlockMetadata(0, 0, None, None), schema=plan.schema))
        return tasks


def _read_blocks(config: BigQueryConfig, plan: storage.ReadPlan, stream: str) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in storage.read_stream(config, plan, stream):
        pending.append(batch)
        size += batch.nbytes
        if size >= TARGET_BLOCK_BYTES:
            yield pa.Table.from_batches(pending, schema=plan.schema)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending, schema=plan.schema)


def default_parallelism() -> int:
    """Read streams requested when ``read_bigquery`` gets no ``parallelism``: one per CPU of the Ray cluster.

    (This machine's CPUs when Ray is not initialised yet.) Without it a read would ask for one stream and run
    as one Ray task, however large the table and the cluster.
    """
    import ray

    cpus = ray.cluster_resources().get("CPU", 0) if ray.is_initialized() else os.cpu_count() or 1
    return max(1, int(cpus))


def read_bigquery(
    *,
    table: str | None = None,
    query: str | None = None,
    columns: Sequence[str] | None = None,
    row_filter: str | None = None,
    config: BigQueryConfig | None = None,
    parallelism: int | None = None,
) -> Dataset:
    """Read a BigQuery table (or a query's result) into a Ray Dataset of Arrow blocks.

    Args:
        table: ``dataset.table`` or ``project.dataset.table``.
        query: SQL whose result is read instead; it is first materialised into a temporary table
            (``kuberay_tmp`` dataset, 24 h expiry on BigQuery). Give ``table`` or ``query``, not both.
        columns: columns to read (pushed down; the Dataset has them in this order).
        row_filter: a BigQuery SQL boolean expression (``row_restriction``), e.g. ``"label = 1 AND ts > '2024-01-01'"``.
        config: connection settings; default :meth:`BigQueryConfig.from_env`.
        parallelism: number of read streams / Ray read tasks requested (BigQuery may return fewer);
            default :func:`default_parallelism` (one per CPU of the Ray cluster).
    """
    if (table is None) == (query is None):
        raise InvalidParameterError("table/query", {"table": table, "query": query}, "give exactly one of table= or query=")
    if parallelism is not None and (not isinstance(parallelism, int) or parallelism < 1):
        raise InvalidParameterError("parallelism", parallelism, "must be a positive integer")
    config = _resolve(config)
    if query is not None:
        table = storage.materialize_query(config, query).id
    streams = parallelism or default_parallelism()
    source = BigQueryDatasource(config, table, columns=columns, row_filter=row_filter, max_streams=streams)
    plan = source._read_plan(streams)  # created on the driver so bad input fails here, not in a task
    return read_datasource(source, override_num_blocks=max(1, len(plan.streams)))


class BigQueryDatasink(Datasink):
    """Each write task appends to its own PENDING stream; ``on_write_complete`` commits them all in one BatchCommit."""

    def __init__(self, config: BigQueryConfig, table: str, mode: str = "append", schema: pa.Schema | None = None) -> None:
        if mode not in storage.WRITE_MODES:
            raise InvalidParameterError("mode", mode, f"must be one of {', '.join(storage.WRITE_MODES)}")
        self._config = config
        self._table = table
        self._mode = mode
        # Planned on the driver now (validation errors surface before any task runs); without a schema
        # (nothing to write) on_write_complete only truncates in overwrite mode.
        self._plan = storage.plan_write(config, table, schema, mode) if schema is not None else None

    def get_name(self) -> str:
        return "BigQuery"

    def write(self, blocks: Iterable[Any], ctx: TaskContext) -> storage.StreamResult:
        if self._plan is None:
            raise RuntimeError("BigQueryDatasink.write called before on_write_start planned the write")
        arrow_blocks = (BlockAccessor.for_block(b).to_arrow() for b in blocks)
        return storage.write_stream(self._config, self._plan, arrow_blocks)

    def on_write_complete(self, write_result: WriteResult[storage.StreamResult]) -> None:
        results = [r for r in write_result.write_returns if r is not None]
        if self._plan is None:
            if self._mode == "overwrite":
                storage.truncate_table(self._config, storage.TableRef.parse(self._table, self._config))
            return
        storage.commit_write(self._config, self._plan, results)

    def on_write_failed(self, error: Exception) -> None:
        if self._plan is not None:
            storage.abort_write(self._config, self._plan)


def _to_arrow_schema(schema: Any) -> pa.Schema:
    if isinstance(schema, pa.Schema):
        return schema
    base = getattr(schema, "base_schema", None)
    if isinstance(base, pa.Schema):
        return base
    import pandas as pd

    frame = pd.DataFrame({n: pd.Series([], dtype=t) for n, t in zip(schema.names, schema.types, strict=True)})
    return pa.Schema.from_pandas(frame, preserve_index=False)


def write_bigquery(ds: Dataset, table: str, *, config: BigQueryConfig | None = None, mode: str = "append") -> None:
    """Write a Ray Dataset to a BigQuery table, all-or-nothing.

    Args:
        ds: the Dataset; its columns must exist in the table (a missing table is created from the data's schema).
        table: ``dataset.table`` or ``project.dataset.table``.
        config: connection settings; default :meth:`BigQueryConfig.from_env`.
        mode: ``"append"`` adds rows; ``"overwrite"`` replaces the table's rows (schema and table options kept).

    If any task fails nothing is committed and the table is left as it was.
    """
    if mode not in storage.WRITE_MODES:
        raise InvalidParameterError("mode", mode, f"must be one of {', '.join(storage.WRITE_MODES)}")
    schema = ds.schema(fetch_if_missing=True)  # may run the dataset's first block
    arrow_schema = _to_arrow_schema(schema) if schema is not None and len(schema.names) else None
    ds.write_datasink(BigQueryDatasink(_resolve(config), table, mode, arrow_schema))
