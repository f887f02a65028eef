"""Gunicorn settings shared by the shop and the hello-world baseline in the benchmark (production-like)."""

workers = 2
worker_class = "sync"
# Sync workers close each connection after its response anyway; no access log, as behind a proxy.
keepalive = 0
accesslog = None
loglevel = "warning"
timeout = 60
