"""Ray Data reader / writer against the emulator on a real local Ray instance."""

from __future__ import annotations

import pyarrow as pa
import pytest

from kuberay_provider.bigquery import storage
from kuberay_provider.bigquery.clients import bigquery_client
from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.bigquery.errors import BigQueryIOError
from kuberay_provider.errors import InvalidParameterError

from .conftest import normalise, typed_table

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def ids(bq: BigQueryConfig, table: str) -> list[int]:
    return sorted(storage.read_table(bq, storage.plan_read(bq, table)).column("id").to_pylist())


def test_types_round_trip_through_ray(bq: BigQueryConfig, dataset: str) -> None:
    import ray

    from kuberay_provider.bigquery.ray_io import read_bigquery, write_bigquery

    data = typed_table()
    write_bigquery(ray.data.from_arrow(data).repartition(2), f"{dataset}.types", config=bq)
    ds = read_bigquery(table=f"{dataset}.types", config=bq, parallelism=2)
    got = pa.concat_tables(ray.get(ds.to_arrow_refs()))
    assert got.schema == data.schema
    assert normalise(got) == normalise(data)


def test_columns_filter_query_and_empty(bq: BigQueryConfig, dataset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from kuberay_provider.bigquery.ray_io import read_bigquery, write_bigquery

    table = f"{dataset}.f"
    write_bigquery(ray.data.range(1000), table, config=bq)
    ds = read_bigquery(table=table, columns=["id"], row_filter="id >= 990", config=bq, parallelism=4)
    assert ds.columns() == ["id"]
    assert sorted(r["id"] for r in ds.take_all()) == list(range(990, 1000))
    empty = read_bigquery(table=table, row_filter="id < 0", config=bq)
    assert empty.count() == 0 and empty.columns() == ["id"]
    for key, value in bq.to_options().items():  # config from the environment
        monkeypatch.setenv({"project": "KUBERAY_BQ_PROJECT"}.get(key, f"KUBERAY_BQ_{key.upper()}"), value)
    query = read_bigquery(query=f"SELECT COUNT(*) AS n, MAX(id) AS top FROM `{bq.project}.{table}`")
    assert query.take_all() == [{"n": 1000, "top": 999}]


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_failed_task_leaves_destination_unchanged(bq: BigQueryConfig, dataset: str, mode: str) -> None:
    import ray

    from kuberay_provider.bigquery.ray_io import write_bigquery

    def boom(batch: pa.Table) -> pa.Table:  # local: pickled by value for the Ray workers
        if 500 <= batch["id"][0].as_py() < 1000:  # the second of four blocks
            raise ValueError("write task exploded")
        return batch

    table = f"{dataset}.atomic"
    write_bigquery(ray.data.from_items([{"id": i} for i in range(3)]), table, config=bq)
    failing = ray.data.range(2000, override_num_blocks=4).map_batches(boom, batch_format="pyarrow", batch_size=None)
    with pytest.raises(Exception, match="write task exploded"):
        write_bigquery(failing, table, config=bq, mode=mode)
    assert ids(bq, table) == [0, 1, 2]
    assert [t.table_id for t in bigquery_client(bq).list_tables(dataset)] == ["atomic"]


def test_overwrite_and_new_table(bq: BigQueryConfig, dataset: str) -> None:
    import ray

    from kuberay_provider.bigquery.ray_io import write_bigquery

    table = f"{dataset}.ow"
    write_bigquery(ray.data.range(10), table, config=bq)
    write_bigquery(ray.data.range(10), table, config=bq, mode="append")
    assert len(ids(bq, table)) == 20
    write_bigquery(ray.data.range(3), table, config=bq, mode="overwrite")
    assert ids(bq, table) == [0, 1, 2]


def test_errors_name_table_and_column(bq: BigQueryConfig, dataset: str) -> None:
    import ray

    from kuberay_provider.bigquery.ray_io import read_bigquery, write_bigquery

    with pytest.raises(BigQueryIOError, match=rf"{dataset}\.missing not found"):
        read_bigquery(table=f"{dataset}.missing", config=bq)
    write_bigquery(ray.data.range(3), f"{dataset}.e", config=bq)
    with pytest.raises(BigQueryIOError, match=rf"'nope' not found in table .*{dataset}\.e"):
        read_bigquery(table=f"{dataset}.e", columns=["nope"], config=bq)
    with pytest.raises(Exception, match=rf"Schema mismatch for column 'id' of table .*{dataset}\.e"):
        write_bigquery(ray.data.from_items([{"id": "text"}]), f"{dataset}.e", config=bq)
    with pytest.raises(Exception, match=rf"'extra' does not exist in table .*{dataset}\.e"):
        write_bigquery(ray.data.from_items([{"id": 1, "extra": 2}]), f"{dataset}.e", config=bq)
    with pytest.raises(InvalidParameterError, match="table/query"):
        read_bigquery(config=bq)
    assert ids(bq, f"{dataset}.e") == [0, 1, 2]
