"""Storage Read/Write plumbing against the real emulator (REST + gRPC), without Ray or Spark."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest
from google.cloud import bigquery

from kuberay_provider.bigquery import storage
from kuberay_provider.bigquery.clients import bigquery_client
from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.bigquery.errors import BigQueryIOError
from kuberay_provider.errors import InvalidParameterError

from .conftest import normalise, typed_table


def write(bq: BigQueryConfig, table: str, data: pa.Table, mode: str = "append", parts: int = 1) -> int:
    plan = storage.plan_write(bq, table, data.schema, mode)
    step = max(1, -(-data.num_rows // parts))
    results = [storage.write_stream(bq, plan, [data.slice(i, step)]) for i in range(0, max(data.num_rows, 1), step)]
    return storage.commit_write(bq, plan, results)


def read(bq: BigQueryConfig, table: str, **kwargs) -> pa.Table:
    return storage.read_table(bq, storage.plan_read(bq, table, **kwargs))


def test_every_supported_type_round_trips(bq: BigQueryConfig, dataset: str) -> None:
    data = typed_table()
    assert write(bq, f"{dataset}.types", data, parts=2) == 3
    got = read(bq, f"{dataset}.types", max_streams=2)
    assert got.schema == data.schema
    assert normalise(got) == normalise(data)
    fields = {f.name: f.field_type for f in bigquery_client(bq).get_table(f"{dataset}.types").schema}
    assert fields == {
        "i": "INT64", "f": "FLOAT64", "n": "NUMERIC", "b": "BOOL", "s": "STRING", "y": "BYTES",
        "d": "DATE", "dt": "DATETIME", "ts": "TIMESTAMP", "tm": "TIME", "a": "INT64",
    }  # fmt: skip


def test_json_column_round_trips_as_string(bq: BigQueryConfig, dataset: str) -> None:
    client = bigquery_client(bq)
    client.create_table(bigquery.Table(f"{bq.project}.{dataset}.j", schema=[bigquery.SchemaField("j", "JSON")]))
    write(bq, f"{dataset}.j", pa.table({"j": ['{"a": 1}', None]}))
    assert sorted(read(bq, f"{dataset}.j").column("j").to_pylist(), key=str) == [None, '{"a": 1}']


def test_struct_reads_but_emulator_cannot_commit_struct_writes(bq: BigQueryConfig, dataset: str) -> None:
    storage.run_sql(bq, f"CREATE TABLE `{bq.project}.{dataset}.st` AS SELECT STRUCT(7 AS x, 'q' AS z) AS st")
    assert read(bq, f"{dataset}.st").column("st").to_pylist() == [{"x": 7, "z": "q"}]
    data = pa.table({"st": pa.array([{"x": 1, "z": "a"}], pa.struct([("x", pa.int64()), ("z", pa.string())]))})
    with pytest.raises(BigQueryIOError, match="STRUCT") as info:  # bqemulator 1.4.0 limitation, not ours
        write(bq, f"{dataset}.st", data)
    assert f"{dataset}.st" in str(info.value)
    assert read(bq, f"{dataset}.st").num_rows == 1  # unchanged


def test_columns_and_row_filter_are_pushed_down(bq: BigQueryConfig, dataset: str) -> None:
    write(bq, f"{dataset}.f", pa.table({"id": list(range(100)), "name": [f"n{i}" for i in range(100)]}))
    got = read(bq, f"{dataset}.f", columns=["name", "id"], row_filter="id >= 90 AND name != 'n95'")
    assert got.column_names == ["name", "id"]
    assert sorted(got.column("id").to_pylist()) == [90, 91, 92, 93, 94, 96, 97, 98, 99]


def test_empty_table_and_empty_result(bq: BigQueryConfig, dataset: str) -> None:
    storage.create_table(bq, storage.TableRef.parse(f"{dataset}.e", bq), pa.schema([("id", pa.int64())]))
    assert read(bq, f"{dataset}.e").num_rows == 0
    write(bq, f"{dataset}.e", pa.table({"id": [1, 2]}))
    empty = read(bq, f"{dataset}.e", row_filter="id > 10")
    assert empty.num_rows == 0 and empty.schema.names == ["id"]


def test_query_is_materialised_into_a_table(bq: BigQueryConfig, dataset: str) -> None:
    write(bq, f"{dataset}.q", pa.table({"id": [1, 2, 3]}))
    ref = storage.materialize_query(bq, f"SELECT id * 10 AS x FROM `{bq.project}.{dataset}.q` WHERE id > 1")
    assert sorted(read(bq, ref.id).column("x").to_pylist()) == [20, 30]


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_failed_write_leaves_table_unchanged(bq: BigQueryConfig, dataset: str, mode: str) -> None:
    table = f"{dataset}.atomic_{mode}"
    write(bq, table, pa.table({"id": [1, 2, 3]}))
    plan = storage.plan_write(bq, table, pa.schema([("id", pa.int64())]), mode)
    done = storage.write_stream(bq, plan, [pa.table({"id": [10, 11]})])

    def failing():
        yield pa.table({"id": [12]})
        raise ValueError("task died")

    with pytest.raises(ValueError, match="task died"):
        storage.write_stream(bq, plan, failing())
    storage.abort_write(bq, plan)  # what the Ray / Spark driver does
    assert sorted(read(bq, table).column("id").to_pylist()) == [1, 2, 3]
    assert done.rows == 2
    tables = [t.table_id for t in bigquery_client(bq).list_tables(dataset)]
    assert tables == [f"atomic_{mode}"]  # staging table dropped


def test_overwrite_replaces_rows_keeps_schema(bq: BigQueryConfig, dataset: str) -> None:
    table = f"{dataset}.ow"
    write(bq, table, pa.table({"id": [1, 2, 3], "s": ["a", "b", "c"]}))
    assert write(bq, table, pa.table({"id": pa.array([7], pa.int32())}), mode="overwrite") == 1
    got = read(bq, table)
    assert got.to_pylist() == [{"id": 7, "s": None}]
    assert [t.table_id for t in bigquery_client(bq).list_tables(dataset)] == ["ow"]


def test_large_batches_are_chunked_below_request_limit(bq: BigQueryConfig, dataset: str) -> None:
    data = pa.table({"id": pa.array(range(300_000), pa.int64()), "s": pa.array(["x" * 40] * 300_000)})  # ~14 MB
    assert write(bq, f"{dataset}.big", data) == 300_000
    assert read(bq, f"{dataset}.big", columns=["id"]).num_rows == 300_000


def test_missing_table_error_names_table(bq: BigQueryConfig, dataset: str) -> None:
    with pytest.raises(BigQueryIOError, match=rf"{dataset}\.nope not found") as info:
        storage.plan_read(bq, f"{dataset}.nope")
    assert info.value.reason == "notFound"


def test_unknown_column_error_names_table_and_column(bq: BigQueryConfig, dataset: str) -> None:
    write(bq, f"{dataset}.c", pa.table({"id": [1]}))
    with pytest.raises(BigQueryIOError, match=rf"'wat'.*{dataset}\.c"):
        storage.plan_read(bq, f"{dataset}.c", columns=["id", "wat"])
    with pytest.raises(BigQueryIOError, match=rf"'wat' does not exist in table .*{dataset}\.c"):
        storage.plan_write(bq, f"{dataset}.c", pa.schema([("wat", pa.int64())]))


def test_bad_filter_error_names_table_and_filter(bq: BigQueryConfig, dataset: str) -> None:
    write(bq, f"{dataset}.bf", pa.table({"id": [1]}))
    with pytest.raises(BigQueryIOError, match=rf"{dataset}\.bf with row_filter='nope > 1'.*nope"):
        storage.plan_read(bq, f"{dataset}.bf", row_filter="nope > 1")


def test_schema_mismatch_names_column_and_types(bq: BigQueryConfig, dataset: str) -> None:
    write(bq, f"{dataset}.m", pa.table({"id": [1]}))
    with pytest.raises(BigQueryIOError, match=rf"column 'id' of table .*{dataset}\.m: data has string, the table needs int64"):
        storage.plan_write(bq, f"{dataset}.m", pa.schema([("id", pa.string())]))


def test_bad_endpoint_fails_fast_with_endpoint_in_message() -> None:
    config = BigQueryConfig(project="p", rest_endpoint="http://127.0.0.1:9", grpc_endpoint="127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(BigQueryIOError, match=r"cannot reach BigQuery at http://127.0.0.1:9.*ds\.t|ds\.t.*cannot reach"):
        storage.plan_read(config, "ds.t")
    assert time.monotonic() - started < 20


def test_bad_parameters() -> None:
    config = BigQueryConfig(project="p")
    with pytest.raises(InvalidParameterError, match="table"):
        storage.TableRef.parse("just_a_name", config)
    with pytest.raises(InvalidParameterError, match="mode"):
        storage.plan_write(config, "ds.t", pa.schema([("a", pa.int64())]), "upsert")
