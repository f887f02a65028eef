#!/usr/bin/env bash
# Set up and run the shop on http://127.0.0.1:5000 (SQLite, demo data, local Stripe service unless keys are set).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step() { printf '==> %s\n' "$*"; }
if [ ! -x .venv/bin/python ]; then
  step "Creating the virtualenv .venv and installing requirements.txt (about a minute the first time)..."
else
  step "Checking requirements.txt is installed in .venv..."
fi
ensure_venv requirements.txt
mkdir -p instance
export FLASK_APP=wsgi
# Development is asked for explicitly: with SHOP_CONFIG unset the app runs ProductionConfig (safe by default).
export SHOP_CONFIG="${SHOP_CONFIG:-development}"
HOST=127.0.0.1
PORT="${PORT:-5000}"
STRIPE_PORT="${STRIPE_PORT:-12111}"
# Debug mode stays off unless asked for: the shop's own error pages, as in production.
export FLASK_DEBUG="${FLASK_DEBUG:-0}"
# Links in emails point at this server.
export SHOP_BASE_URL="${SHOP_BASE_URL:-http://$HOST:$PORT}"

# Mail: unless .env names an SMTP server, a local one (shopapp/devmail.py) keeps every message in instance/mail/.
BACKGROUND_PIDS=()
cleanup() { for pid in "${BACKGROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
if [ "$(.venv/bin/python -c 'from config import Config; print(Config.MAIL_SERVER in ("127.0.0.1", "localhost") and not Config.MAIL_USERNAME)')" = "True" ]; then
  step "Starting the local mail server (messages kept in instance/mail/)..."
  export MAIL_SERVER=127.0.0.1
  export MAIL_PORT="${MAIL_PORT:-8025}"
  .venv/bin/python -m shopapp.devmail --host "$HOST" --port "$MAIL_PORT" --dir instance/mail \
    >instance/devmail.log 2>&1 &
  BACKGROUND_PIDS+=($!)
  wait_for_port "$HOST" "$MAIL_PORT" 20 || { cat instance/devmail.log; exit 1; }
  MAIL_MODE="local SMTP server on $HOST:$MAIL_PORT, every message kept in instance/mail/ (scripts/flask.sh mail list; scripts/flask.sh mail show last)"
else
  MAIL_MODE="SMTP server from .env (MAIL_SERVER); undelivered mail is retried by: scripts/flask.sh mail send-pending"
fi

# config.py is the one reader of the environment and .env: ask it whether real Stripe keys are set.
if [ "$(.venv/bin/python -c 'from config import Config; print(bool(Config.STRIPE_SECRET_KEY))')" = "False" ]; then
  step "Starting the local Stripe service on $HOST:$STRIPE_PORT and registering the shop's webhook endpoint..."
  export STRIPE_SECRET_KEY=sk_test_local_emulator
  export STRIPE_API_BASE="http://$HOST:$STRIPE_PORT"
  SHOP_NAME=$(.venv/bin/python -c 'from config import Config; print(Config.SHOP_NAME)')
  # Its state (sessions, payments, refunds, events, the webhook endpoint) survives restarts in this file. Stripe
  # Tax test mode is registered in California (7.25%) and Germany (19%), so STRIPE_AUTOMATIC_TAX=1 scripts/run.sh
  # shows tax; with the shop's default (tax off) every session says automatic_tax[enabled]=false and none is added.
  .venv/bin/python -m stripe_emulator --host "$HOST" --port "$STRIPE_PORT" \
    --state instance/stripe-emulator.db --business-name "$SHOP_NAME" \
    --tax-registration US-CA:7.25 --tax-registration DE:19 \
    >>instance/stripe-emulator.log 2>&1 &
  BACKGROUND_PIDS+=($!)
  wait_for_port "$HOST" "$STRIPE_PORT" 20 || { cat instance/stripe-emulator.log; exit 1; }
  # Register the shop's webhook endpoint the way production does (flask stripe webhook-endpoint). Stripe shows
  # a signing secret only when it creates an endpoint, so keep it; without a kept one, ask for a new endpoint.
  SECRET_FILE=instance/stripe-emulator-webhook-secret
  NEW_SECRET_FLAG=$([ -s "$SECRET_FILE" ] || echo --new-secret)
  REGISTERED=$(.venv/bin/flask stripe webhook-endpoint $NEW_SECRET_FLAG "http://$HOST:$PORT/webhook/") \
    || { echo "$REGISTERED"; exit 1; }
  NEW_SECRET=$(printf '%s\n' "$REGISTERED" | sed -n 's/^STRIPE_WEBHOOK_SECRET=//p')
  if [ -n "$NEW_SECRET" ]; then (umask 077; printf '%s\n' "$NEW_SECRET" >"$SECRET_FILE"); fi
  STRIPE_WEBHOOK_SECRET=$(cat "$SECRET_FILE")
  export STRIPE_WEBHOOK_SECRET
  STRIPE_MODE="local Stripe service on http://$HOST:$STRIPE_PORT (log: instance/stripe-emulator.log, state: instance/stripe-emulator.db)"
else
  STRIPE_MODE="Stripe (keys from .env); forward webhooks with: stripe listen --latest --forward-to localhost:$PORT/webhook/"
fi

# Alembic logs each step; keep it in a file and show it only if the upgrade fails (e.g. a migration refusing).
step "Applying database migrations to instance/shop.db, seeding the demo products and the demo staff account..."
.venv/bin/flask db upgrade >instance/migrate.log 2>&1 || { cat instance/migrate.log; exit 1; }
.venv/bin/flask seed
STAFF_LINE=$(.venv/bin/flask demo-staff)
# The settings this run uses, for scripts/flask.sh (the printed commands); instance/ is never committed.
(umask 077
 for name in FLASK_APP SHOP_CONFIG FLASK_DEBUG SHOP_BASE_URL MAIL_SERVER MAIL_PORT STRIPE_SECRET_KEY STRIPE_API_BASE \
   STRIPE_WEBHOOK_SECRET; do
   if [ -n "${!name+x}" ]; then printf '%s=%q\n' "$name" "${!name}"; fi
 done >instance/run.env)

cat <<MSG

  Shop:         http://$HOST:$PORT/
  Staff admin:  http://$HOST:$PORT/admin/
  $STAFF_LINE
  Payments:     $STRIPE_MODE
  Mail:         $MAIL_MODE
  Debug mode:   $( [ "$FLASK_DEBUG" = "1" ] && echo "on (Werkzeug debugger)" || echo "off (FLASK_DEBUG=1 scripts/run.sh turns it on)")
  Commands:     scripts/flask.sh --help from this folder, with this run's settings (e.g. scripts/flask.sh mail list)
  Test card:    4242 4242 4242 4242 (any future expiry, any CVC); 4000 0000 0000 0002 is declined;
                refunds of 4000 0000 0000 5126 fail a minute later, of 4000 0000 0000 7726 start pending;
                4000 0000 0000 0259 is disputed after payment (evidence 'winning_evidence' wins, 'losing_evidence'
                loses), 4000 0000 0000 5423 gets an early fraud warning

MSG
# The mail sender process (README, "Email"): requests only queue mail in the outbox; this sends it, looking
# every MAIL_WORKER_POLL_SECONDS (2 s) when idle. Production runs the same command as a service beside
# gunicorn. Its output: instance/mail-worker.log.
.venv/bin/flask mail worker >>instance/mail-worker.log 2>&1 &
BACKGROUND_PIDS+=($!)
.venv/bin/flask run --host "$HOST" --port "$PORT" --no-reload
