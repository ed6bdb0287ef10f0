"""Fixtures for the BigQuery I/O tests: one emulator, one Ray instance and one Spark session per test session."""

from __future__ import annotations

import datetime
import decimal
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.local.bigquery_emulator import BigQueryEmulator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    emu = BigQueryEmulator(tmp_path_factory.mktemp("bqemu"))
    with emu:
        yield emu
    assert emu.pid is None


@pytest.fixture(scope="session")
def bq(emulator: BigQueryEmulator) -> BigQueryConfig:
    return emulator.config


@pytest.fixture
def dataset(bq: BigQueryConfig) -> str:
    """A fresh dataset name per test (created on first write)."""
    from kuberay_provider.bigquery import storage

    name = f"t_{uuid.uuid4().hex[:10]}"
    storage.ensure_dataset(bq, bq.project, name)
    return name


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import ray

    temp_dir = tempfile.mkdtemp(prefix="rbq", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=temp_dir,
        object_store_memory=300 * 1024 * 1024,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    from pyspark.sql import SparkSession

    from kuberay_provider.bigquery.spark_source import register, stop_spark

    base = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("kuberay-bq-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.local.dir", str(base / "local"))
        .config("spark.sql.warehouse.dir", str(base / "warehouse"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.task.maxFailures", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("OFF")
    register(session)
    yield session
    stop_spark(session)  # the gateway JVM too: no java process outlives the tests that used it


def typed_table() -> pa.Table:
    """One column per BigQuery type that round-trips through the emulator's Storage APIs (with a NULL row)."""
    utc = datetime.UTC
    return pa.table(
        {
            "i": pa.array([1, -(2**62), None], pa.int64()),
            "f": pa.array([1.5, -0.25, None], pa.float64()),
            "n": pa.array([decimal.Decimal("1.123456789"), decimal.Decimal("-99999.5"), None], pa.decimal128(38, 9)),
            "b": pa.array([True, False, None]),
            "s": pa.array(["héllo", "", None]),
            "y": pa.array([b"\x00\x01", b"", None], pa.binary()),
            "d": pa.array([datetime.date(2024, 2, 29), datetime.date(1970, 1, 1), None]),
            "dt": pa.array(
                [datetime.datetime(2024, 1, 2, 3, 4, 5, 123456), datetime.datetime(1999, 12, 31), None], pa.timestamp("us")
            ),
            "ts": pa.array(
                [datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=utc), datetime.datetime(2000, 1, 1, tzinfo=utc), None],
                pa.timestamp("us", tz="UTC"),
            ),
            "tm": pa.array([datetime.time(3, 4, 5, 6), datetime.time(23, 59, 59), None], pa.time64("us")),
            "a": pa.array([[1, 2], [], []], pa.list_(pa.int64())),
        }
    )


def normalise(table: pa.Table) -> list[dict]:
    """Rows sorted by ``f`` (unique, NULL last) with UTC timestamps compared as instants."""
    rows = table.to_pylist()
    for row in rows:
        ts = row.get("ts")
        if isinstance(ts, datetime.datetime) and ts.tzinfo is not None:
            row["ts"] = ts.astimezone(datetime.UTC)
    return sorted(rows, key=lambda r: (r["f"] is None, r["f"] or 0))
