#!/usr/bin/env bash
# The benchmark (docs/PERFORMANCE.md): scripts/bench.sh [--quick] [--db sqlite|postgres|both] [...]
# Starts everything it needs on 127.0.0.1 (free ports) and stops it again; results go to bench-results/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v wrk >/dev/null || apt_install wrk
[ -x .venv/bin/python ] || ensure_venv requirements.txt
exec .venv/bin/python -m bench.run "$@"
