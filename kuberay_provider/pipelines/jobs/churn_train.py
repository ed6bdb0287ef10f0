"""Ray training job: churn features in BigQuery → distributed XGBoost (Ray Train) → metrics, predictions, model.

Steps, all inside the Ray cluster (nothing passes through Airflow):

1. read the features table with :func:`kuberay_provider.bigquery.ray_io.read_bigquery`;
2. split it deterministically by customer id into train and holdout (``--holdout-fraction``);
3. train XGBoost on ``--num-workers`` Ray Train workers (``XGBoostTrainer`` with ``train_loop_per_worker``; metrics
   are reported every ``--report-every`` rounds, not every round, because each report waits for the Train
   controller's health-check tick);
4. score every row with Ray Data (batch inference), compute AUC, log loss and accuracy per split;
5. the quality gate (:mod:`~kuberay_provider.pipelines.jobs.gate`): read the current champion's holdout metric
   from the metrics table (the newest ``split = 'champion'`` row) and decide whether the new model beats it by
   ``--promotion-margin``; the decision and its reason are printed (the driver log is the Airflow task log);
6. write the metrics and predictions tables with :func:`~kuberay_provider.bigquery.ray_io.write_bigquery`
   (the predictions table is overwritten, metrics are appended: one row per split and run, plus a ``champion`` row
   when the model is promoted);
7. save the model (XGBoost JSON) and its metadata (the gate decision included) under ``--model-uri`` (a local path,
   ``file://`` or ``gs://`` through ``pyarrow.fs``); on promotion write the champion pointer ``champion.json`` next
   to it (``--champion-uri``). A model held back stays a challenger: the job still succeeds.

The last stdout line is a JSON summary: rows read, metrics, model URI, seconds.
Connects to the job's Ray cluster when ``RAY_ADDRESS``/``--ray-address`` is set (``ray job submit`` sets it), otherwise
starts a private local Ray instance (``--num-cpus``, ``--object-store-mb``, ``--ray-temp-dir``) and shuts it down.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kuberay_provider.pipelines.jobs._cli import fraction_arg, positive_int_arg, print_summary, qualify, table_arg
from kuberay_provider.pipelines.jobs.features import FEATURE_COLUMNS, ID_COLUMNS, LABEL_COLUMN
from kuberay_provider.pipelines.jobs.gate import (
    CHAMPION_SPLIT,
    DEFAULT_GATE_METRIC,
    GATE_METRICS,
    GateDecision,
    champion_pointer,
    champion_pointer_uri,
    check_margin,
    decide,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MODEL_FILE = "model.json"
METADATA_FILE = "metadata.json"
HEALTH_CHECK_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
SPLIT_BUCKETS = 10_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the CLI; errors name the argument."""
    parser = argparse.ArgumentParser(prog="churn_train.py", description="Train the churn model with Ray Train + XGBoost.")
    parser.add_argument("--features-table", type=table_arg("--features-table"), required=True)
    parser.add_argument("--metrics-table", type=table_arg("--metrics-table"), required=True)
    parser.add_argument("--predictions-table", type=table_arg("--predictions-table"), required=True)
    parser.add_argument("--model-uri", required=True, help="directory for model.json + metadata.json (path, file:// or gs://)")
    parser.add_argument("--project", default=None, help="BigQuery project (default $KUBERAY_BQ_PROJECT)")
    parser.add_argument("--run-id", default=None, help="identifies this run in the metrics/predictions (default: UTC time)")
    parser.add_argument("--num-workers", type=positive_int_arg("--num-workers"), default=2, help="Ray Train workers (1 CPU each)")
    parser.add_argument("--num-boost-round", type=positive_int_arg("--num-boost-round"), default=100)
    parser.add_argument("--max-depth", type=positive_int_arg("--max-depth"), default=5)
    parser.add_argument("--learning-rate", type=fraction_arg("--learning-rate"), default=0.1)
    parser.add_argument("--holdout-fraction", type=fraction_arg("--holdout-fraction"), default=0.2)
    parser.add_argument("--report-every", type=positive_int_arg("--report-every"), default=25,
                        help="report training metrics to Ray Train every N rounds (default 25)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--storage-path", default=None, help="Ray Train storage (default: <model-uri>/_ray_train)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster to join (default $RAY_ADDRESS, else a local one)")
    parser.add_argument("--num-cpus", type=positive_int_arg("--num-cpus"), default=None, help="local Ray only")
    parser.add_argument("--object-store-mb", type=positive_int_arg("--object-store-mb", 75), default=300, help="local Ray only")
    parser.add_argument("--ray-temp-dir", default=None, help="local Ray only: a short private temp dir")
    parser.add_argument("--gate-metric", choices=sorted(GATE_METRICS), default=DEFAULT_GATE_METRIC,
                        help="holdout metric the quality gate compares (default auc)")
    parser.add_argument("--promotion-margin", type=_margin_arg, default=0.0,
                        help="promote only when better than the champion by at least this much (default 0)")
    parser.add_argument("--champion-uri", default=None,
                        help="the champion pointer (default: champion.json next to --model-uri)")
    args = parser.parse_args(argv)
    if not args.model_uri.strip():
        parser.error("--model-uri must not be empty")
    if args.champion_uri is None:
        try:
            args.champion_uri = champion_pointer_uri(args.model_uri)
        except ValueError as exc:
            parser.error(f"--champion-uri is needed: {exc}")
    return args


def _margin_arg(value: str) -> float:
    try:
        return check_margin(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("promotion_margin=", "--promotion-margin=")) from None


# --------------------------------------------------------------------------------------------- pure helpers
def holdout_mask(customer_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for rows in the holdout: a stable hash of (seed, customer id), so reruns split identically."""
    import numpy as np

    salt = seed.to_bytes(8, "little", signed=True)
    buckets = np.fromiter((zlib.crc32(salt + int(c).to_bytes(8, "little", signed=True)) % SPLIT_BUCKETS
                           for c in customer_ids), dtype=np.int64, count=len(customer_ids))
    return buckets < round(fraction * SPLIT_BUCKETS)


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float | None]:
    """AUC (None with one class), log loss, accuracy at 0.5 and the positive rate."""
    import numpy as np
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    if labels.size == 0:
        return {"auc": None, "logloss": None, "accuracy": None, "positive_rate": None}
    auc = float(roc_auc_score(labels, probabilities)) if np.unique(labels).size == 2 else None
    return {
        "auc": auc,
        "logloss": float(log_loss(labels, probabilities, labels=[0, 1])),
        "accuracy": float(accuracy_score(labels, probabilities >= 0.5)),
        "positive_rate": float(labels.mean()),
    }


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri) if "://" in uri else (fs.LocalFileSystem(), os.path.abspath(uri))


def write_model(model_uri: str, model_json: bytes, metadata: dict[str, Any]) -> str:
    """Write ``model.json`` and ``metadata.json`` under ``model_uri``; returns the model file's URI."""
    base = model_uri.rstrip("/")
    filesystem, path = _filesystem(base)
    filesystem.create_dir(path, recursive=True)
    for name, payload in ((MODEL_FILE, model_json), (METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True).encode())):
        with filesystem.open_output_stream(f"{path}/{name}") as out:
            out.write(payload)
    return f"{base}/{MODEL_FILE}" if "://" in base else f"{path}/{MODEL_FILE}"


def write_champion_pointer(champion_uri: str, pointer: dict[str, Any]) -> None:
    """Write the champion pointer (JSON) at ``champion_uri``, replacing the previous one."""
    filesystem, path = _filesystem(champion_uri)
    filesystem.create_dir(posixpath.dirname(path), recursive=True)
    with filesystem.open_output_stream(path) as out:
        out.write(json.dumps(pointer, indent=2, sort_keys=True).encode())


def read_champion(metrics_table: str, metric: str, config: Any) -> dict[str, Any] | None:
    """The current champion (newest ``champion`` row of ``metrics_table``: run_id, model_uri, the metric), or None
    when there is none yet (no such row, or no table)."""
    from google.api_core.exceptions import NotFound

    from kuberay_provider.bigquery.clients import bigquery_client

    sql = (f"SELECT run_id, model_uri, {metric} AS value FROM `{metrics_table}` "
           f"WHERE split = '{CHAMPION_SPLIT}' ORDER BY trained_at DESC LIMIT 1")  # metric: one of GATE_METRICS
    client = bigquery_client(config)
    try:
        client.get_table(metrics_table)  # the first run of a pipeline has no metrics table yet
        rows = [dict(row) for row in client.query(sql).result()]
    except NotFound:
        return None
    return rows[0] if rows else None


def gate(candidate: float | None, champion: dict[str, Any] | None, *, metric: str, margin: float) -> GateDecision:
    """The gate's decision for this run, printed with its reason (the line lands in the Airflow task log)."""
    decision = decide(candidate, None if champion is None else champion["value"], metric=metric, margin=margin)
    against = "" if champion is None else f" (champion: run {champion['run_id']}, {champion['model_uri']})"
    verdict = "PROMOTED to champion" if decision.promote else "HELD BACK as challenger"
    print(f"Quality gate: {verdict}: {decision.reason}{against}", flush=True)
    return decision


# --------------------------------------------------------------------------------------------- Ray parts
def _add_split(batch: pa.Table, *, fraction: float, seed: int) -> pa.Table:
    import pyarrow as pa

    mask = holdout_mask(batch.column("customer_id").to_numpy(zero_copy_only=False), fraction, seed)
    return batch.append_column("split", pa.array(["holdout" if m else "train" for m in mask], type=pa.string()))


def _only(batch: pa.Table, *, split: str) -> pa.Table:
    import pyarrow.compute as pc

    return batch.filter(pc.equal(batch.column("split"), split))


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train worker: fit XGBoost on this worker's shard; the Train XGBoost backend wires up the collective."""
    import ray.train
    import xgboost
    from ray.train.xgboost import RayTrainReportCallback

    class SparseReportCallback(RayTrainReportCallback):
        """Report metrics every ``every`` rounds (each report waits for a controller tick) and checkpoint at the end."""

        def __init__(self, every: int) -> None:
            super().__init__(metrics=["train-logloss", "holdout-logloss", "holdout-auc"], frequency=0)
            self._every = every

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            self._evals_log = evals_log
            if (epoch + 1) % self._every == 0 and (epoch + 1) < config["num_boost_round"]:
                self._report_metrics(self._get_report_dict(evals_log))
            return False

    features = config["features"]

    def matrix(name: str) -> xgboost.DMatrix:
        frame = ray.train.get_dataset_shard(name).materialize().to_pandas()
        return xgboost.DMatrix(frame[features].astype("float32"), label=frame[LABEL_COLUMN].astype("float32"))

    dtrain, dholdout = matrix("train"), matrix("holdout")
    xgboost.train(
        config["params"], dtrain, num_boost_round=config["num_boost_round"],
        evals=[(dtrain, "train"), (dholdout, "holdout")], verbose_eval=False,
        callbacks=[SparseReportCallback(config["report_every"])],
    )  # fmt: skip


class Scorer:
    """Ray Data batch-inference callable: adds churn_probability and predicted_churn."""

    def __init__(self, model_json: bytes, features: Sequence[str]) -> None:
        import xgboost

        self.booster = xgboost.Booster()
        self.booster.load_model(bytearray(model_json))
        self.features = list(features)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa
        import xgboost

        frame = batch.select(self.features).to_pandas().astype("float32")
        probability = self.booster.predict(xgboost.DMatrix(frame))
        return batch.append_column("churn_probability", pa.array(probability.astype("float64"))).append_column(
            "predicted_churn", pa.array((probability >= 0.5).astype("int64"))
        )


def _init_ray(args: argparse.Namespace) -> bool:
    """Join the job's cluster or start a private local instance; returns True if this process owns it."""
    import ray

    os.environ.setdefault(HEALTH_CHECK_ENV, "0.1")  # inherited by a local instance's Train controller
    address = args.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return False
    ray.init(
        address="local", num_cpus=args.num_cpus or args.num_workers + 1, include_dashboard=False,
        object_store_memory=args.object_store_mb * 1024 * 1024,
        _temp_dir=args.ray_temp_dir or tempfile.mkdtemp(prefix="rt-", dir="/tmp"),
    )  # fmt: skip
    return True


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the training job for parsed ``args``; returns the summary printed by :func:`main`."""
    import numpy as np
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

    from kuberay_provider.bigquery.config import BigQueryConfig
    from kuberay_provider.bigquery.ray_io import read_bigquery, write_bigquery

    began = time.monotonic()
    config = BigQueryConfig.from_env(**({"project": args.project} if args.project else {}))
    features_table, metrics_table, predictions_table = (
        qualify(t, config.project) for t in (args.features_table, args.metrics_table, args.predictions_table)
    )
    run_id = args.run_id or datetime.now(UTC).strftime("manual__%Y%m%dT%H%M%S")
    owns_ray = _init_ray(args)
    try:
        columns = [*ID_COLUMNS, *FEATURE_COLUMNS, LABEL_COLUMN]
        data = read_bigquery(table=features_table, columns=columns, config=config).map_batches(
            _add_split, batch_format="pyarrow", fn_kwargs={"fraction": args.holdout_fraction, "seed": args.seed}
        ).materialize()
        rows = data.count()
        if rows == 0:
            raise SystemExit(f"--features-table={features_table} has no rows: nothing to train on")
        splits = {name: data.map_batches(_only, batch_format="pyarrow", fn_kwargs={"split": name})
                  for name in ("train", "holdout")}
        read_seconds = time.monotonic() - began

        trained = time.monotonic()
        storage_path = args.storage_path or f"{args.model_uri.rstrip('/')}/_ray_train"
        if "://" not in storage_path:
            storage_path = os.path.abspath(storage_path)
        trainer = XGBoostTrainer(
            train_loop_per_worker,
            train_loop_config={
                "features": list(FEATURE_COLUMNS), "num_boost_round": args.num_boost_round, "report_every": args.report_every,
                "params": {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "tree_method": "hist",
                           "max_depth": args.max_depth, "eta": args.learning_rate, "seed": args.seed, "nthread": 1},
            },
            scaling_config=ScalingConfig(num_workers=args.num_workers, resources_per_worker={"CPU": 1}),
            run_config=RunConfig(name=f"churn-{zlib.crc32(run_id.encode()):08x}", storage_path=storage_path),
            datasets=splits,
        )  # fmt: skip
        result = trainer.fit()
        booster = RayTrainReportCallback.get_model(result.checkpoint)
        model_json = bytes(booster.save_raw("json"))
        training_seconds = time.monotonic() - trained

        model_uri = f"{args.model_uri.rstrip('/')}/{MODEL_FILE}"
        scored = data.map_batches(
            Scorer, fn_constructor_kwargs={"model_json": model_json, "features": FEATURE_COLUMNS},
            batch_format="pyarrow", concurrency=1, batch_size=65_536,
        ).materialize()  # fmt: skip
        outcome = scored.select_columns(["split", LABEL_COLUMN, "churn_probability"]).to_pandas()
        trained_at = datetime.now(UTC)
        metrics: dict[str, dict[str, Any]] = {}
        for split in ("train", "holdout"):
            part = outcome[outcome["split"] == split]
            metrics[split] = {"rows": len(part), **binary_metrics(part[LABEL_COLUMN].to_numpy(),
                                                                 part["churn_probability"].to_numpy())}
        champion = read_champion(metrics_table, args.gate_metric, config)
        decision = gate(metrics["holdout"][args.gate_metric], champion, metric=args.gate_metric,
                        margin=args.promotion_margin)
        # The model first: a champion row or pointer never names a model that is not there.
        saved_uri = write_model(args.model_uri, model_json, {
            "run_id": run_id, "trained_at": trained_at.isoformat(), "features": list(FEATURE_COLUMNS),
            "label": LABEL_COLUMN, "features_table": features_table, "metrics": metrics,
            "xgboost_params": {"max_depth": args.max_depth, "eta": args.learning_rate, "num_boost_round": args.num_boost_round},
            "gate": decision.as_dict(),
        })  # fmt: skip
        rows_by_split = [*metrics.items(), *([(CHAMPION_SPLIT, metrics["holdout"])] if decision.promote else [])]
        metrics_rows = [
            {"run_id": run_id, "split": split, "trained_at": trained_at, "features_table": features_table,
             "model_uri": model_uri, "num_workers": args.num_workers, "num_boost_round": args.num_boost_round,
             "training_seconds": round(training_seconds, 3), **{k: (float(v) if v is not None else None)
                                                                 for k, v in values.items() if k != "rows"},
             "rows": int(values["rows"])}
            for split, values in rows_by_split
        ]  # fmt: skip
        write_bigquery(ray.data.from_items(metrics_rows), metrics_table, config=config, mode="append")
        # Materialised so the write is not fused with the transforms: a fused Write hands the datasink the
        # schema of its *input* bundle (before drop/stamp), which does not match the blocks it then writes.
        predictions = scored.drop_columns(list(FEATURE_COLUMNS)).map_batches(
            _stamp, batch_format="pyarrow", fn_kwargs={"run_id": run_id, "model_uri": model_uri}
        ).materialize()
        write_bigquery(predictions, predictions_table, config=config, mode="overwrite")
        if decision.promote:
            write_champion_pointer(args.champion_uri, champion_pointer(
                run_id=run_id, model_uri=saved_uri, decision=decision, promoted_at=trained_at.isoformat()))
        model_uri = saved_uri
    finally:
        if owns_ray:
            ray.shutdown()
    return {
        "job": "churn_train", "run_id": run_id, "features_table": features_table, "rows_read": int(rows),
        "metrics_table": metrics_table, "predictions_table": predictions_table, "model_uri": model_uri,
        "metrics": {split: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}
                    for split, m in metrics.items()},
        "num_workers": args.num_workers, "read_seconds": round(read_seconds, 2),
        "training_seconds": round(training_seconds, 2), "seconds": round(time.monotonic() - began, 2),
        "positive_rate": float(np.round(metrics["holdout"]["positive_rate"] or 0.0, 4)),
        "gate": {**decision.as_dict(), "champion_uri": args.champion_uri},
    }  # fmt: skip


def _stamp(batch: pa.Table, *, run_id: str, model_uri: str) -> pa.Table:
    import pyarrow as pa

    n = batch.num_rows
    return batch.append_column("run_id", pa.array([run_id] * n, type=pa.string())).append_column(
        "model_uri", pa.array([model_uri] * n, type=pa.string())
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    summary = run(parse_args(argv))
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
