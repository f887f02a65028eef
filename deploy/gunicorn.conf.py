"""gunicorn settings for one shop node behind deploy/haproxy.cfg (docs/DEPLOYMENT.md).

Run: `gunicorn -c deploy/gunicorn.conf.py --bind 127.0.0.1:8000 wsgi:app`, with the shop's settings in the
environment (config.py reads them; this file reads none). Command-line options override these values, which is
how tests/concurrency/test_two_nodes.py runs this very file on free ports.
"""

# Sync workers: simple and predictable for a database-bound app. They must not face slow clients directly:
# HAProxy receives each request whole first (option http-buffer-request, timeout http-request).
worker_class = "sync"
# About 2 x cores + 1 is gunicorn's advice; a small node.
workers = 4
# A request that runs longer than this is killed (a Stripe call is bounded by STRIPE_TIMEOUT_SECONDS and
# retries well below it); HAProxy's `timeout server` is 60 s.
timeout = 90
graceful_timeout = 20
# HAProxy keeps connections to the node short; sync workers close after each response anyway.
keepalive = 2
# Refuse absurd request lines and headers before Flask sees them.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Recycle workers now and then (bounded memory growth), jittered so they do not all restart together.
max_requests = 2000
max_requests_jitter = 200
# The default bind when none is given on the command line: only the proxy reaches the node.
bind = ["127.0.0.1:8000"]
# Load the app once in the master, so a broken configuration fails at start (production refuses unsafe
# settings, naming each) rather than in every worker.
preload_app = True
# gunicorn's own X-Forwarded-* handling is off: the app's ProxyFix (TRUSTED_PROXY_HOPS) is the one reader.
forwarded_allow_ips = ""
accesslog = "-"
errorlog = "-"

# /metrics under several workers: set PROMETHEUS_MULTIPROC_DIR to an empty folder per node start (the systemd
# unit's RuntimeDirectory is one). No child_exit hook is needed: the shop keeps no live gauges in worker
# memory (its gauges are counted from the database at scrape time), and dead workers' counters stay summed.
