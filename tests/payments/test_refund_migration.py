"""Migration 0004_refund_lifecycle converts existing rows: what made a refund becomes a column, statuses are checked."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from shopapp import create_app
from shopapp.extensions import db

NOW = "2026-11-29 12:00:00+00:00"


def test_existing_refunds_and_events_are_converted(tmp_path):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'old.db'}")
    with app.app_context():
        upgrade(revision="0003_stock")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, session_token, created_at) "
                    "VALUES (1, 'a@example.com', 'x', 't', :now)"
                ),
                {"now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO orders (id, user_id, status, total_cents, currency, created_at, updated_at) "
                    "VALUES (7, 1, 'paid', 1999, 'usd', :now, :now)"
                ),
                {"now": NOW},
            )
            rows = [
                (1, "re_staff", "order-7-refund-1", "succeeded", "staff ann@example.com"),
                (2, None, None, "pending", "shop (out of stock)"),
                (3, "re_outside", None, "succeeded", "outside the shop (Stripe)"),
                (4, "re_odd", None, "weird", "staff ann@example.com"),
            ]
            for rid, stripe_id, key, status, by in rows:
                conn.execute(
                    text(
                        "INSERT INTO refunds (id, order_id, stripe_refund_id, idempotency_key, amount_cents, status, "
                        "requested_by, created_at) VALUES (:id, 7, :sid, :key, 100, :status, :by, :now)"
                    ),
                    {"id": rid, "sid": stripe_id, "key": key, "status": status, "by": by, "now": NOW},
                )
            conn.execute(
                text(
                    "INSERT INTO payment_events (stripe_event_id, type, received_at, outcome, payload) "
                    "VALUES ('evt_1', 'charge.refunded', :now, 'applied', '{}'), "
                    "('evt_2', 'charge.refunded', :now, 'something-old', '{}')"
                ),
                {"now": NOW},
            )

        upgrade(revision="0004_refund_lifecycle")

        with db.engine.begin() as conn:
            converted = conn.execute(text("SELECT id, origin, status, idempotency_key FROM refunds ORDER BY id")).all()
            outcomes = conn.execute(text("SELECT stripe_event_id, outcome FROM payment_events ORDER BY id")).all()
        assert [tuple(r) for r in converted] == [
            (1, "staff", "succeeded", "order-7-refund-1"),
            (2, "shortfall", "pending", "order-7-stock-refund"),  # its old key, so a re-send replays it
            (3, "outside_shop", "succeeded", None),
            (4, "staff", "pending", None),
        ]
        assert [tuple(r) for r in outcomes] == [("evt_1", "applied"), ("evt_2", "failed")]
        # The CHECK constraints hold from now on.
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text("UPDATE refunds SET status = 'done' WHERE id = 1"))
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text("UPDATE payment_events SET outcome = 'bogus' WHERE id = 1"))
        db.engine.dispose()
