"""Targeted regressions: bad orders are refused with a client error, never a server error."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"product_id": 999, "quantity": 1}, 404),
        ({"product_id": 1, "quantity": 0}, 400),
        ({"product_id": "1", "quantity": 1}, 400),
        ([1, 2], 400),
    ],
    ids=["unknown-product", "zero-quantity", "string-id", "not-an-object"],
)
def test_a_bad_order_is_refused_with_a_client_error(body: Any, expected: int, api: str, post: Any) -> None:
    assert post(api + "/api/orders", body) == expected
