#!/usr/bin/env bash
# A long, random exploration of the money (issue 20): the stateful test of tests/facts/schedules.py with a
# random seed and a large budget, at the three webhook API versions. Prints the schedules and steps explored
# per version; a failure prints the shrunk schedule (copy it into tests/facts/test_found_schedules.py).
#
#   scripts/explore_payments.sh                 # 300 schedules of up to 50 steps per version, on SQLite
#   PAYMENT_SCHEDULES=2000 PAYMENT_SCHEDULE_STEPS=80 scripts/explore_payments.sh
#   TEST_DATABASE_URL=postgresql+psycopg://... scripts/explore_payments.sh    # on PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv requirements-dev.txt

export PAYMENT_SCHEDULES=${PAYMENT_SCHEDULES:-300}
export PAYMENT_SCHEDULE_STEPS=${PAYMENT_SCHEDULE_STEPS:-50}
echo "== Exploring payment schedules: up to $PAYMENT_SCHEDULES schedules of up to $PAYMENT_SCHEDULE_STEPS steps per API version (random seed)"
started=$(date +%s)
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider -s tests/facts/test_schedules.py "$@" 2>&1 \
  | grep -E '^\[schedules\]|Falsifying|state\.|^E  |passed|failed|error' || status=$?
echo "== Done in $(( $(date +%s) - started )) s on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
exit $status
