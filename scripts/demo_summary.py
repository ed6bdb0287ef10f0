"""Summarise a demo run from its real outputs: the Airflow metadata DB (task states, durations, XComs), the driver
log of the training job (in the ``airflow dags test`` output), queries against the BigQuery emulator, and the local
Kubernetes API. Nothing here is a hard-coded figure.

Run by ``scripts/demo.sh`` after ``airflow dags test`` and before ``kuberay-local down``, with the stack's env
sourced and the demo's AIRFLOW_HOME::

    python scripts/demo_summary.py --dag-id ray_retraining --stack-dir DIR --log dags-test.log \\
        --seed-json seed.json --seed-seconds 4.2 --json-out summary.json

Exit code 0 when every task that ran succeeded, the retraining outputs exist and no RayCluster is left.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

STAGES = (("ETL", "etl_local", "etl_spark_operator"), ("train", "train"), ("teardown confirm", "confirm_teardown"))


def _decode(value: Any) -> Any:
    """An XCom value as stored (JSON, possibly a JSON string holding a job's JSON summary line) → Python."""
    for _ in range(3):
        if not isinstance(value, str | bytes):
            return value
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return value


def airflow_run(dag_id: str) -> dict[str, Any]:
    """The latest run of ``dag_id``: run id, state, and per task (short id) its state, seconds and XCom."""
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session

    try:  # Airflow 3's ORM model of XCom rows; Airflow 2 has only XCom (whose value needs deserialising)
        from airflow.models.xcom import XComModel as xcom_rows

        def value_of(row: Any) -> Any:
            return _decode(row.value)
    except ImportError:
        from airflow.models.xcom import XCom as xcom_rows

        def value_of(row: Any) -> Any:
            return _decode(xcom_rows.deserialize_value(row))

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        if run is None:
            raise SystemExit(f"no run of {dag_id} in the metadata DB")
        tasks: dict[str, dict[str, Any]] = {}
        instances = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        never = run.end_date or run.start_date  # skipped tasks have no start: show them where they were decided
        for ti in sorted(instances, key=lambda t: (t.start_date or t.end_date or never, t.task_id)):
            rows = session.query(xcom_rows).filter_by(dag_id=dag_id, run_id=run.run_id, task_id=ti.task_id).all()
            tasks[ti.task_id.rsplit(".", 1)[-1]] = {
                "task_id": ti.task_id, "state": str(ti.state), "seconds": float(ti.duration or 0.0),
                "xcom": {row.key: value_of(row) for row in rows},
            }
        return {"run_id": run.run_id, "state": str(run.state), "tasks": tasks}


def driver_summary(log: Path | None, job: str) -> dict[str, Any] | None:
    """The last ``{"job": <job>, ...}`` JSON line a job printed (streamed into the task log)."""
    if log is None or not log.exists():
        return None
    found, decoder = None, json.JSONDecoder()
    for line in log.read_text(errors="replace").splitlines():
        start = line.find('{"')
        if start < 0 or f'"job": "{job}"' not in line:
            continue
        try:  # the log line may carry more text after the JSON (logger name, location)
            value, _ = decoder.raw_decode(line, start)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("job") == job:
            found = value
    return found


def bigquery_outputs(run_id: str, tables: dict[str, str]) -> dict[str, Any]:
    """Row counts of the output tables and the run's metrics, queried from the emulator over REST."""
    from kuberay_provider.bigquery.clients import bigquery_client
    from kuberay_provider.bigquery.config import BigQueryConfig

    config = BigQueryConfig.from_env()
    client = bigquery_client(config)

    errors: list[str] = []

    def rows(sql: str) -> list[Any]:
        try:
            return list(client.query(sql).result())
        except Exception as exc:  # a failed run may not have written a table: report it, keep summarising
            errors.append(f"{sql.split('`')[1]}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
            return []

    def count(sql: str) -> int | None:
        found = rows(sql)
        return int(found[0][0]) if found else None

    out: dict[str, Any] = {"project": config.project, "endpoint": config.rest_endpoint, "errors": errors}
    for name in ("events", "features"):
        out[f"{name}_rows"] = count(f"SELECT COUNT(*) FROM `{tables[name]}`")
    out["predictions_rows"] = count(f"SELECT COUNT(*) FROM `{tables['predictions']}` WHERE run_id = '{run_id}'")
    metrics = rows(f"SELECT split, rows, auc, logloss, accuracy FROM `{tables['metrics']}` WHERE run_id = '{run_id}'")
    out["metrics"] = {row["split"]: {k: row[k] for k in ("rows", "auc", "logloss", "accuracy")} for row in metrics}
    return out


def clusters_left(stack_dir: Path) -> int:
    """RayClusters the local Kubernetes API still serves (all namespaces)."""
    url = (stack_dir / "api-url").read_text().strip()
    with urllib.request.urlopen(f"{url}/apis/ray.io/v1/rayclusters", timeout=10) as resp:
        return len(json.loads(resp.read())["items"])


def _seconds(tasks: dict[str, Any], *names: str) -> float | None:
    ran = [tasks[n]["seconds"] for n in names if n in tasks and tasks[n]["state"] == "success"]
    return sum(ran) if ran else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def summarise(args: argparse.Namespace) -> tuple[dict[str, Any], list[str], bool]:
    """Collect the figures; returns (figures, printable lines, ok)."""
    run = airflow_run(args.dag_id)
    tasks = run["tasks"]
    ok = run["state"] == "success" and all(t["state"] in ("success", "skipped") for t in tasks.values())
    lines = [f"run {run['run_id']}: {run['state']}",
             "tasks: " + " ".join(f"{name}={t['state']}" for name, t in tasks.items())]
    figures: dict[str, Any] = {"run": run}
    stage_seconds = {name: t["seconds"] for name, t in tasks.items() if t["state"] == "success"}
    if args.dag_id == "ray_retraining":
        seed = json.loads(Path(args.seed_json).read_text().strip().splitlines()[-1]) if args.seed_json else {}
        etl = next((tasks[n]["xcom"].get("return_value") for n in ("etl_local", "etl_spark_operator")
                    if n in tasks and tasks[n]["state"] == "success"), None)
        if not isinstance(etl, dict):  # spark_operator mode: the driver's summary line is in the task log
            etl = driver_summary(args.log, "churn_etl") or {}
        train = driver_summary(args.log, "churn_train") or {}
        dataset = args.dataset
        tables = {"events": etl.get("events_table", f"{seed.get('dataset', '')}.events"),
                  "features": etl.get("features_table", f"{dataset}.features"),
                  "metrics": train.get("metrics_table", f"{dataset}.metrics"),
                  "predictions": train.get("predictions_table", f"{dataset}.predictions")}
        bq = bigquery_outputs(run["run_id"], tables)
        holdout = bq["metrics"].get("holdout", {})
        ok = ok and bool(bq["features_rows"]) and bool(bq["predictions_rows"]) and holdout.get("auc") is not None
        seeded = seed.get("rows", {})
        lines += [
            f"seeded: {seeded.get('events', '-')} events, {seeded.get('customers', '-')} customers "
            f"into {seed.get('dataset', '-')} (emulator {bq['endpoint']})",
            f"rows read by the ETL: {etl.get('events_read', '-')} events in [{etl.get('start', '-')}, {etl.get('end', '-')})",
            f"features written: {bq['features_rows'] if bq['features_rows'] is not None else '-'} rows in {tables['features']} "
            f"(ETL reported {etl.get('rows', '-')}, churn rate {etl.get('churn_rate', '-')})",
            f"training read: {train.get('rows_read', '-')} feature rows on {train.get('num_workers', '-')} Ray Train workers",
            "model: holdout AUC " + (f"{holdout['auc']:.4f}" if holdout.get("auc") is not None else "-")
            + f" on {holdout.get('rows', '-')} customers (train AUC "
            + (f"{bq['metrics']['train']['auc']:.4f}" if bq["metrics"].get("train", {}).get("auc") is not None else "-")
            + f"), predictions written: {bq['predictions_rows'] if bq['predictions_rows'] is not None else '-'} rows",
        ]
        lines += [f"BigQuery query failed: {error}" for error in bq["errors"]]
        figures.update(seed=seed, etl=etl, train_driver=train, bigquery=bq)
        stage_seconds = {"seed": args.seed_seconds, **{label: _seconds(tasks, *names) for label, *names in STAGES}}
    left = clusters_left(args.stack_dir)
    ok = ok and left == 0
    lines.append("time: " + " | ".join(f"{label} {_fmt(sec)}" for label, sec in stage_seconds.items()))
    lines.append(f"clusters left: {left}")
    figures.update(stage_seconds=stage_seconds, clusters_left=left)
    return figures, lines, ok


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--stack-dir", type=Path, required=True)
    parser.add_argument("--log", type=Path, default=None, help="the `airflow dags test` output")
    parser.add_argument("--seed-json", default=None, help="the seed command's output (its last line is JSON)")
    parser.add_argument("--seed-seconds", type=float, default=None, help="wall time of the seed command")
    parser.add_argument("--dataset", default="churn", help="the DAG's output dataset (kuberay_bq_dataset)")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    figures, lines, ok = summarise(args)
    for line in lines:
        print(f"  {line}")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2, default=str, sort_keys=True) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
