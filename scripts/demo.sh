#!/usr/bin/env bash
# The demo on a fresh clone: builds the wheel and installs it into .lanes/latest (scripts/lanes.sh), starts the local stack (emulated Kubernetes API, local KubeRay controller
# running real Ray clusters, spark-operator double, BigQuery emulator), seeds the raw churn data into the emulator,
# runs dags/ray_retraining.py with `airflow dags test` (Spark ETL -> XGBoost on a transient Ray cluster -> BigQuery,
# teardown confirmed by RayClusterDeletedSensor), prints a summary read from the real outputs, stops everything and
# fails if any process of the demo is left.
#
#   scripts/demo.sh                          # the retraining pipeline, DEMO_ROWS raw events (default 300000)
#   DEMO_ROWS=50000 scripts/demo.sh          # smaller / faster
#   DEMO_SPARK_MODE=spark_operator scripts/demo.sh   # the ETL as a SparkApplication (local spark-operator double)
#   scripts/demo.sh example_kuberay_rayjob   # the one-RayJob example DAG (no BigQuery)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/lanes.sh dist >/dev/null
scripts/lanes.sh venv latest
VENV=.lanes/latest
DAG_ID="${1:-ray_retraining}"
ROWS="${DEMO_ROWS:-300000}"
SPARK_MODE="${DEMO_SPARK_MODE:-local}"
LOGICAL_DATE="${DEMO_LOGICAL_DATE:-2026-11-16T00:00:00+00:00}"  # the seed's window ends here (data_interval_end)
DEMO_DIR="$(mktemp -d /tmp/kuberay-demo.XXXXXX)"
STACK_DIR="$DEMO_DIR/stack"
mkdir -p "$DEMO_DIR/tmp" "$DEMO_DIR/spark"
# Every process the demo starts inherits this marker; scripts/demo_leftovers.py finds leftovers by it.
export KUBERAY_DEMO_ID="$(basename "$DEMO_DIR")"
export AIRFLOW_HOME="$DEMO_DIR/airflow" TMPDIR="$DEMO_DIR/tmp" SPARK_LOCAL_DIRS="$DEMO_DIR/spark"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags" AIRFLOW__CORE__LOAD_EXAMPLES=False
export RAY_USAGE_STATS_ENABLED=0 SPARK_LOCAL_IP=127.0.0.1 PYTHONUNBUFFERED=1
PY=$VENV/bin/python

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
stop_stack() { $VENV/bin/kuberay-local down --dir "$STACK_DIR" || true; }
trap stop_stack EXIT

started=$(now)
echo "== demo dir $DEMO_DIR (AIRFLOW_HOME, stack state, logs)"
bigquery=--bigquery
[ "$DAG_ID" = ray_retraining ] || bigquery=--no-bigquery
$VENV/bin/kuberay-local up --dir "$STACK_DIR" "$bigquery" >"$DEMO_DIR/stack-up.log"
grep -E "is up|bigquery emulator" "$DEMO_DIR/stack-up.log" | sed 's/^/  /'
# shellcheck disable=SC1091
source "$STACK_DIR/env"
up_done=$(now)
$VENV/bin/airflow db migrate >"$DEMO_DIR/db-migrate.log" 2>&1

seed_seconds=""
if [ "$DAG_ID" = ray_retraining ]; then
  echo "== seeding $ROWS raw events into the BigQuery emulator"
  seed_started=$(now)
  $PY -m kuberay_provider.pipelines.seed --env-file "$STACK_DIR/env" --rows "$ROWS" --dataset churn_raw \
    --end "$LOGICAL_DATE" | tee "$DEMO_DIR/seed.json"
  seed_seconds=$(secs "$seed_started" "$(now)")
fi

conf=()
[ "$DAG_ID" != ray_retraining ] || conf=(-c "{\"spark_mode\": \"$SPARK_MODE\"}")
echo "== airflow dags test $DAG_ID $LOGICAL_DATE ${conf[*]} (log: $DEMO_DIR/dags-test.log)"
dags_started=$(now)
set +e
$VENV/bin/airflow dags test "$DAG_ID" "$LOGICAL_DATE" "${conf[@]}" >"$DEMO_DIR/dags-test.log" 2>&1
rc=$?
set -e
dags_seconds=$(secs "$dags_started" "$(now)")
# The Ray driver's log is streamed into the task log: show what it wrote to BigQuery (retraining) or its last
# own lines (other DAGs), without colours, Ray worker lines and logger decorations.
driver_lines() {
  grep -E "\[driver\] " "$DEMO_DIR/dags-test.log" \
    | sed -E 's/\x1b\[[0-9;]*m//g; s/.*\[driver\] //; s/ +\[airflow\.[^]]*\] loc=.*$//' | grep -v "^(" || true
}
if [ "$DAG_ID" = ray_retraining ]; then
  driver_lines | grep "Data sink BigQuery finished" | sed -E 's/^[0-9-]+ [0-9:,]+\s+/  driver: /' || true
else
  driver_lines | grep -vE "^[0-9]{4}-[0-9]{2}-[0-9]{2} " | tail -2 | cut -c1-170 | sed 's/^/  driver: /' || true
fi
[ "$rc" -eq 0 ] || tail -40 "$DEMO_DIR/dags-test.log"

echo
echo "== demo summary ($DAG_ID)"
set +e
$PY scripts/demo_summary.py --dag-id "$DAG_ID" --stack-dir "$STACK_DIR" --log "$DEMO_DIR/dags-test.log" \
  ${seed_seconds:+--seed-json "$DEMO_DIR/seed.json" --seed-seconds "$seed_seconds"} \
  --json-out "$DEMO_DIR/summary.json"
summary_rc=$?
set -e

down_started=$(now)
$VENV/bin/kuberay-local down --dir "$STACK_DIR" | sed 's/^/  /'
trap - EXIT
ended=$(now)
echo "  airflow dags test: exit code $rc, $dags_seconds s; stack up $(secs "$started" "$up_done") s," \
  "down $(secs "$down_started" "$ended") s"
echo "  total: $(secs "$started" "$ended") s"
set +e
$PY scripts/demo_leftovers.py --marker "KUBERAY_DEMO_ID=$KUBERAY_DEMO_ID"
left_rc=$?
set -e
[ "$rc" -eq 0 ] || exit "$rc"
[ "$summary_rc" -eq 0 ] || { echo "  the summary found a problem (see above)"; exit 1; }
exit "$left_rc"
