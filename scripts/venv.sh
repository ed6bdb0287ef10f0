#!/usr/bin/env bash
# Create or refresh .venv with the verified, pinned stack (constraints.txt). Idempotent:
# it reinstalls only when constraints.txt, setup.cfg or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
stamp=.venv/.installed
want=$(cat constraints.txt setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/python ]; then
  exit 0
fi
echo "== creating .venv with $($PYTHON --version)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "uv==0.13.9"
.venv/bin/uv pip install --python .venv/bin/python -q -c constraints.txt -e ".[local,test]"
echo "$want" > "$stamp"
