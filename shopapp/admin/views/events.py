"""Payment events: every webhook received, read-only, with reprocessing."""

from __future__ import annotations

import json
from typing import Any

from flask import flash, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from markupsafe import Markup

from shopapp.admin.views.base import (
    StaffModelView,
    csv_download,
    date_filters,
)
from shopapp.models import EventOutcome, PaymentEvent
from shopapp.services import staff
from shopapp.services.ids import parse_ascii_int


def _pretty_payload(payload: str) -> Markup:
    """The stored JSON body indented two spaces, in a scrollable block; stored text that is not JSON as is."""
    try:
        text = json.dumps(json.loads(payload), indent=2, sort_keys=False, ensure_ascii=False)
    except ValueError:
        text = payload
    # Focusable and named: a scrollable block must be reachable from the keyboard (axe scrollable-region-focusable).
    return Markup('<pre class="event-payload" tabindex="0" aria-label="Event payload">{}</pre>').format(text)


class OutcomeEqualFilter(sqla_filters.FilterEqual):
    """Stored-event outcome filter by value (?flt0_outcome_equals=failed), for the same reason as StatusEqualFilter."""

    def clean(self, value: str) -> EventOutcome:
        return EventOutcome(value)  # ValueError marks the filter invalid, so it is ignored


def _order_link(view: Any, context: Any, model: Any, name: str) -> Markup | str:
    if model.order_id is None:
        return ""
    link = url_for("orders.details_view", id=model.order_id)
    return Markup('<a href="{}">Order #{}</a>').format(link, model.order_id)


class PaymentEventView(StaffModelView):
    """Every webhook received, read-only."""

    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    # Fits 1280 px: when it was processed and whether the signature held are on the event's own page.
    column_list = ("stripe_event_id", "type", "order_id", "received_at", "outcome", "error")
    column_filters = (
        "type",
        OutcomeEqualFilter(PaymentEvent.outcome, "Outcome", options=[(o.value, o.value) for o in EventOutcome]),
        "signature_valid",
        *date_filters(PaymentEvent.received_at, "Received"),
    )
    column_searchable_list = ("stripe_event_id", "type")
    column_default_sort = ("id", True)
    column_labels = {"stripe_event_id": "Event id", "order_id": "Order"}
    # The outcome as the Outcome filter and events.csv name it ("no-op"), not the enum's Python name ("NO_OP").
    column_formatters = {"order_id": _order_link, "outcome": lambda v, c, m, n: m.outcome.value if m.outcome else ""}
    # The event's own page shows the payload as Stripe sent it, indented for reading.
    column_formatters_detail = {**column_formatters, "payload": lambda v, c, m, n: _pretty_payload(m.payload)}
    named_filter_urls = True
    can_export = True
    export_types = ["csv"]

    @expose("/export/<export_type>/")
    def export(self, export_type: str) -> Any:
        """Every webhook received as a formula-safe CSV (services.exports)."""
        return csv_download("events")

    @action("reprocess", "Reprocess", "Run the selected events again? Events already applied are left as they are.")
    def action_reprocess(self, ids: list[str]) -> None:
        """Re-run the selected stored events through the same handlers as the webhook."""
        event_ids = [parse_ascii_int(i, max_digits=11) for i in ids]
        if not ids or None in event_ids:
            flash("Choose the events to reprocess.", "error")
            return
        summary = staff.reprocess_payment_events([i for i in event_ids if i is not None])
        flash(summary.line(), "error" if summary.problems else "success")
