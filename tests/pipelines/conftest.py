"""Fixtures for the pipeline tests: one private BigQuery emulator per session, seeded with a small raw data set.

Spark and Ray run in the jobs' own subprocesses (exactly as the DAG runs them), each with private temp dirs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED_ROWS = 20_000
SEED_END = datetime(2026, 11, 16, tzinfo=UTC)
RAW_DATASET = "raw"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A private bqemulator for the session; stopped (and checked stopped) at the end."""
    from kuberay_provider.local.bigquery_emulator import BigQueryEmulator

    emu = BigQueryEmulator(tmp_path_factory.mktemp("bqemu"))
    with emu:
        yield emu
    assert emu.pid is None


@pytest.fixture(scope="session")
def job_env(emulator) -> dict[str, str]:
    """Environment for job subprocesses: emulator endpoints, loopback Spark, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERAY_BQ_", "RAY_ADDRESS", "PYSPARK_"))}
    env.update(emulator.env)
    env.update(
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


@pytest.fixture(scope="session")
def seeded(emulator, job_env) -> dict[str, object]:
    """Run the seed CLI once: ~20k events into ``raw.events`` / ``raw.customers``; returns its summary and data."""
    import subprocess

    from kuberay_provider.pipelines.seed import generate

    result = subprocess.run(
        [sys.executable, "-m", "kuberay_provider.pipelines.seed", "--rows", str(SEED_ROWS), "--dataset", RAW_DATASET,
         "--end", SEED_END.isoformat()],
        env=job_env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"summary": summary, "data": generate(SEED_ROWS, end=SEED_END)}


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short private dir under /tmp (Ray's socket paths have a length limit)."""
    import shutil

    path = Path(tempfile.mkdtemp(prefix="kp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
