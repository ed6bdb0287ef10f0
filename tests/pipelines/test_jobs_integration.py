"""The ETL and training jobs end to end against the BigQuery emulator, run as the DAG runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from kuberay_provider.pipelines import JOBS_DIR
from kuberay_provider.pipelines.jobs.features import FEATURE_COLUMNS, LABEL_COLUMN

from .conftest import SEED_END

pytestmark = pytest.mark.slow
WINDOW_START = SEED_END - timedelta(weeks=8)
CUTOFF = SEED_END - timedelta(days=7)


def _run(cmd: list[str], env: dict[str, str], timeout: float = 240) -> dict:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{cmd[1]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def etl(seeded, job_env, tmp_path_factory) -> dict:
    """churn_etl.py as a plain script with local[2] Spark, as the builder's local mode runs it."""
    local = tmp_path_factory.mktemp("spark")
    return _run([
        sys.executable, str(JOBS_DIR / "churn_etl.py"), "--start", WINDOW_START.isoformat(), "--end", SEED_END.isoformat(),
        "--events-table", "raw.events", "--customers-table", "raw.customers", "--features-table", "churn.features",
        "--master", "local[2]", "--conf", "spark.ui.enabled=false", "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.shuffle.partitions=2", "--conf", f"spark.local.dir={local}",
    ], job_env)  # fmt: skip


@pytest.fixture(scope="module")
def trained(etl, job_env, tmp_path_factory) -> tuple[dict, Path]:
    """churn_train.py with a private local Ray instance and two Ray Train workers."""
    import tempfile

    model_dir = tmp_path_factory.mktemp("model")
    ray_tmp = tempfile.mkdtemp(prefix="kpt-", dir="/tmp")
    summary = _run([
        sys.executable, str(JOBS_DIR / "churn_train.py"), "--features-table", "churn.features",
        "--metrics-table", "churn.metrics", "--predictions-table", "churn.predictions", "--model-uri", str(model_dir),
        "--run-id", "test-run", "--num-workers", "2", "--num-boost-round", "40", "--report-every", "20",
        # 3 logical CPUs: one per Ray Train worker plus one for the Ray Data tasks feeding them (with only 2, the
        # workers hold every CPU and the dataset split tasks never get scheduled).
        "--ray-temp-dir", ray_tmp, "--num-cpus", "3", "--object-store-mb", "200",
    ], job_env, timeout=300)  # fmt: skip
    return summary, model_dir


def _expected_features(seeded) -> tuple[dict[int, int], dict[int, int]]:
    """Labels and event counts per customer, computed independently with pandas from the seed's own tables."""
    events = seeded["data"].events.to_pandas()
    history = events[(events.event_ts >= WINDOW_START) & (events.event_ts < CUTOFF)]
    later = set(events[(events.event_ts >= CUTOFF) & (events.event_ts < SEED_END)].customer_id)
    counts = history.groupby("customer_id").size().to_dict()
    labels = {int(c): int(c not in later) for c in counts}
    return labels, {int(c): int(n) for c, n in counts.items()}


def test_etl_writes_one_row_per_active_customer_with_correct_labels(etl, seeded, emulator):
    from kuberay_provider.bigquery.clients import bigquery_client

    labels, counts = _expected_features(seeded)
    assert etl["rows"] == len(labels)
    assert etl["cutoff"] == CUTOFF.isoformat()
    rows = bigquery_client(emulator.config).list_rows("local-project.churn.features").to_arrow(
        create_bqstorage_client=False  # REST: the stock Storage client would dial bigquerystorage.googleapis.com
    ).to_pylist()
    assert len(rows) == len(labels)
    assert set(FEATURE_COLUMNS) | {LABEL_COLUMN, "customer_id", "snapshot_ts"} <= set(rows[0])
    assert {r["customer_id"]: r[LABEL_COLUMN] for r in rows} == labels
    assert {r["customer_id"]: r["n_events"] for r in rows} == counts
    assert all(r["recency_days"] >= 0 and r["n_sessions"] <= r["n_events"] for r in rows)
    assert 0.05 < etl["churn_rate"] < 0.8  # both classes present in a realistic mix


def test_training_writes_metrics_predictions_and_model(trained, etl, emulator):
    import xgboost

    from kuberay_provider.bigquery.clients import bigquery_client

    summary, model_dir = trained
    assert summary["rows_read"] == etl["rows"]
    holdout = summary["metrics"]["holdout"]
    assert holdout["rows"] + summary["metrics"]["train"]["rows"] == etl["rows"]
    assert holdout["auc"] > 0.75, holdout  # the seed's churn signal is learnable
    assert 0.0 < holdout["logloss"] < 0.6 and holdout["accuracy"] > 0.7

    client = bigquery_client(emulator.config)
    metrics = [dict(r) for r in client.query(
        "SELECT split, rows, auc, logloss, accuracy FROM `local-project.churn.metrics` WHERE run_id = 'test-run'").result()]
    assert {m["split"]: m["rows"] for m in metrics} == {"train": summary["metrics"]["train"]["rows"], "holdout": holdout["rows"]}
    predictions = client.list_rows("local-project.churn.predictions").to_arrow(create_bqstorage_client=False).to_pylist()
    assert len(predictions) == etl["rows"]
    assert all(0.0 <= p["churn_probability"] <= 1.0 and p["predicted_churn"] in (0, 1) for p in predictions)
    assert {p["run_id"] for p in predictions} == {"test-run"}

    model_file = Path(summary["model_uri"])
    assert model_file == model_dir / "model.json"
    booster = xgboost.Booster()
    booster.load_model(str(model_file))
    assert booster.num_features() == len(FEATURE_COLUMNS)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["features"] == list(FEATURE_COLUMNS) and metadata["run_id"] == "test-run"
