#!/usr/bin/env bash
# The flask CLI with the settings scripts/run.sh last started the shop with (instance/run.env), so the commands
# run.sh prints work as typed from this folder: scripts/flask.sh mail list, scripts/flask.sh mail show last.
# (Plain .venv/bin/flask runs ProductionConfig, the safe default, which refuses the development settings.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f instance/run.env ]; then
  echo "No instance/run.env: start the shop once with scripts/run.sh (it writes the settings this uses)." >&2
  exit 1
fi
set -a
# shellcheck disable=SC1091
source instance/run.env
set +a
exec .venv/bin/flask "$@"
