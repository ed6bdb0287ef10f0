"""BigQuery Storage Read / Write API plumbing shared by the Ray and Spark integrations (job-side only).

Reads: :func:`plan_read` creates one read session (column selection and row filter pushed down, N streams);
:func:`read_stream` yields Arrow record batches for one stream. :func:`materialize_query` turns a query into
a named table first (the emulator cannot serve query results through the Storage API).

Writes are all-or-nothing:

* every writer task appends to its own PENDING stream (:func:`write_stream`), which is invisible until committed;
* the driver commits all streams in ONE ``BatchCommitWriteStreams`` call (:func:`commit_write`), which BigQuery
  applies atomically; if anything failed the driver calls :func:`abort_write` and nothing is committed.
* ``mode="overwrite"`` stages into a fresh staging table and then replaces the destination in one statement:
  a copy job with ``WRITE_TRUNCATE`` on BigQuery (atomic, keeps the destination's partitioning, clustering and
  description) and ``CREATE OR REPLACE TABLE dst AS SELECT * FROM staging`` on the emulator (one DuckDB statement
  in one transaction; the emulator does not run copy jobs). The staging table is dropped afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from kuberay_provider.bigquery import schema as schema_mod
from kuberay_provider.bigquery.clients import bigquery_client, read_client, write_client
from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.bigquery.errors import BigQueryIOError
from kuberay_provider.bigquery.names import TableName, parse_table_name
from kuberay_provider.errors import InvalidParameterError

if TYPE_CHECKING:
    from google.cloud import bigquery

WRITE_MODES = ("append", "overwrite")
# The Storage Write API rejects AppendRows requests above 10 MiB; stay well below with the envelope.
MAX_APPEND_BYTES = 8 * 1024 * 1024
TEMP_DATASET = "kuberay_tmp"


# ---------------------------------------------------------------------------- table names
@dataclass(frozen=True)
class TableRef(TableName):
    """A fully qualified table (:class:`~kuberay_provider.bigquery.names.TableName`: ``project``, ``dataset``,
    ``table``, ``id``) with the Storage API path and the SQL form the I/O needs."""

    @classmethod
    def parse(cls, table: str, config: BigQueryConfig, parameter: str = "table") -> TableRef:
        """Parse ``[project.]dataset.table`` (project from ``config``) in the forms and by the rules of
        ``kuberay_provider.bigquery.names``; raises :class:`InvalidParameterError` naming ``parameter``.

        The names end up back-quoted in SQL (``CREATE OR REPLACE TABLE``, ``MERGE``): those rules let nothing pass
        that could leave the quotes.
        """
        name = parse_table_name(table, config.project, param=parameter)
        return cls(name.project, name.dataset, name.table)

    @property
    def path(self) -> str:
        """Storage API resource name ``projects/p/datasets/d/tables/t``."""
        return f"projects/{self.project}/datasets/{self.dataset}/tables/{self.table}"

    @property
    def sql(self) -> str:
        """Back-quoted for SQL."""
        return f"`{self.id}`"


# ---------------------------------------------------------------------------- errors
def _timeout(config: BigQueryConfig) -> float:
    return 30.0 if config.is_emulator else 300.0


def _rest_retry(config: BigQueryConfig) -> Any:
    from google.cloud.bigquery import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(10.0 if config.is_emulator else 120.0)


def _grpc_retry(config: BigQueryConfig) -> Any:
    from google.api_core import exceptions, retry

    return retry.Retry(
        predicate=retry.if_exception_type(exceptions.ServiceUnavailable, exceptions.DeadlineExceeded),
        initial=0.2,
        maximum=5.0,
        timeout=10.0 if config.is_emulator else 120.0,
    )


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    errors = getattr(exc, "errors", None) or []
    reasons = [e.get("reason") for e in errors if isinstance(e, dict) and e.get("reason")]
    text = " ".join(str(message).split())
    return f"{text} (reason: {', '.join(reasons)})" if reasons else text


def _endpoint(config: BigQueryConfig, api: str) -> str:
    if api == "rest":
        return config.rest_endpoint or "https://bigquery.googleapis.com"
    return config.grpc_endpoint or "bigquerystorage.googleapis.com:443"


@contextlib.contextmanager
def translate_errors(config: BigQueryConfig, table: TableRef | str | None, action: str, api: str = "rest") -> Iterator[None]:
    """Re-raise google.api_core / transport errors as :class:`BigQueryIOError` naming the table and BigQuery's reason."""
    from google.api_core import exceptions

    name = str(table) if table is not None else "?"
    try:
        yield
    except BigQueryIOError:
        raise
    except exceptions.NotFound as exc:
        raise BigQueryIOError(
            f"{action}: table {name} not found. BigQuery said: {_reason(exc)}", table=name, reason="notFound"
        ) from exc
    except (exceptions.RetryError, exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, ConnectionError) as exc:
        raise BigQueryIOError(
            f"{action} (table {name}): cannot reach BigQuery at {_endpoint(config, api)}; check the endpoint and "
            f"network. Cause: {_reason(getattr(exc, 'cause', None) or exc)}",
            table=name,
            reason="unreachable",
        ) from exc
    except exceptions.GoogleAPICallError as exc:
        raise BigQueryIOError(
            f"{action} (table {name}) failed. BigQuery said: {_reason(exc)}", table=name, reason=type(exc).__name__
        ) from exc
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise BigQueryIOError(
            f"{action} (table {name}): cannot reach BigQuery at {_endpoint(config, api)}: {exc}", table=name, reason="unreachable"
        ) from exc


# ---------------------------------------------------------------------------- table metadata
def get_table(config: BigQueryConfig, table: TableRef, client: bigquery.Client | None = None) -> bigquery.Table:
    """The table's metadata; BigQueryIOError naming it if it does not exist or BigQuery is unreachable."""
    client = client or bigquery_client(config)
    with translate_errors(config, table, "Reading table metadata"):
        return client.get_table(table.id, retry=_rest_retry(config), timeout=_timeout(config))


def table_arrow_schema(config: BigQueryConfig, table: TableRef, client: bigquery.Client | None = None) -> pa.Schema:
    """Arrow schema of an existing table."""
    return schema_mod.bigquery_to_arrow_schema(get_table(config, table, client).schema)


def run_sql(config: BigQueryConfig, sql: str, table: TableRef | str | None = None, client: bigquery.Client | None = None) -> None:
    """Run one SQL statement to completion."""
    client = client or bigquery_client(config)
    with translate_errors(config, table, "Running SQL"):
        client.query(sql, retry=_rest_retry(config), timeout=_timeout(config)).result(timeout=_timeout(config) * 10)


def drop_table(config: BigQueryConfig, table: TableRef, client: bigquery.Client | None = None) -> None:
    """Delete a table if it exists."""
    client = client or bigquery_client(config)
    with translate_errors(config, table, "Dropping table"):
        client.delete_table(table.id, not_found_ok=True, retry=_rest_retry(config), timeout=_timeout(config))


def ensure_dataset(config: BigQueryConfig, project: str, dataset: str, client: bigquery.Client | None = None) -> None:
    """Create a dataset if it does not exist (in ``config.location``)."""
    from google.cloud import bigquery

    client = client or bigquery_client(config)
    ds = bigquery.Dataset(f"{project}.{dataset}")
    if config.location:
        ds.location = config.location
    with translate_errors(config, f"{project}.{dataset}", "Creating dataset"):
        client.create_dataset(ds, exists_ok=True, retry=_rest_retry(config), timeout=_timeout(config))


def create_table(config: BigQueryConfig, table: TableRef, arrow_schema: pa.Schema, client: bigquery.Client | None = None) -> None:
    """Create a table with the BigQuery schema mapped from ``arrow_schema``."""
    from google.cloud import bigquery

    client = client or bigquery_client(config)
    fields = schema_mod.arrow_to_bigquery_schema(arrow_schema)
    with translate_errors(config, table, "Creating table"):
        client.create_table(bigquery.Table(table.id, schema=fields), retry=_rest_retry(config), timeout=_timeout(config))


# ---------------------------------------------------------------------------- reads
@dataclass(frozen=True)
class ReadPlan:
    """A Storage Read session: one entry in ``streams`` per parallel reader. Picklable."""

    table: str
    streams: tuple[str, ...]
    schema: pa.Schema
    estimated_rows: int | None = None
    estimated_bytes: int | None = None


def materialize_query(
    config: BigQueryConfig, query: str, *, destination: str | None = None, temp_dataset: str = TEMP_DATASET
) -> TableRef:
    """Run ``query`` into a named table (``CREATE OR REPLACE TABLE ... AS``) and return it.

    Without ``destination`` the table goes to ``temp_dataset`` (created if missing) with a unique name and, on
    BigQuery, a 24-hour expiration. The emulator ignores job destinations, hence DDL instead of a job config.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidParameterError("query", query, "a non-empty SQL query is required")
    client = bigquery_client(config)
    if destination is None:
        target = TableRef(config.project, temp_dataset, f"query_{uuid.uuid4().hex[:16]}")
        ensure_dataset(config, target.project, target.dataset, client)
    else:
        target = TableRef.parse(destination, config, "destination")
    options = "" if config.is_emulator else " OPTIONS(expiration_timestamp=TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 24 HOUR))"
    run_sql(config, f"CREATE OR REPLACE TABLE {target.sql}{options} AS\n{query}", f"query -> {target}", client)
    return target


def plan_read(
    config: BigQueryConfig,
    table: str | TableRef,
    *,
    columns: Sequence[str] | None = None,
    row_filter: str | None = None,
    max_streams: int = 0,
) -> ReadPlan:
    """Create a Storage Read session for ``table`` with column selection and row filter pushed down."""
    from google.cloud.bigquery_storage_v1 import types

    ref = table if isinstance(table, TableRef) else TableRef.parse(table, config)
    bq = bigquery_client(config)
    full_schema = table_arrow_schema(config, ref, bq)
    if columns is not None:
        if isinstance(columns, str) or not all(isinstance(c, str) and c for c in columns):
            raise InvalidParameterError("columns", columns, "must be a list of column names")
        by_lower = {n.lower(): n for n in full_schema.names}
        unknown = [c for c in columns if c.lower() not in by_lower]
        if unknown:
            raise BigQueryIOError(
                f"Column(s) {', '.join(map(repr, unknown))} not found in table {ref} "
                f"(its columns: {', '.join(full_schema.names)})",
                table=ref.id,
                reason="unknown column",
            )
    options = types.ReadSession.TableReadOptions(selected_fields=list(columns or []), row_restriction=row_filter or "")
    request = types.ReadSession(table=ref.path, data_format=types.DataFormat.ARROW, read_options=options)
    from google.api_core import exceptions

    with translate_errors(config, ref, "Creating a Storage Read session", api="grpc"):
        try:
            session = read_client(config).create_read_session(
                parent=f"projects/{config.project}",
                read_session=request,
                max_stream_count=max(0, int(max_streams)),
                retry=_grpc_retry(config),
                timeout=_timeout(config),
            )
        except (exceptions.NotFound, exceptions.InvalidArgument, exceptions.BadRequest) as exc:
            # the table exists (checked above), so this is the filter or the column list
            raise BigQueryIOError(
                f"Reading table {ref} with row_filter={row_filter!r} and columns={columns!r} failed. "
                f"BigQuery said: {_reason(exc)}",
                table=ref.id,
                reason="invalid read options",
            ) from exc
    if session.arrow_schema.serialized_schema:
        session_schema = schema_mod.clean_schema(pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema)))
    else:  # no rows: some servers send no schema
        session_schema = full_schema
    if columns is not None:  # the Storage API returns table order; give the caller's order
        session_schema = pa.schema([session_schema.field(_match(session_schema, c)) for c in columns])
    return ReadPlan(
        table=ref.id,
        streams=tuple(s.name for s in session.streams),
        schema=session_schema,
        estimated_rows=getattr(session, "estimated_row_count", None) or None,
        estimated_bytes=getattr(session, "estimated_total_bytes_scanned", None) or None,
    )


def _match(schema: pa.Schema, name: str) -> str:
    for candidate in schema.names:
        if candidate.lower() == name.lower():
            return candidate
    return name


def read_stream(config: BigQueryConfig, plan: ReadPlan, stream: str) -> Iterator[pa.RecordBatch]:
    """Yield the Arrow record batches of one read stream, in ``plan.schema``."""
    client = read_client(config)
    wire_schema: pa.Schema | None = None
    with translate_errors(config, plan.table, "Reading a Storage Read stream", api="grpc"):
        for response in client.read_rows(stream, retry=_grpc_retry(config), timeout=_timeout(config) * 20):
            if wire_schema is None:
                raw = response.arrow_schema.serialized_schema
                wire_schema = pa.ipc.read_schema(pa.py_buffer(raw)) if raw else None
                if wire_schema is None:  # the schema comes with the session; re-derive field order from the plan
                    wire_schema = plan.schema
            payload = response.arrow_record_batch.serialized_record_batch
            if not payload:
                continue
            batch = pa.ipc.read_record_batch(pa.py_buffer(payload), wire_schema)
            yield _to_plan_schema(batch, plan.schema)


def _to_plan_schema(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if batch.schema.names == schema.names:
        return pa.RecordBatch.from_arrays(batch.columns, schema=schema)
    lowered = {n.lower(): i for i, n in enumerate(batch.schema.names)}
    return pa.RecordBatch.from_arrays([batch.column(lowered[n.lower()]) for n in schema.names], schema=schema)


def read_table(config: BigQueryConfig, plan: ReadPlan) -> pa.Table:
    """Read every stream of ``plan`` sequentially into one Arrow table (small data, tests, baselines)."""
    batches = [b for s in plan.streams for b in read_stream(config, plan, s)]
    return pa.Table.from_batches(batches, schema=plan.schema)


# ---------------------------------------------------------------------------- writes
@dataclass(frozen=True)
class WritePlan:
    """Where writer tasks append (``target``) and how the driver finishes. Picklable."""

    destination: str
    target: str
    mode: str
    schema: pa.Schema  # the Arrow schema writers send (columns conformed to the table)
    created_destination: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def staged(self) -> bool:
        """True when writers append to a staging table (overwrite mode)."""
        return self.target != self.destination


@dataclass(frozen=True)
class StreamResult:
    """What one writer task produced: a finalized PENDING stream and its row count."""

    stream: str
    rows: int


def plan_write(config: BigQueryConfig, table: str, data_schema: pa.Schema, mode: str = "append") -> WritePlan:
    """Validate ``data_schema`` against the destination and prepare the write (driver side).

    A missing destination is created from ``data_schema`` (and dropped again by :func:`abort_write`).
    In overwrite mode writers go to a staging table with the destination's schema.
    """
    if mode not in WRITE_MODES:
        raise InvalidParameterError("mode", mode, f"must be one of {', '.join(WRITE_MODES)}")
    if len(data_schema) == 0:
        raise InvalidParameterError("data schema", data_schema, "has no columns")
    ref = TableRef.parse(table, config)
    client = bigquery_client(config)
    from google.api_core import exceptions

    created = False
    try:
        with translate_errors(config, ref, "Reading table metadata"):
            try:
                existing = client.get_table(ref.id, retry=_rest_retry(config), timeout=_timeout(config))
            except exceptions.NotFound:
                existing = None
    except BigQueryIOError:
        raise
    if existing is None:
        ensure_dataset(config, ref.project, ref.dataset, client)
        create_table(config, ref, data_schema, client)
        created = True
        table_schema = schema_mod.bigquery_to_arrow_schema(schema_mod.arrow_to_bigquery_schema(data_schema))
    else:
        table_schema = schema_mod.bigquery_to_arrow_schema(existing.schema)
    send_schema = schema_mod.plan_conform(data_schema, table_schema, ref.id)
    target = ref
    if mode == "overwrite":
        target = TableRef(ref.project, ref.dataset, f"{ref.table}__staging_{uuid.uuid4().hex[:12]}")
        create_table(config, target, table_schema, client)
    return WritePlan(destination=ref.id, target=target.id, mode=mode, schema=send_schema, created_destination=created)


def _chunks(batch: pa.RecordBatch, max_bytes: int = MAX_APPEND_BYTES) -> Iterator[pa.RecordBatch]:
    if batch.num_rows == 0:
        return
    size = batch.nbytes
    if size <= max_bytes:
        yield batch
        return
    rows = max(1, int(batch.num_rows * max_bytes / size))
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def write_stream(config: BigQueryConfig, plan: WritePlan, batches: Iterable[pa.RecordBatch | pa.Table]) -> StreamResult:
    """Append ``batches`` to a new PENDING stream on ``plan.target`` and finalize it (writer task side).

    Nothing becomes visible until the driver's :func:`commit_write`.
    """
    from google.cloud.bigquery_storage_v1 import types

    target = TableRef.parse(plan.target, config)
    client = write_client(config)
    with translate_errors(config, plan.destination, "Creating a write stream", api="grpc"):
        stream = client.create_write_stream(
            parent=target.path,
            write_stream=types.WriteStream(type_=types.WriteStream.Type.PENDING),
            retry=_grpc_retry(config),
            timeout=_timeout(config),
        )
    schema_bytes = plan.schema.serialize().to_pybytes()
    counter = {"rows": 0}

    failure: list[BaseException] = []

    def requests() -> Iterator[Any]:
        try:
            yield from _append_requests(stream.name)
        except Exception as exc:  # the caller's data iterator failed: end the stream, re-raise below unwrapped
            failure.append(exc)

    def _append_requests(stream_name: str) -> Iterator[Any]:
        first = True
        for item in batches:
            for record_batch in item.to_batches() if isinstance(item, pa.Table) else [item]:
                for chunk in _chunks(schema_mod.conform_batch(record_batch, plan.schema)):
                    arrow_data = types.AppendRowsRequest.ArrowData(
                        rows=types.ArrowRecordBatch(
                            serialized_record_batch=chunk.serialize().to_pybytes(), row_count=chunk.num_rows
                        )
                    )
                    if first:
                        arrow_data.writer_schema = types.ArrowSchema(serialized_schema=schema_bytes)
                        first = False
                    counter["rows"] += chunk.num_rows
                    # the emulator needs write_stream on every request; BigQuery accepts it.
                    yield types.AppendRowsRequest(write_stream=stream_name, arrow_rows=arrow_data)

    with translate_errors(config, plan.destination, "Appending rows", api="grpc"):
        for response in client.append_rows(requests(), timeout=_timeout(config) * 20):
            if response.error.code or response.row_errors:
                detail = response.error.message or "; ".join(e.message for e in response.row_errors)
                raise BigQueryIOError(
                    f"Appending rows to table {plan.destination} failed. BigQuery said: {detail}", table=plan.destination
                )
        if failure:
            raise failure[0]
        client.finalize_write_stream(name=stream.name, retry=_grpc_retry(config), timeout=_timeout(config))
    return StreamResult(stream=stream.name, rows=counter["rows"])


def commit_write(config: BigQueryConfig, plan: WritePlan, results: Sequence[StreamResult]) -> int:
    """Commit every stream in one BatchCommitWriteStreams call, then swap staging in (overwrite). Returns rows."""
    from google.cloud.bigquery_storage_v1 import types

    target = TableRef.parse(plan.target, config)
    streams = [r.stream for r in results]
    try:
        if streams:
            with translate_errors(config, plan.destination, "Committing write streams", api="grpc"):
                response = write_client(config).batch_commit_write_streams(
                    request=types.BatchCommitWriteStreamsRequest(parent=target.path, write_streams=streams),
                    retry=_grpc_retry(config),
                    timeout=_timeout(config),
                )
            if response.stream_errors:
                detail = "; ".join(f"{e.entity}: {e.error_message}" for e in response.stream_errors)
                raise BigQueryIOError(
                    f"Commit to table {plan.destination} failed, nothing was written. BigQuery said: {detail}",
                    table=plan.destination,
                    reason="commit failed",
                )
        if plan.staged:
            _swap_in(config, plan)
    except BaseException:
        abort_write(config, plan)
        raise
    if plan.staged:
        drop_table(config, target)
    return sum(r.rows for r in results)


def _swap_in(config: BigQueryConfig, plan: WritePlan) -> None:
    destination = TableRef.parse(plan.destination, config)
    staging = TableRef.parse(plan.target, config)
    if config.is_emulator:
        run_sql(config, f"CREATE OR REPLACE TABLE {destination.sql} AS SELECT * FROM {staging.sql}", destination)
        return
    from google.cloud import bigquery

    client = bigquery_client(config)
    job_config = bigquery.CopyJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
    with translate_errors(config, destination, "Replacing the table with the staged rows"):
        client.copy_table(staging.id, destination.id, job_config=job_config, retry=_rest_retry(config)).result()


def abort_write(config: BigQueryConfig, plan: WritePlan) -> None:
    """Undo :func:`plan_write`: drop the staging table and a destination this write created.

    Uncommitted PENDING streams need no clean-up: BigQuery discards them.
    """
    with contextlib.suppress(BigQueryIOError):
        if plan.staged:
            drop_table(config, TableRef.parse(plan.target, config))
        if plan.created_destination:
            drop_table(config, TableRef.parse(plan.destination, config))


def truncate_table(config: BigQueryConfig, table: TableRef) -> None:
    """Delete every row of an existing table (overwrite with no data); a missing table is left missing."""
    from google.api_core import exceptions

    client = bigquery_client(config)
    try:
        client.get_table(table.id, retry=_rest_retry(config), timeout=_timeout(config))
    except exceptions.NotFound:
        return
    run_sql(config, f"TRUNCATE TABLE {table.sql}", table, client)
