"""Smoke test of bench/bench_bigquery.py: ``--quick`` runs end to end and leaves nothing behind (20,000 rows).

It asserts that the bench works (every case ran, its rows were checked, the table and verdicts were printed, no
process survived), never how fast anything is: performance is measured by the bench itself, not asserted in tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "bench_bigquery.py"

pytestmark = pytest.mark.slow


def test_quick_bench_runs_every_case_and_cleans_up(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TMPDIR": str(tmp_path),  # the bench's private dirs land here (Ray's stays under /tmp: short socket paths)
    }
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--rows", "20000"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out[-3000:]}\n{result.stderr[-3000:]}"
    table = out[out.index("BigQuery on bqemulator") :]
    for case in (
        "raw BigQueryReadClient",
        "Ray read_bigquery, 2 streams -> Arrow on driver",
        "Ray read_bigquery, 2 streams -> materialize()",
        "Spark format('bigquery'), 2 partitions -> toArrow()",
        "Spark format('bigquery'), 2 partitions -> count()",
        "REST list_rows().to_arrow()",
        "raw BigQueryWriteClient, 1 PENDING stream",
        "storage.write_stream + commit_write",
        "Ray write_bigquery, 2 blocks",
        "Spark format('bigquery').save()",
    ):
        assert case in table, f"{case!r} missing from the table:\n{table}"
    verdicts = [line for line in table.splitlines() if line.startswith(("PASS ", "BELOW "))]
    assert len(verdicts) == 4, table
    assert "processes left behind: none" in out
    assert not any(tmp_path.glob("kuberay-bqbench-*")), "the bench left its private directory behind"
