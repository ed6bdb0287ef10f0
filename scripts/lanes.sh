#!/usr/bin/env bash
# Build the distribution and install it into a lane's virtualenv, the way users install it: from the wheel.
#
#   scripts/lanes.sh dist            # python -m build (sdist + wheel into dist/) and twine check
#   scripts/lanes.sh venv LANE       # .lanes/LANE: the wheel [local,test,google] pinned by constraints/LANE.txt
#                                    # (lane latest also [docs]: the documentation build runs there only)
#   scripts/lanes.sh lock [LANE...]  # re-resolve constraints/LANE.txt from constraints/LANE.in and setup.cfg
#
# Lanes (constraints/*.in): latest (Airflow 3.3.x, newest providers), composer-3.3 (Airflow 3.3.1 +
# cncf-kubernetes 10.14.0), composer-2.10 (Airflow 2.10.5 + cncf-kubernetes 10.5.0 + common-compat 1.9.0).
# Idempotent: a lane venv is rebuilt only when its lock changed; the package itself is reinstalled from the new wheel.
# Installs compile bytecode (--compile-bytecode), as pip does: uv does not by default, and with PYTHONDONTWRITEBYTECODE
# set (as on our CI machines) every process of the suite (pytest workers, `airflow dags test`, each Ray node's ~20
# processes, Spark's Python workers) would otherwise compile Airflow and Ray from source again: `import airflow.models,
# ray, pandas, pyarrow` takes 8.4 s without, 3.7 s with.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
TOOLS=.lanes/tools
ALL_LANES="latest composer-3.3 composer-2.10"
# Pinned distributions PyPI ships only as an sdist (pyspark): built into a wheel once, here, and every install and
# resolve finds them with --find-links. Without it uv re-builds pyspark (about 2 GB of cache) on each lane install and
# on each resolve, which fills a small CI disk.
WHEELHOUSE=$PWD/.lanes/wheelhouse
SDIST_ONLY="pyspark"

# The extras a lane installs (and its lock resolves): every lane the test stack, latest also the docs build.
extras() { if [ "$1" = latest ]; then echo local,test,google,docs; else echo local,test,google; fi; }

tools() {
  local want
  want=$(sha256sum constraints/tools.txt | cut -d' ' -f1)
  if [ ! -x "$TOOLS/bin/python" ] || [ "$(cat "$TOOLS/.installed" 2>/dev/null)" != "$want" ]; then
    rm -rf "$TOOLS"
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check -r constraints/tools.txt
    echo "$want" > "$TOOLS/.installed"
  fi
}

wheelhouse() {
  local name pin
  mkdir -p "$WHEELHOUSE"
  for name in $SDIST_ONLY; do
    pin=$(grep -E "^$name==" constraints/common.in | head -1)
    [ -n "$pin" ] || { echo "constraints/common.in pins no $name" >&2; exit 1; }
    if ! ls "$WHEELHOUSE/$name-${pin#*==}-"*.whl >/dev/null 2>&1; then
      rm -f "$WHEELHOUSE/$name-"*.whl
      "$TOOLS/bin/python" -m pip wheel -q --disable-pip-version-check --no-cache-dir --no-deps -w "$WHEELHOUSE" "$pin"
    fi
  done
}

# uv arguments: the wheelhouse, and never a build of what it holds
from_wheelhouse() {
  local name
  printf -- '--find-links %s' "$WHEELHOUSE"
  for name in $SDIST_ONLY; do printf -- ' --only-binary %s' "$name"; done
}

dist() {
  tools
  wheelhouse
  rm -rf dist build ./*.egg-info
  "$TOOLS/bin/python" -m build --installer uv -o dist . >.lanes/build.log 2>&1 || { cat .lanes/build.log; exit 1; }
  "$TOOLS/bin/twine" check --strict dist/*
  rm -rf build ./*.egg-info
  ls dist/*.whl
}

wheel() {
  local whl
  whl=$(ls dist/*.whl 2>/dev/null | head -1)
  [ -n "$whl" ] || { echo "no wheel in dist/: run scripts/lanes.sh dist" >&2; exit 1; }
  echo "$whl"
}

venv() {
  local lane=$1 dir=.lanes/$1 whl lock want started
  lock=constraints/$lane.txt
  [ -f "$lock" ] || { echo "unknown lane '$lane': no $lock (lanes: $ALL_LANES)" >&2; exit 2; }
  tools
  wheelhouse
  whl=$(wheel)
  want=$(cat "$lock" constraints/tools.txt | sha256sum | cut -d' ' -f1)
  started=$(date +%s.%N)
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.installed" 2>/dev/null)" != "$want" ]; then
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$TOOLS/bin/uv" pip install --python "$dir/bin/python" -q --compile-bytecode $(from_wheelhouse) -c "$lock" \
      "$whl[$(extras "$lane")]"
    echo "$want" > "$dir/.installed"
  else
    "$TOOLS/bin/uv" pip install --python "$dir/bin/python" -q --compile-bytecode \
      --reinstall-package airflow-provider-kuberay --no-deps "$whl"
  fi
  "$TOOLS/bin/uv" pip check --python "$dir/bin/python" -q >/dev/null
  awk -v a="$started" -v b="$(date +%s.%N)" -v l="$lane" 'BEGIN { printf "== lane %s installed from the wheel in %.1f s\n", l, b - a }'
}

lock() {
  tools
  wheelhouse
  local lanes="${*:-$ALL_LANES}"
  for lane in $lanes; do
    local extra_args=()
    for extra in $(extras "$lane" | tr , ' '); do extra_args+=(--extra "$extra"); done
    (cd constraints && "../$TOOLS/bin/uv" pip compile ../setup.cfg "${extra_args[@]}" \
      $(from_wheelhouse) --no-emit-find-links -c "$lane.in" --python-version 3.11 --no-header -q -o "$lane.txt")
    echo "constraints/$lane.txt"
  done
}

cmd=${1:-}
shift || true
case "$cmd" in
  dist) dist ;;
  venv) [ $# -eq 1 ] || { echo "usage: scripts/lanes.sh venv LANE" >&2; exit 2; }; venv "$1" ;;
  lock) lock "$@" ;;
  wheelhouse) tools; wheelhouse ;;
  *) echo "usage: scripts/lanes.sh dist | venv LANE | lock [LANE...] | wheelhouse" >&2; exit 2 ;;
esac
