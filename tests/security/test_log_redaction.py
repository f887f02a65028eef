"""Card numbers never reach a log line, however they are separated or encoded (issue 17, finding 6).

The oracle is independent of the scrubber: it decodes the output the way a reader might (percent-decoding
twice, NFKC, dropping every non-digit) and looks for the card's digits.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shopapp.logs import luhn_valid, redact
from tests.security.conftest import report
from tests.security.fuzzing import FUZZ

SEPARATORS = [" ", "-", ".", "/", "_", "+", "%20", "%2D", "%2520", "\u00a0", "\u202f", "\u3000", "\uff0d", " - ", "\t"]
FULL_WIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


def with_check_digit(body: str) -> str:
    """body plus the Luhn check digit."""
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


CARDS = st.builds(
    lambda length, seed: with_check_digit(str(seed).zfill(length - 1)[: length - 1]),
    st.integers(13, 19),
    st.integers(10**11, 10**18),
)


@st.composite
def written(draw: st.DrawFn) -> tuple[str, str]:
    """(card, the card as it might appear in a log line): random groups, separators and digit encodings."""
    card = draw(CARDS)
    cuts = sorted(draw(st.sets(st.integers(1, len(card) - 1), max_size=6)))
    groups = [card[a:b] for a, b in zip([0, *cuts], [*cuts, len(card)], strict=True)]
    out = []
    for index, group in enumerate(groups):
        encoding = draw(st.sampled_from(["plain", "plain", "full-width", "percent", "mixed"]))
        if encoding == "full-width":
            group = "".join(FULL_WIDTH[d] for d in group)
        elif encoding == "percent":
            group = "".join(f"%{ord(d):02X}" for d in group)
        elif encoding == "mixed":
            group = "".join(draw(st.sampled_from([d, FULL_WIDTH[d], f"%{ord(d):02X}"])) for d in group)
        out.append(group)
        if index < len(groups) - 1:
            out.append(draw(st.sampled_from(SEPARATORS)))
    return card, "".join(out)


def digits_a_reader_sees(text: str) -> str:
    decoded = unicodedata.normalize("NFKC", unquote(unquote(text)))
    return re.sub(r"\D", "", decoded)


WORDS = st.text(alphabet=st.sampled_from("abc xyz:=,()"), max_size=20)


@FUZZ
@given(case=written(), prefix=WORDS, suffix=WORDS)
@example(case=("4242424242424242", "4242%204242%204242%204242"), prefix="card ", suffix="")
@example(case=("4242424242424242", "4242.4242.4242.4242"), prefix="", suffix="")
@example(case=("4242424242424242", "4242/4242/4242/4242"), prefix="", suffix="")
@example(case=("4242424242424242", "4242\u00a04242\u00a04242\u00a04242"), prefix="", suffix="")
@example(case=("4242424242424242", "\uff14\uff12" * 8), prefix="", suffix="")
def test_card_numbers_are_redacted_however_written(case: tuple[str, str], prefix: str, suffix: str) -> None:
    card, text = case
    line = f"{prefix}{text}{suffix}"
    assert card in digits_a_reader_sees(line)  # the oracle sees the planted card
    clean = redact(line)
    assert card not in digits_a_reader_sees(clean), (line, clean)
    assert clean.startswith(prefix.rstrip(" ")) and "[card-redacted]" in clean


@FUZZ
@given(number=st.integers(0, 10**12 - 1), words=WORDS)
def test_short_numbers_and_words_are_left_alone(number: int, words: str) -> None:
    line = f"Order {number} {words} at 1795738236"
    assert redact(line) == line


@pytest.mark.parametrize(
    "line",
    [
        "card 4242%204242%204242%204242",
        "card 4242.4242.4242.4242",
        "card 4242/4242/4242/4242",
        "card 4242\u00a04242\u00a04242\u00a04242",
        "card \uff14\uff12\uff14\uff12 \uff14\uff12\uff14\uff12 \uff14\uff12\uff14\uff12 \uff14\uff12\uff14\uff12",
        "card 3782-822463-10005",
    ],
)
def test_the_reviews_examples_never_reach_a_handler(app, line: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="shopapp"):
        logging.getLogger("shopapp.test").warning("leak: %s", line)
    (record,) = caplog.records
    assert "[card-redacted]" in record.getMessage() and "4242" not in digits_a_reader_sees(record.getMessage())
    report(f"log scrubbing: {line!r} -> {record.getMessage()!r}")


FULL_WIDTH_CARD = "".join(FULL_WIDTH[d] for d in "4242424242424242")


@pytest.mark.parametrize(
    "line",
    [
        # Issue 26, finding 7: full-width digits sent in a URL reach the logs as their UTF-8 bytes: escaped, as
        # a client sends them, or raw as a WSGI server decodes the request line (Latin-1, PEP 3333).
        "GET /orders/" + "".join(f"%{b:02X}" for b in FULL_WIDTH_CARD.encode()),
        "GET /orders/" + FULL_WIDTH_CARD.encode().decode("latin-1") + " HTTP/1.1",
        "GET /orders/"
        + "%20".join("".join(f"%{b:02x}" for b in FULL_WIDTH_CARD[i : i + 4].encode()) for i in range(0, 16, 4)),
    ],
)
def test_full_width_card_digits_in_a_url_are_redacted(line: str) -> None:
    clean = redact(line)
    assert "[card-redacted]" in clean and clean.startswith("GET /orders/"), clean
    decoded = unquote(clean).encode("latin-1", "ignore").decode("utf-8", "ignore") if "%" in clean else clean
    assert "4242" not in digits_a_reader_sees(decoded)


def test_a_request_for_full_width_digits_logs_them_redacted(app, client, caplog: pytest.LogCaptureFixture) -> None:
    """The path the shop itself logs (an order page that is not the visitor's), as Werkzeug decodes it."""
    with caplog.at_level(logging.INFO):
        client.get("/orders/" + FULL_WIDTH_CARD)
        logging.getLogger("shopapp.test").warning(
            "raw request line: %s", ("GET /x/" + FULL_WIDTH_CARD).encode().decode("latin-1")
        )
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert FULL_WIDTH_CARD not in text and "\u00ef\u00bc\u0094" not in text
