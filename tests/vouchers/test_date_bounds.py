"""Date filters up to the last day a date can hold answer normally, never a 500."""

from __future__ import annotations

import pytest

from tests.vouchers.helpers import funder_membership, operator_membership

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/suivi/?au=9999-12-31",
        "/suivi/?du=0001-01-01&au=9999-12-31",
        "/suivi/remises/?au=9999-12-31",
        "/suivi/remises/?au=9999-12-31&export=csv",
        "/compte/?au=9999-12-31",
    ],
)
def test_a_funders_filters_reach_the_last_possible_day(client_for, url):
    answer = client_for(funder_membership(is_distributor=True)).get(url)
    assert answer.status_code in (200, 400), answer.status_code


def test_operators_balances_at_the_last_possible_day(client_for):
    answer = client_for(operator_membership()).get("/compte/soldes/?au=9999-12-31")
    assert answer.status_code == 200
