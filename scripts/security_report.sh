#!/usr/bin/env bash
# Run the security proofs (tests/security) and print their figures. Extra arguments go to pytest.
# Needs redis-server on PATH (scripts/test.sh installs it). Exit status is pytest's.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$PY" -m pytest -q -s tests/security "$@" >"$out" 2>&1
status=$?
grep '^\[security\]' "$out"
tail -n 1 "$out"
[ "$status" -eq 0 ] || { echo "--- pytest failed; full output:"; cat "$out"; }
exit "$status"
