"""Oversize bodies: 413 site-wide above MAX_CONTENT_LENGTH, and at the webhook above its own cap; nothing written."""

from __future__ import annotations

import io

from tests.security.conftest import report, snapshot


def test_oversize_bodies_get_413(make_world, signed_post):
    world = make_world()
    app, alice = world.app, world.client_for("alice")
    cap, hook_cap = app.config["MAX_CONTENT_LENGTH"], app.config["WEBHOOK_MAX_BYTES"]
    assert 0 < cap <= 1024 * 1024 and 0 < hook_cap <= 1024 * 1024
    before = snapshot()
    results = []
    big_form = {"email": "a@example.com", "password": "x" * (cap + 1)}
    for path in ("/account/login", "/account/signup", "/account/password", "/checkout", "/admin/products/new/"):
        results.append(alice.post(path, data=big_form).status_code)
    # Multipart uploads are counted the same way.
    results.append(alice.post("/checkout", data={"f": (io.BytesIO(b"0" * (cap + 1)), "f.bin")}).status_code)
    # The webhook: just over its cap, signed or not, with or without a Content-Length (chunked).
    body = b'{"id": "evt_big", "pad": "' + b"x" * hook_cap + b'"}'
    results.append(signed_post(body).status_code)
    results.append(alice.post("/webhook/", data=body, headers={"Stripe-Signature": "t=1,v1=00"}).status_code)
    chunked = alice.post(
        "/webhook/",
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn sets for a chunked body
        headers={"Transfer-Encoding": "chunked", "Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
    )
    results.append(chunked.status_code)
    assert results == [413] * len(results), results
    assert "too large" in chunked.get_data(as_text=True).lower()
    assert snapshot() == before
    # Just under the caps is fine (refused for other reasons, never 413).
    anon = world.client_for("anon")
    assert anon.post("/account/login", data={"email": "a@example.com", "password": "x" * 100}).status_code == 400
    assert signed_post(b'{"id": "evt_small", "pad": "' + b"x" * (hook_cap - 100) + b'"}').status_code != 413
    report(
        f"body limits: {len(results)} oversize requests (MAX_CONTENT_LENGTH={cap}, WEBHOOK_MAX_BYTES={hook_cap}, "
        f"chunked included) -> 413 x {results.count(413)}, 0 rows changed"
    )
