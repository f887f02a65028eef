"""Issue 21: the statement descriptor suffix is set in config, checked against Stripe's rules (docs.stripe.com/
get-started/account/statement-descriptors), refused in production when invalid, and sent with every payment."""

from __future__ import annotations

import pytest

from config import statement_descriptor_problem
from shopapp import create_app
from tests.test_factory_config import SAFE


@pytest.mark.parametrize(
    ("suffix", "prefix", "message"),
    [
        ("12345", "", "needs at least one letter"),
        ("MUG*SHOP", "", r"contains \*"),
        ("KAFFEEMÜHLE", "", "non-Latin"),
        ("A VERY LONG SUFFIX", "TIDYSHOP", "over Stripe's 22; shorten it to 12"),
        ('SAY "HI"', "", 'contains "'),
    ],
)
def test_production_refuses_a_suffix_stripe_would_refuse(suffix: str, prefix: str, message: str) -> None:
    assert statement_descriptor_problem(suffix, prefix) is not None
    with pytest.raises(RuntimeError, match=f"STATEMENT_DESCRIPTOR_SUFFIX.*{message}"):
        create_app(
            "production", **{**SAFE, "STATEMENT_DESCRIPTOR_SUFFIX": suffix, "STATEMENT_DESCRIPTOR_PREFIX": prefix}
        )


@pytest.mark.parametrize(("suffix", "prefix"), [("TIDY SHOP", ""), ("MUGS", "TIDYSHOP"), ("", "")])
def test_valid_suffixes_start(suffix: str, prefix: str) -> None:
    assert statement_descriptor_problem(suffix, prefix) is None
    create_app("production", **{**SAFE, "STATEMENT_DESCRIPTOR_SUFFIX": suffix, "STATEMENT_DESCRIPTOR_PREFIX": prefix})
