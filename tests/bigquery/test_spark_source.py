"""The ``bigquery`` Spark Python Data Source against the emulator on a real local Spark session."""

from __future__ import annotations

import pyarrow as pa
import pytest

from kuberay_provider.bigquery import storage
from kuberay_provider.bigquery.clients import bigquery_client
from kuberay_provider.bigquery.config import BigQueryConfig

from .conftest import normalise, typed_table

pytestmark = pytest.mark.slow


def ids(bq: BigQueryConfig, table: str) -> list[int]:
    return sorted(storage.read_table(bq, storage.plan_read(bq, table)).column("id").to_pylist())


def reader(spark, bq: BigQueryConfig, table: str):
    return spark.read.format("bigquery").options(**bq.to_options()).option("table", table)


def writer(df, bq: BigQueryConfig, table: str, mode: str = "append"):
    return df.write.format("bigquery").options(**bq.to_options()).option("table", table).mode(mode)


def test_types_round_trip_through_spark(spark, bq: BigQueryConfig, dataset: str) -> None:
    data = typed_table()
    storage_plan = storage.plan_write(bq, f"{dataset}.src", data.schema)
    storage.commit_write(bq, storage_plan, [storage.write_stream(bq, storage_plan, [data])])
    df = reader(spark, bq, f"{dataset}.src").option("parallelism", "2").load()
    writer(df, bq, f"{dataset}.dst").save()
    got = storage.read_table(bq, storage.plan_read(bq, f"{dataset}.dst"))
    assert got.schema == data.schema
    assert normalise(got) == normalise(data)
    assert normalise(df.toArrow()) == normalise(data)


def test_columns_filters_and_pushdown(spark, bq: BigQueryConfig, dataset: str) -> None:
    table = f"{dataset}.f"
    writer(spark.range(1000).selectExpr("id", "concat('n', id) AS s"), bq, table).save()
    df = reader(spark, bq, table).option("columns", "s,id").option("filter", "id >= 900").load()
    assert df.columns == ["s", "id"]
    filtered = df.where("id < 905 AND s LIKE 'n90%' AND s IS NOT NULL")
    plan = filtered._jdf.queryExecution().optimizedPlan().toString()
    assert "Filter" not in plan  # every predicate was pushed into the read session
    assert sorted(r.id for r in filtered.collect()) == [900, 901, 902, 903, 904]
    assert reader(spark, bq, table).load().count() == 1000  # no leakage of pushed filters
    assert reader(spark, bq, table).option("filter", "id < 0").load().count() == 0


@pytest.mark.parametrize("mode", ["append", "overwrite"])
def test_failed_task_leaves_destination_unchanged(spark, bq: BigQueryConfig, dataset: str, mode: str) -> None:
    from pyspark.sql.functions import udf

    table = f"{dataset}.atomic"
    writer(spark.range(3), bq, table).save()

    @udf("long")
    def boom(value: int) -> int:
        if value >= 1500:
            raise ValueError("spark task exploded")
        return value

    with pytest.raises(Exception, match="spark task exploded"):
        writer(spark.range(0, 2000, 1, 2).select(boom("id").alias("id")), bq, table, mode).save()
    assert ids(bq, table) == [0, 1, 2]
    assert [t.table_id for t in bigquery_client(bq).list_tables(dataset)] == ["atomic"]


def test_overwrite_and_empty(spark, bq: BigQueryConfig, dataset: str) -> None:
    table = f"{dataset}.ow"
    writer(spark.range(10), bq, table).save()
    writer(spark.range(3), bq, table, "overwrite").save()
    assert ids(bq, table) == [0, 1, 2]
    writer(spark.range(0), bq, table, "overwrite").save()
    assert ids(bq, table) == []
    assert reader(spark, bq, table).load().count() == 0


def test_errors_name_table_and_column(spark, bq: BigQueryConfig, dataset: str) -> None:
    with pytest.raises(Exception, match=rf"{dataset}\.missing not found"):
        reader(spark, bq, f"{dataset}.missing").load()
    table = f"{dataset}.e"
    writer(spark.range(3), bq, table).save()
    with pytest.raises(Exception, match=rf"'nope' not found in table .*{dataset}\.e"):
        reader(spark, bq, table).option("columns", "id,nope").load()
    with pytest.raises(Exception, match=rf"Schema mismatch for column 'id' of table .*{dataset}\.e"):
        writer(spark.range(1).selectExpr("'x' AS id"), bq, table).save()
    with pytest.raises(Exception, match=rf"'extra' does not exist in table .*{dataset}\.e"):
        writer(spark.range(1).selectExpr("id", "1 AS extra"), bq, table).save()
    assert ids(bq, table) == [0, 1, 2]
    assert pa.types.is_int64(storage.table_arrow_schema(bq, storage.TableRef.parse(table, bq)).field("id").type)
