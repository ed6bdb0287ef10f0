#!/usr/bin/env bash
# The whole test suite, run against what users install. Builds the sdist and wheel (python -m build, twine check),
# then for each lane installs the WHEEL into the lane's own virtualenv (constraints/LANE.txt, scripts/lanes.sh) and
# runs pytest from the checkout against the installed package (PYTHONSAFEPATH=1 and tests/conftest.py make sure
# nothing is imported from the working tree).
#
#   scripts/test.sh                          # every lane: latest (whole suite), composer-3.3 and composer-2.10
#                                            # (fast tests + the end-to-end subset marked `composer`)
#   scripts/test.sh --lane latest -m "not slow"   # one lane, extra pytest arguments (lane latest also builds
#                                                 # the docs: scripts/docs.sh, a warning fails the run)
#   KUBERAY_TEST_WORKERS=1 scripts/test.sh        # one pytest process (default 3, pytest-xdist --dist loadfile:
#                                                 # each worker has its own local stack, Airflow home and ports;
#                                                 # an end-to-end file keeps ~0.6 of a core busy, most of its time
#                                                 # goes to waiting on Ray and on deadlines, so 3 fill 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
lanes=()
while [ $# -gt 0 ] && [ "$1" = --lane ]; do lanes+=("$2"); shift 2; done
[ ${#lanes[@]} -gt 0 ] || lanes=(latest composer-3.3 composer-2.10)

started=$(date +%s)
scripts/lanes.sh dist
whl="$PWD/$(ls dist/*.whl | head -1)"
export KUBERAY_WHEEL="$whl" KUBERAY_WHEELHOUSE="$PWD/.lanes/wheelhouse" KUBERAY_TEST_INSTALLED=1 PYTHONSAFEPATH=1
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__UNIT_TEST_MODE=False
export RAY_USAGE_STATS_ENABLED=0 SPARK_LOCAL_IP=127.0.0.1

summary=()
failed=0
for lane in "${lanes[@]}"; do
  scripts/lanes.sh venv "$lane" | tee ".lanes/$lane.install.log"
  venv=".lanes/$lane"
  if [ "$lane" = "${lanes[0]}" ]; then
    "$venv/bin/ruff" check kuberay_provider dags tests bench scripts docs
  fi
  if [ "$lane" = latest ]; then  # once per run: the docs build, warnings as errors, internal links checked
    DOCS_PYTHON="$venv/bin/python" scripts/docs.sh
  fi
  selection=()
  case "$lane" in
    latest) ;;
    *) selection=(-m "not slow or composer") ;;
  esac
  export AIRFLOW_HOME="$(mktemp -d "/tmp/kuberay-tests-$lane.XXXXXX")" KUBERAY_LANE="$lane"
  echo "== lane $lane: $("$venv/bin/python" -c 'import airflow; print("Airflow", airflow.__version__)') (AIRFLOW_HOME $AIRFLOW_HOME)"
  lane_started=$(date +%s)
  set +e
  "$venv/bin/pytest" -n "${KUBERAY_TEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder "${selection[@]}" \
    --junitxml=".lanes/$lane.junit.xml" "$@"
  rc=$?
  set -e
  rm -rf "$AIRFLOW_HOME"
  [ $rc -eq 0 ] || failed=1
  summary+=("$("$venv/bin/python" scripts/junit_summary.py "$lane" ".lanes/$lane.junit.xml" "$(( $(date +%s) - lane_started ))" \
    ".lanes/$lane.install.log")")
done

echo "== summary ($(( $(date +%s) - started )) s in all)"
printf '%s\n' "${summary[@]}"
lane_files=()
for lane in "${lanes[@]}"; do lane_files+=(".lanes/$lane.junit.xml"); done
.lanes/tools/bin/python scripts/junit_summary.py --total "${lane_files[@]}"
exit $failed
