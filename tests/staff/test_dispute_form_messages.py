"""A refused dispute evidence form says why beside the cause (fault 12): a `version` that is not the page's (a
stale or altered page) or a NUL character in a field, instead of a bare 400 with no message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from shopapp.models import EvidenceState, Order
from tests.staff.test_dispute_journeys import FRAUDULENT, _dispute_row, _evidence_form, disputed_order

__all__ = ["disputed_order"]  # the fixture, shared with the dispute journeys


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "abc"}, "reload the page and enter the evidence again"),
        ({"version": ""}, "reload the page and enter the evidence again"),
        ({"uncategorized_text": "bad\x00text"}, "invisible NUL character"),
        ({"customer_name": "Ann\x00"}, "invisible NUL character"),
    ],
)
def test_a_refused_evidence_form_says_why(
    disputed_order: Callable[..., Order], staff_client: FlaskClient, change: dict[str, str], message: str
) -> None:
    order = disputed_order(FRAUDULENT)
    row = _dispute_row(order.id)
    form = {**_evidence_form(staff_client, row.id), "save_draft": "Save draft", **change}
    response = staff_client.post(f"/admin/disputes/{row.id}/", data=form)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert _dispute_row(order.id).evidence_state != EvidenceState.STAGED
