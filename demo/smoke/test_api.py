"""The shop API's business endpoints answer as the storefront expects."""

from __future__ import annotations

from typing import Any


def test_products_are_listed(urls: dict[str, str], http: Any) -> None:
    status, body = http("GET", urls["api"] + "/api/products")
    assert status == 200
    assert body["products"], "the catalogue is empty"
    assert all({"id", "name", "price"} <= product.keys() for product in body["products"])


def test_a_listed_product_can_be_fetched(urls: dict[str, str], http: Any) -> None:
    _, listing = http("GET", urls["api"] + "/api/products")
    first = listing["products"][0]
    status, product = http("GET", f"{urls['api']}/api/products/{first['id']}")
    assert status == 200
    assert product == first


def test_an_order_is_placed_and_read_back(urls: dict[str, str], http: Any) -> None:
    status, order = http("POST", urls["api"] + "/api/orders", {"product_id": 1, "quantity": 2})
    assert status == 201
    status, stored = http("GET", f"{urls['api']}/api/orders/{order['id']}")
    assert status == 200
    assert (stored["product_id"], stored["quantity"]) == (1, 2)
