#!/usr/bin/env bash
# Run the whole test suite (scripts/test.sh, both databases, no benchmark) N times in a row while stress-ng keeps
# every core busy, and print one line per run: the proof that no test depends on timing (issue 17).
# Usage: scripts/test_under_load.sh [RUNS]   (default 3; logs in test-artifacts/loaded-runs/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
apt_install stress-ng
RUNS=${1:-3}
OUT=test-artifacts/loaded-runs
mkdir -p "$OUT"
# One CPU hog per core, for at most 3 hours (stress-ng stops itself; we also stop it on exit).
stress-ng --cpu "$(nproc)" --timeout 3h --quiet &
STRESS_PID=$!
trap 'kill "$STRESS_PID" 2>/dev/null || true' EXIT
failed=0
for run in $(seq 1 "$RUNS"); do
  start=$(date +%s)
  # Any pytest argument makes test.sh skip its benchmark smoke run: only the tests are timed here.
  if ./scripts/test.sh -p no:cacheprovider >"$OUT/run-$run.log" 2>&1; then status=passed; else status=FAILED; failed=1; fi
  counts=$(grep -E '^[0-9]+ (passed|failed)|[0-9]+ passed' "$OUT/run-$run.log" | tr '\n' ' ')
  echo "run $run: $status in $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg): $counts"
done
exit "$failed"
