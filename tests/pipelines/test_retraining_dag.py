"""``dags/ray_retraining.py`` end to end on an in-process local stack with the BigQuery emulator: seed → Spark ETL
(local Spark) → XGBoost on a transient local Ray cluster (RayJob) → metrics/predictions in BigQuery → teardown
confirmed; its OpenLineage events are checked too. One run, 20k events; everything is real (emulator over
REST/gRPC, Spark, Ray, the Airflow DAG file).
The DAG runs as a user runs it, ``airflow dags test`` (the CLI), with only ``kubernetes_default`` as a ``kuberay``
connection in GKE mode (fake GKE API, HTTPS, Google tokens expiring every 5 s) and its ``google_cloud_default``
credentials; the training task waits deferred (the trigger's shared client and informer), so the sync wait of the
example DAG and this deferrable one both span many token lifetimes.

It is also the test of the two jobs themselves (the DAG runs them exactly as shipped): the ETL's features and labels
are compared with an independent pandas computation, and the trained model is loaded back with xgboost."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from kuberay_provider.local.stack import LocalStack
from kuberay_provider.pipelines.jobs.features import FEATURE_COLUMNS, LABEL_COLUMN
from tests.integration.airflow_support import AIRFLOW_2, run_dag, task_states, xcom
from tests.lineage.support import assert_retraining_lineage, openlineage_env
from tests.pipelines.asset_support import asset_events, queued_consumers, register_dags

pytestmark = pytest.mark.slow
TOKEN_LIFETIME = 5.0
REPO = Path(__file__).resolve().parents[2]
ROWS = 20_000
END = datetime(2026, 11, 16, tzinfo=UTC)  # the seed's window ends here; so does the run's data interval
GROUP = "churn"
ASSETS = "bigquery://local-project/churn"  # the DAG's table assets (bigquery://project/dataset/table)
#: every lane installs Airflow's OpenLineage provider (test extra); the retraining run then checks its lineage too
OPENLINEAGE = importlib.util.find_spec("airflow.providers.openlineage") is not None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A private stack with the emulator (the session ``local_stack`` runs without one)."""
    stack = LocalStack(tmp_path_factory.mktemp("retraining-stack"), requeue_seconds=1.0, bigquery=True, gke=True,
                       token_lifetime=TOKEN_LIFETIME)
    stack.start()
    try:
        yield stack
    finally:
        emulator_pid = stack.bigquery_emulator.pid if stack.bigquery_emulator else None
        stack.stop()  # raises if a Ray, Spark or emulator process is left
        assert emulator_pid is not None and not _alive(emulator_pid)


@pytest.fixture(scope="module")
def seeded(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The seed CLI reading the endpoints from an env file, as ``kuberay-local up`` writes it."""
    from kuberay_provider.local.cli import env_file_text

    env_file = tmp_path_factory.mktemp("env") / "env"
    env_file.write_text(env_file_text(stack.env))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KUBERAY_BQ_")}
    result = subprocess.run(
        [sys.executable, "-m", "kuberay_provider.pipelines.seed", "--env-file", str(env_file), "--rows", str(ROWS),
         "--end", END.isoformat()],
        env=clean, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def airflow_home() -> Path:
    home = Path(os.environ["AIRFLOW_HOME"])
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}, timeout=300)
    return home


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _java_processes(spark_local_dirs: Path) -> set[int]:
    """Java processes of this test's Spark (its ``SPARK_LOCAL_DIRS``): the CLI's Spark JVM is not our descendant
    once the CLI exited, and other test workers may run a Spark of their own meanwhile."""
    found = set()
    for proc in psutil.process_iter():
        try:
            if "java" in " ".join(_cmdline(proc)) and proc.environ().get("SPARK_LOCAL_DIRS") == str(spark_local_dirs):
                found.add(proc.pid)
        except psutil.Error:
            continue
    return found


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _expected_features(rows: int) -> tuple[dict[int, int], dict[int, int]]:
    """Labels and event counts per customer for the DAG's window (8 weeks before ``END``, the last 7 days label)."""
    from datetime import timedelta

    from kuberay_provider.pipelines.seed import generate

    events = generate(rows, end=END).events.to_pandas()
    start, cutoff = END - timedelta(weeks=8), END - timedelta(days=7)
    history = events[(events.event_ts >= start) & (events.event_ts < cutoff)]
    later = set(events[(events.event_ts >= cutoff) & (events.event_ts < END)].customer_id)
    counts = history.groupby("customer_id").size().to_dict()
    return {int(c): int(c not in later) for c in counts}, {int(c): int(n) for c, n in counts.items()}


def _consumer_dag() -> Any:
    import runpy

    return runpy.run_path(str(REPO / "dags" / "churn_predictions_report.py"))["dag"]


def _champions(client: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in client.query(
        "SELECT run_id, model_uri, auc FROM `local-project.churn.metrics` WHERE split = 'champion' "
        "ORDER BY trained_at").result()]  # fmt: skip


def _list(stack: LocalStack, plural: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"{stack.api_url}/apis/ray.io/v1/{plural}", timeout=10) as resp:
        return json.loads(resp.read())["items"]


@pytest.mark.composer
@pytest.mark.skipif(AIRFLOW_2, reason=(
    "Airflow 2's `airflow dags test <date>` makes the date the weekly run's data_interval_start, so the DAG reads "
    "another 8-week window than the seeded one and the expected counts do not hold (the DAG itself succeeds there)"))
def test_retraining_dag_end_to_end(stack, seeded, airflow_home, tmp_path) -> None:
    from airflow.models import DagRun

    from kuberay_provider.bigquery.clients import bigquery_client

    assert "KUBECONFIG" not in stack.env and "kube_config" not in stack.env["AIRFLOW_CONN_KUBERNETES_DEFAULT"]
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "RAY_ADDRESS")}
    env.update(stack.env)  # the connections and the DAG's Variables, as DIR/env carries them
    env.update({"SPARK_LOCAL_DIRS": str(tmp_path / "spark"), "AIRFLOW_VAR_KUBERAY_STAGING_URI": str(tmp_path / "staging"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"})
    # OpenLineage as a user turns it on (file transport): the same run is the lineage test of the pipeline
    lineage_file = tmp_path / "openlineage.jsonl"
    if OPENLINEAGE:
        env.update(openlineage_env(lineage_file))
    airflow = str(Path(sys.executable).parent / "airflow")
    register_dags(_consumer_dag())  # scheduled on the predictions asset, unpaused
    started = time.monotonic()
    result = subprocess.run([airflow, "dags", "test", "ray_retraining", END.isoformat()], env=env,
                            capture_output=True, text=True, timeout=900, cwd="/")
    seconds = time.monotonic() - started
    out, err = result.stdout, result.stderr
    assert result.returncode == 0, (out + err)[-6000:]
    (dag_run,) = DagRun.find(dag_id="ray_retraining")
    states = task_states(dag_run)
    assert states == {f"{GROUP}.choose_etl": "success", f"{GROUP}.etl_local": "success",
                      f"{GROUP}.etl_spark_operator": "skipped", f"{GROUP}.stage_cluster_package": "success",
                      f"{GROUP}.train": "success", f"{GROUP}.confirm_teardown": "success"}, (out + err)[-6000:]
    issued = [t for who, t in stack.google.issued if who.startswith("airflow@")]
    print(f"GKE mode: {len(issued)} tokens issued to the Airflow side in {seconds:.0f} s (token lifetime "
          f"{TOKEN_LIFETIME:.0f} s); 401s answered: {stack.server.unauthorized}")
    assert len(issued) >= 3 and not any(token in out + err for token in stack.google.tokens)

    # The training job ran on a stock Ray image (the local stack refuses Airflow and this package there) with the
    # provider's cluster side shipped as runtime_env py_modules and its libraries named in pip.
    (rayjob,) = _list(stack, "rayjobs")
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"].startswith("rayproject/ray:")
    runtime_env = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])
    (staged,) = runtime_env["py_modules"]
    assert staged.startswith((tmp_path / "staging").resolve().as_uri() + "/kuberay_provider_cluster-")
    assert {"xgboost-cpu>=2.0", "scikit-learn>=1.3", "google-cloud-bigquery>=3.20"} <= set(runtime_env["pip"])

    # ETL: every seeded event of the 8-week window read, one feature row per active customer written.
    etl = xcom(dag_run, f"{GROUP}.etl_local")
    etl = json.loads(etl) if isinstance(etl, str) else etl
    assert etl["events_read"] == seeded["rows"]["events"] > ROWS * 0.8
    assert etl["end"] == END.isoformat() and etl["features_table"] == "local-project.churn.features"
    client = bigquery_client(stack.bigquery_emulator.config)

    def scalar(sql: str) -> Any:
        return next(iter(client.query(sql).result()))[0]

    features = scalar("SELECT COUNT(*) FROM `local-project.churn.features`")
    assert features == etl["rows"] and 0.5 * seeded["rows"]["customers"] < features <= seeded["rows"]["customers"]
    labelled = scalar("SELECT COUNT(*) FROM `local-project.churn.features` WHERE label IN (0, 1)")
    assert labelled == features
    # The ETL's labels and counts equal an independent pandas computation over the seed's own (deterministic) data.
    labels, counts = _expected_features(ROWS)
    rows = client.list_rows("local-project.churn.features").to_arrow(create_bqstorage_client=False).to_pylist()
    assert set(FEATURE_COLUMNS) | {LABEL_COLUMN, "customer_id", "snapshot_ts"} <= set(rows[0])
    assert {r["customer_id"]: r[LABEL_COLUMN] for r in rows} == labels
    assert {r["customer_id"]: r["n_events"] for r in rows} == counts
    assert all(r["recency_days"] >= 0 and r["n_sessions"] <= r["n_events"] for r in rows)
    assert 0.05 < etl["churn_rate"] < 0.8  # both classes present in a realistic mix

    # Training: metrics per split for this run, a learnable signal, a prediction per feature row, a saved model.
    metrics = {row["split"]: dict(row) for row in client.query(
        "SELECT split, rows, auc, logloss, accuracy, num_workers FROM `local-project.churn.metrics` "
        f"WHERE run_id = '{dag_run.run_id}' AND split != 'champion'").result()}  # fmt: skip
    assert set(metrics) == {"train", "holdout"}
    assert metrics["train"]["rows"] + metrics["holdout"]["rows"] == features
    assert metrics["holdout"]["auc"] > 0.7 and 0 < metrics["holdout"]["logloss"] < 0.7, metrics
    assert metrics["holdout"]["num_workers"] == 2
    predictions = scalar(f"SELECT COUNT(*) FROM `local-project.churn.predictions` WHERE run_id = '{dag_run.run_id}'")
    assert predictions == features
    bad = scalar("SELECT COUNT(*) FROM `local-project.churn.predictions` "
                 "WHERE churn_probability < 0 OR churn_probability > 1 OR predicted_churn NOT IN (0, 1)")
    assert bad == 0
    model = stack.model_root / END.strftime("%Y%m%d") / "model.json"
    metadata = json.loads((model.parent / "metadata.json").read_text())
    assert metadata["run_id"] == dag_run.run_id and metadata["features"] == list(FEATURE_COLUMNS)
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(model))  # a real, loadable model over exactly the feature columns
    assert booster.num_features() == len(FEATURE_COLUMNS)
    assert '"job": "churn_train"' in out + err  # the driver's summary was streamed into the task log

    # Quality gate, first run: no champion yet, so the model is promoted: a champion row and the pointer.
    champion = _champions(client)
    assert [(c["run_id"], c["model_uri"]) for c in champion] == [(dag_run.run_id, str(model))]
    assert champion[0]["auc"] == pytest.approx(metrics["holdout"]["auc"])
    pointer = json.loads((stack.model_root / "champion.json").read_text())
    assert pointer["run_id"] == dag_run.run_id and pointer["model_uri"] == str(model)
    assert pointer["metric"] == "auc" and pointer["value"] == pytest.approx(metrics["holdout"]["auc"])
    assert metadata["gate"]["decision"] == "promoted"
    assert "Quality gate: PROMOTED to champion: no champion yet" in out + err

    # Lineage: the ETL and training tasks reported their BigQuery tables with the schemas the jobs really wrote.
    if OPENLINEAGE:
        print(assert_retraining_lineage(lineage_file, client))
    else:
        print("lineage: not checked (apache-airflow-providers-openlineage not installed)")

    # Assets: Airflow recorded an event per table for this run and queued the DAG scheduled on the predictions.
    for table, task in (("features", "etl_local"), ("metrics", "train"), ("predictions", "train")):
        events = [e for e in asset_events(f"{ASSETS}/{table}") if e["dag_id"] == "ray_retraining"]
        assert events == [{"dag_id": "ray_retraining", "task_id": f"{GROUP}.{task}", "run_id": dag_run.run_id}], table
    assert queued_consumers(f"{ASSETS}/predictions") == {"churn_predictions_report"}

    # Teardown: the RayJob succeeded and is kept (cleanup_policy on_failure); no cluster, no Ray or Java process.
    train = xcom(dag_run, f"{GROUP}.train")
    assert train["job_status"] == "SUCCEEDED" and train["deployment_status"] == "Complete"
    assert [j["metadata"]["name"] for j in _list(stack, "rayjobs")] == [train["name"]]
    assert _list(stack, "rayclusters") == []
    assert stack.ray_pids() == [] and stack.leftover_ray_pids() == []
    assert _java_processes(tmp_path / "spark") == set()  # the ETL's Spark JVM is gone
    per_task = " ".join(f"{ti.task_id.split('.')[-1]}={ti.duration or 0:.1f}s" for ti in dag_run.get_task_instances())
    print(f"ray_retraining end to end: {seconds:.1f}s ({per_task}); {etl['events_read']} events, {features} features, "
          f"holdout AUC {metrics['holdout']['auc']:.3f}")


def test_a_second_run_that_does_not_beat_the_champion_by_the_margin_is_held_back(
        stack, seeded, airflow_home, monkeypatch, tmp_path, capfd) -> None:
    """The quality gate's second run, on the same stack after ``test_retraining_dag_end_to_end`` promoted the
    first model: the week before, with ``promotion_margin=1.0`` (no AUC beats a champion by 1), so the new model is
    kept as a challenger: the run succeeds, its metrics are recorded, no champion row, the pointer is unchanged."""
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag

    from kuberay_provider.bigquery.clients import bigquery_client

    pointer_file = stack.model_root / "champion.json"
    assert pointer_file.is_file(), "needs the champion of test_retraining_dag_end_to_end (same module, run first)"
    pointer_before = pointer_file.read_text()
    client = bigquery_client(stack.bigquery_emulator.config)
    champions_before = _champions(client)
    assert len(champions_before) == 1
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("SPARK_LOCAL_DIRS", str(tmp_path / "spark"))
    monkeypatch.setenv("AIRFLOW_VAR_KUBERAY_STAGING_URI", str(tmp_path / "staging"))
    dag = DagBag(dag_folder=str(REPO / "dags" / "ray_retraining.py")).get_dag("ray_retraining")
    week_before = END - timedelta(weeks=1)
    started = time.monotonic()
    dag_run = run_dag(dag, logical_date=week_before, run_conf={"promotion_margin": 1.0})
    seconds = time.monotonic() - started
    out, err = capfd.readouterr()
    assert task_states(dag_run)[f"{GROUP}.train"] == "success", (out + err)[-6000:]  # held back is not a failure
    assert set(task_states(dag_run).values()) <= {"success", "skipped"}

    splits = {row["split"]: row["auc"] for row in client.query(
        f"SELECT split, auc FROM `local-project.churn.metrics` WHERE run_id = '{dag_run.run_id}'").result()}
    assert set(splits) == {"train", "holdout"} and splits["holdout"] > 0.5  # recorded, and not promoted
    assert _champions(client) == champions_before
    assert pointer_file.read_text() == pointer_before
    challenger = stack.model_root / week_before.strftime("%Y%m%d")
    gate = json.loads((challenger / "metadata.json").read_text())["gate"]
    assert (gate["decision"], gate["promote"], gate["metric"], gate["margin"]) == ("challenger", False, "auc", 1.0)
    assert gate["candidate"] == pytest.approx(splits["holdout"]) and gate["champion"] == pytest.approx(
        champions_before[0]["auc"])
    assert (stack.model_root / END.strftime("%Y%m%d") / "model.json").is_file()  # the champion's model is intact
    log = out + err
    assert "Quality gate: HELD BACK as challenger: holdout auc" in log
    assert "does not beat the champion by the margin 1; kept as challenger" in log
    assert f"champion: run {champions_before[0]['run_id']}" in log
    # The predictions are this run's (stamped with its run_id and model): their asset gets an event; the gate
    # decides which model is champion, not which predictions are written.
    assert asset_events(f"{ASSETS}/predictions")[-1]["run_id"] == dag_run.run_id
    assert stack.ray_pids() == [] and stack.leftover_ray_pids() == []
    print(f"ray_retraining second run (held back): {seconds:.1f}s; challenger holdout AUC {splits['holdout']:.3f}, "
          f"champion {champions_before[0]['auc']:.3f}, margin 1.0")
