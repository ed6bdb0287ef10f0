"""Arrow <-> BigQuery schema mapping and batch conforming. Imports pyarrow (job-side only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from kuberay_provider.bigquery.errors import BigQueryIOError

if TYPE_CHECKING:
    from google.cloud.bigquery import SchemaField

NUMERIC = pa.decimal128(38, 9)
BIGNUMERIC = pa.decimal256(76, 38)

# BigQuery type name (legacy and standard spellings) -> Arrow type the Storage APIs use.
_BQ_TO_ARROW: dict[str, pa.DataType] = {
    "INTEGER": pa.int64(), "INT64": pa.int64(),
    "FLOAT": pa.float64(), "FLOAT64": pa.float64(),
    "NUMERIC": NUMERIC, "DECIMAL": NUMERIC,
    "BIGNUMERIC": BIGNUMERIC, "BIGDECIMAL": BIGNUMERIC,
    "BOOLEAN": pa.bool_(), "BOOL": pa.bool_(),
    "STRING": pa.string(), "JSON": pa.string(), "GEOGRAPHY": pa.string(),
    "BYTES": pa.binary(),
    "DATE": pa.date32(),
    "DATETIME": pa.timestamp("us"),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "TIME": pa.time64("us"),
}  # fmt: skip


def bigquery_field_to_arrow(field: SchemaField) -> pa.Field:
    """The Arrow field BigQuery's Storage APIs use for a BigQuery column."""
    kind = field.field_type.upper()
    if kind in ("RECORD", "STRUCT"):
        arrow_type: pa.DataType = pa.struct([bigquery_field_to_arrow(child) for child in field.fields])
    elif kind in _BQ_TO_ARROW:
        arrow_type = _BQ_TO_ARROW[kind]
    else:
        raise BigQueryIOError(f"Column {field.name!r} has BigQuery type {kind}, which this provider cannot map to Arrow")
    mode = (field.mode or "NULLABLE").upper()
    if mode == "REPEATED":
        return pa.field(field.name, pa.list_(arrow_type), nullable=False)
    return pa.field(field.name, arrow_type, nullable=mode != "REQUIRED")


def bigquery_to_arrow_schema(fields: Sequence[SchemaField]) -> pa.Schema:
    """Arrow schema for a BigQuery table schema."""
    return pa.schema([bigquery_field_to_arrow(f) for f in fields])


def _arrow_type_to_bigquery(name: str, arrow_type: pa.DataType) -> tuple[str, tuple[SchemaField, ...]]:
    t = pa.types
    if t.is_boolean(arrow_type):
        return "BOOL", ()
    if t.is_integer(arrow_type):
        return "INT64", ()
    if t.is_floating(arrow_type):
        return "FLOAT64", ()
    if t.is_decimal(arrow_type):
        fits_numeric = arrow_type.scale <= 9 and arrow_type.precision - arrow_type.scale <= 29
        return ("NUMERIC" if fits_numeric else "BIGNUMERIC"), ()
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return "STRING", ()
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type) or t.is_fixed_size_binary(arrow_type):
        return "BYTES", ()
    if t.is_date(arrow_type):
        return "DATE", ()
    if t.is_timestamp(arrow_type):
        return ("TIMESTAMP" if arrow_type.tz else "DATETIME"), ()
    if t.is_time(arrow_type):
        return "TIME", ()
    if t.is_struct(arrow_type):
        return "RECORD", tuple(arrow_field_to_bigquery(arrow_type.field(i)) for i in range(arrow_type.num_fields))
    raise BigQueryIOError(f"Column {name!r} has Arrow type {arrow_type}, which has no BigQuery equivalent")


def arrow_field_to_bigquery(field: pa.Field) -> SchemaField:
    """The BigQuery column for an Arrow field (lists become REPEATED)."""
    from google.cloud.bigquery import SchemaField

    arrow_type = field.type
    mode = "NULLABLE" if field.nullable else "REQUIRED"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        arrow_type, mode = arrow_type.value_type, "REPEATED"
    kind, children = _arrow_type_to_bigquery(field.name, arrow_type)
    return SchemaField(field.name, kind, mode=mode, fields=children)


def arrow_to_bigquery_schema(schema: pa.Schema) -> list[SchemaField]:
    """BigQuery table schema for an Arrow schema."""
    return [arrow_field_to_bigquery(f) for f in schema]


def clean_schema(schema: pa.Schema) -> pa.Schema:
    """Drop server-specific field metadata (e.g. the emulator's ``bqemu.duckdb_type``)."""
    return pa.schema([f.remove_metadata() for f in schema])


def plan_conform(source: pa.Schema, target: pa.Schema, table: str) -> pa.Schema:
    """The Arrow schema to send for ``source`` columns written into a table whose schema is ``target``.

    Raises BigQueryIOError naming the table and column for unknown columns, missing REQUIRED
    columns and types that cannot be cast.
    """
    by_name = {f.name.lower(): f for f in target}
    fields = []
    for field in source:
        wanted = by_name.get(field.name.lower())
        if wanted is None:
            raise BigQueryIOError(
                f"Column {field.name!r} does not exist in table {table} (its columns: {', '.join(target.names)})",
                table=table,
                reason="unknown column",
            )
        if field.type != wanted.type and not _castable(field.type, wanted.type):
            raise BigQueryIOError(
                f"Schema mismatch for column {field.name!r} of table {table}: data has {field.type}, "
                f"the table needs {wanted.type}",
                table=table,
                reason="schema mismatch",
            )
        fields.append(pa.field(wanted.name, wanted.type, nullable=True))
    present = {f.name.lower() for f in source}
    missing = [f.name for f in target if not f.nullable and f.name.lower() not in present and not pa.types.is_list(f.type)]
    if missing:
        raise BigQueryIOError(
            f"Required column(s) {', '.join(map(repr, missing))} of table {table} are missing from the data",
            table=table,
            reason="schema mismatch",
        )
    return pa.schema(fields)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    t = pa.types
    if t.is_null(source):
        return True
    families = (
        (t.is_integer, t.is_integer),
        (t.is_integer, t.is_floating),
        (t.is_integer, t.is_decimal),
        (t.is_floating, t.is_floating),
        (t.is_decimal, t.is_decimal),
        (lambda x: t.is_string(x) or t.is_large_string(x) or t.is_string_view(x), t.is_string),
        (lambda x: t.is_binary(x) or t.is_large_binary(x) or t.is_fixed_size_binary(x), t.is_binary),
        (t.is_date, t.is_date),
        (t.is_time, t.is_time),
        (lambda x: t.is_timestamp(x) and bool(x.tz), lambda y: t.is_timestamp(y) and bool(y.tz)),
        (lambda x: t.is_timestamp(x) and not x.tz, lambda y: t.is_timestamp(y) and not y.tz),
    )
    if any(src(source) and dst(target) for src, dst in families):
        return True
    if (t.is_list(source) or t.is_large_list(source)) and t.is_list(target):
        return source.value_type == target.value_type or _castable(source.value_type, target.value_type)
    if t.is_struct(source) and t.is_struct(target):
        return source == target
    return False


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Rename/cast ``batch`` columns (in order) to ``schema`` from :func:`plan_conform`. Zero-copy when types match."""
    columns = []
    for column, field in zip(batch.columns, schema, strict=True):
        columns.append(column if column.type == field.type else column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)
