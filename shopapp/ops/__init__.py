"""Operations blueprint: /healthz, /readyz and /metrics, for the load balancer and the monitoring."""

from flask import Blueprint

bp = Blueprint("ops", __name__)

from shopapp.ops import routes  # noqa: E402,F401  (registers the views on bp)
