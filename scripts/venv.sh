#!/usr/bin/env bash
# The developer's .venv: an EDITABLE install of the checkout pinned like the `latest` lane (constraints/latest.txt).
# Tests and the demo run against the wheel instead (scripts/test.sh, scripts/demo.sh). Idempotent: it reinstalls only
# when constraints/latest.txt, setup.cfg or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
stamp=.venv/.installed
want=$(cat constraints/latest.txt setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/python ]; then
  exit 0
fi
echo "== creating .venv with $($PYTHON --version)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "uv==0.13.9"
scripts/lanes.sh wheelhouse >/dev/null  # pyspark (sdist only on PyPI) built once into .lanes/wheelhouse
.venv/bin/uv pip install --python .venv/bin/python -q --compile-bytecode --find-links .lanes/wheelhouse \
  --only-binary pyspark -c constraints/latest.txt -e ".[local,test,google,docs]"
echo "$want" > "$stamp"
