#!/usr/bin/env bash
# The demo on a fresh machine: creates .venv, starts the local stack (emulated Kubernetes API + local
# KubeRay controller running real Ray clusters), runs an example DAG with `airflow dags test`, stops
# everything and checks that no Ray process is left. Usage: scripts/demo.sh [dag_id]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
DAG_ID="${1:-example_kuberay_rayjob}"
DEMO_DIR="$(mktemp -d /tmp/kuberay-demo.XXXXXX)"
STACK_DIR="$DEMO_DIR/stack"
export AIRFLOW_HOME="$DEMO_DIR/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags" AIRFLOW__CORE__LOAD_EXAMPLES=False
export RAY_USAGE_STATS_ENABLED=0 SPARK_LOCAL_IP=127.0.0.1
started=$(date +%s)

stop_stack() { .venv/bin/kuberay-local down --dir "$STACK_DIR" || true; }
trap stop_stack EXIT

.venv/bin/kuberay-local up --dir "$STACK_DIR"
# shellcheck disable=SC1091
source "$STACK_DIR/env"
.venv/bin/airflow db migrate >"$DEMO_DIR/db-migrate.log" 2>&1
set +e
.venv/bin/airflow dags test "$DAG_ID" 2>&1 | tee "$DEMO_DIR/dags-test.log"
rc=${PIPESTATUS[0]}
set -e
stop_stack
trap - EXIT
left=$(pgrep -f "$STACK_DIR" || true)
echo
echo "== demo summary"
grep -E "\[driver\]" "$DEMO_DIR/dags-test.log" | sed 's/.*\[driver\] /  driver: /' | tail -5 || true
grep -E "Marking task as|state=success|state=failed" "$DEMO_DIR/dags-test.log" | grep -oE "task_id=[a-z_]+|state=[a-z_]+" | paste - - | sort -u | sed 's/^/  /' || true
echo "  airflow dags test exit code: $rc"
echo "  wall time: $(( $(date +%s) - started )) s"
if [ -n "$left" ]; then echo "  processes left: $left"; exit 1; fi
echo "  Ray processes left: 0"
exit "$rc"
