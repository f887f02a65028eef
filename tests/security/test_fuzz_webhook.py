"""Property-based fuzzing of the webhook: bodies, headers, signatures and timestamps. No 5xx; refusals write nothing."""

from __future__ import annotations

import json
import time

from hypothesis import example, given
from hypothesis import strategies as st

from shopapp import gateway
from tests.security.conftest import report, snapshot
from tests.security.fuzzing import FUZZ, VALUE, Tally

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
EVENT_TYPES = st.sampled_from(
    [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        "charge.refunded",
        "refund.updated",
        "unknown.type",
    ]
)
ID_LIKE = st.one_of(VALUE, st.integers(), st.none(), st.just("1"), st.just("2"), st.just(str(2**63)), st.just("²"))
SESSION = st.fixed_dictionaries(
    {},
    optional={
        "id": ID_LIKE,
        "object": st.just("checkout.session"),
        "client_reference_id": ID_LIKE,
        "metadata": st.one_of(JSON, st.fixed_dictionaries({"order_id": ID_LIKE})),
        "payment_status": st.sampled_from(["paid", "unpaid", "no_payment_required", None, 7]),
        "status": st.sampled_from(["complete", "open", "expired", None, []]),
        "amount_total": st.one_of(st.integers(), st.just(3999), st.text(max_size=5), st.none()),
        "currency": st.sampled_from(["usd", "USD", "eur", "", None, 1]),
        "mode": st.sampled_from(["payment", "subscription", None]),
        "payment_intent": st.one_of(ID_LIKE, JSON),
    },
)
EVENT = st.fixed_dictionaries(
    {},
    optional={
        "id": ID_LIKE,
        "object": st.just("event"),
        "type": st.one_of(EVENT_TYPES, VALUE),
        "data": st.one_of(JSON, st.fixed_dictionaries({"object": st.one_of(SESSION, JSON)})),
        "created": st.integers(),
        "livemode": st.booleans(),
    },
)
HEADER = st.one_of(
    VALUE,
    st.builds(lambda t, v: f"t={t},v1={v}", st.one_of(st.integers(), VALUE), st.text("0123456789abcdef", max_size=64)),
    st.builds(
        lambda t, a, b: f"t={t},v1={a},v1={b},v0={a}",
        st.integers(0, 2**40),
        st.text("0123456789abcdef"),
        st.text("0123456789abcdef"),
    ),
)


def run_target(tally: Tally, client, body: bytes, headers: dict[str, str], expect_refused: bool) -> None:
    before = snapshot()
    response = client.post("/webhook/", data=body, headers=headers)
    changed = snapshot() != before
    accepted = response.status_code == 200
    tally.add(response.status_code, changed, accepted)
    assert response.status_code < 500, (body[:200], headers, response.status_code)
    if expect_refused:
        assert response.status_code in (400, 413), (body[:200], headers, response.status_code)
    assert accepted or not changed


def test_fuzz_webhook(make_world, emulator):
    world = make_world()
    client = world.app.test_client()
    tallies = {
        name: Tally(f"webhook {name}")
        for name in ("unsigned", "bad signature", "timestamps", "nesting", "signed events")
    }

    @FUZZ
    @given(
        body=st.one_of(st.binary(max_size=300), JSON.map(lambda j: json.dumps(j).encode())),
        header=st.one_of(st.none(), HEADER.map(lambda h: h.replace("\r", " ").replace("\n", " "))),
        content_type=st.sampled_from(["application/json", "text/plain", ""]),
    )
    def unsigned(body, header, content_type):
        headers = {"Content-Type": content_type} | ({"Stripe-Signature": header} if header is not None else {})
        run_target(tallies["unsigned"], client, body, headers, expect_refused=True)

    @FUZZ
    @given(event=EVENT, other=st.binary(min_size=1, max_size=20), age=st.integers(-600, 600))
    def bad_signature(event, other, age):
        # A genuine signature, but over a different body (a tampered event), or by the wrong secret.
        body = json.dumps(event).encode()
        signature = emulator.sign(body + other, int(time.time()) - age)
        run_target(tallies["bad signature"], client, body, {"Stripe-Signature": signature}, expect_refused=True)

    @FUZZ
    @given(age=st.one_of(st.integers(-(10**6), 10**6), st.integers(301, 10**9)))
    def timestamps(age):
        # A correct signature whose timestamp is `age` seconds old: refused once older than the 300 s tolerance.
        event = {"id": f"evt_ts_{age}", "object": "event", "type": "unknown.type", "data": {"object": {}}}
        body = json.dumps(event).encode()
        run_target(
            tallies["timestamps"],
            client,
            body,
            {"Stripe-Signature": emulator.sign(body, int(time.time()) - age)},
            # 300 s tolerance both ways (issue 17: ten days ahead was accepted), plus slack for the clock moving on.
            expect_refused=abs(age) > 305,
        )

    @FUZZ
    @given(
        depth=st.one_of(st.integers(1, 80), st.integers(60, 70), st.integers(80, 120_000)),
        width=st.one_of(st.integers(0, 50), st.integers(9_000, 11_000), st.integers(11_000, 30_000)),
        shape=st.sampled_from(["[", "{"]),
    )
    @example(depth=100_000, width=0, shape="[")  # the review's recursion error
    @example(depth=50_000, width=0, shape="{")
    @example(depth=3, width=10_001, shape="{")
    def nesting(depth, width, shape):
        # Correctly signed bodies nested `depth` deep around an object with `width` keys: refused (400, or 413
        # beyond the byte cap) when over the parser's limits, never a recursion error (500).
        inner = "{" + ",".join(f'"k{i}":0' for i in range(width)) + "}"
        nested = ('{"a":' * depth + inner + "}" * depth) if shape == "{" else ("[" * depth + inner + "]" * depth)
        body = ('{"id":"evt_nest","object":"event","type":"unknown.type","data":{"object":' + nested + "}}").encode()
        too_deep = depth + 3 > gateway.WEBHOOK_MAX_DEPTH
        too_wide = width + depth * (shape == "{") + 5 > gateway.WEBHOOK_MAX_KEYS
        run_target(
            tallies["nesting"],
            client,
            body,
            {"Stripe-Signature": emulator.sign(body)},
            expect_refused=too_deep or too_wide,
        )

    @FUZZ
    @given(event=EVENT)
    @example(
        event={
            "id": "evt_sup",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": "cs_x",
                    "metadata": {"order_id": "²"},
                    "client_reference_id": "²",
                    "payment_status": "paid",
                }
            },
        }
    )
    @example(
        event={
            "id": "evt_big",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": "cs_x",
                    "metadata": {"order_id": str(2**63)},
                    "client_reference_id": str(2**63),
                    "payment_status": "paid",
                }
            },
        }
    )
    @example(event={"id": "e" * 300, "type": "unknown.type"})
    @example(event={"id": "evt_\x00", "type": "unknown\x00"})
    @example(
        event={
            "id": "evt_nul",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": "cs_x",
                    "metadata": {"order_id": "1"},
                    "client_reference_id": "1",
                    "payment_status": "paid",
                    "amount_total": "\x00",
                }
            },
        }
    )
    def signed_events(event):
        # Authentic but malformed events (as if Stripe sent garbage): never a 5xx; refused ones write nothing.
        body = json.dumps(event).encode()
        run_target(
            tallies["signed events"], client, body, {"Stripe-Signature": emulator.sign(body)}, expect_refused=False
        )

    unsigned()
    bad_signature()
    timestamps()
    nesting()
    signed_events()
    for tally in tallies.values():
        report(tally.line())
    assert sum(t.server_errors for t in tallies.values()) == 0
    assert sum(t.rejected_changes for t in tallies.values()) == 0
    report(
        f"fuzz webhook total: {sum(t.tried for t in tallies.values())} inputs, 0 responses 5xx, "
        "0 rows changed by rejected input"
    )


def test_a_signed_body_ten_days_ahead_is_refused_and_changes_nothing(make_world, emulator):
    client = make_world().app.test_client()
    body = json.dumps({"id": "evt_future", "object": "event", "type": "unknown.type", "data": {"object": {}}}).encode()
    before = snapshot()
    ahead = client.post(
        "/webhook/", data=body, headers={"Stripe-Signature": emulator.sign(body, int(time.time()) + 864_000)}
    )
    assert ahead.status_code == 400 and snapshot() == before
    # Within the tolerance (a clock a little ahead) is still accepted.
    near = client.post(
        "/webhook/", data=body, headers={"Stripe-Signature": emulator.sign(body, int(time.time()) + 120)}
    )
    assert near.status_code == 200


def test_a_signed_body_nested_deeper_than_python_recurses_is_a_400(make_world, emulator):
    client = make_world().app.test_client()
    body = b'{"id":"evt_deep","type":"unknown.type","data":{"object":' + b"[" * 120_000 + b"]" * 120_000 + b"}}"
    before = snapshot()
    response = client.post("/webhook/", data=body, headers={"Stripe-Signature": emulator.sign(body)})
    assert response.status_code == 400 and response.get_data() == b"malformed event\n"
    assert snapshot() == before
