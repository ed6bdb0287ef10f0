#!/usr/bin/env bash
# The whole test suite on a fresh machine: creates .venv, then runs pytest with a private AIRFLOW_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
export AIRFLOW_HOME="${AIRFLOW_HOME_TESTS:-$(mktemp -d /tmp/kuberay-tests-airflow.XXXXXX)}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__UNIT_TEST_MODE=False
export RAY_USAGE_STATS_ENABLED=0 SPARK_LOCAL_IP=127.0.0.1
.venv/bin/ruff check kuberay_provider dags tests bench scripts
exec .venv/bin/pytest "$@"
