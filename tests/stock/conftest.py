"""Fixtures for the stock tests: products with a limited count, and fresh reads of counts and orders."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from shopapp.extensions import db
from shopapp.models import Order, Product
from shopapp.services import stock


@pytest.fixture
def limit(app: Flask, products: dict[str, Product]) -> Callable[[str, int | None], Product]:
    """Give a demo product a limited count: limit("A", 3)."""

    def set_count(letter: str, units: int | None) -> Product:
        product = products[f"Product {letter}"]
        stock.set_on_hand(product.id, units)
        return product

    return set_count


@pytest.fixture
def counts(app: Flask, products: dict[str, Product]) -> Callable[[str], tuple[int | None, int]]:
    """(available, held) of a demo product, read fresh from the database."""

    def read(letter: str) -> tuple[int | None, int]:
        db.session.rollback()  # end the snapshot: see what requests committed
        product = db.session.get(Product, products[f"Product {letter}"].id)
        assert product is not None
        return product.stock, product.reserved

    return read


@pytest.fixture
def fresh_order(app: Flask) -> Callable[[int], Order]:
    """The order row read fresh."""

    def read(order_id: int) -> Order:
        db.session.rollback()  # end the snapshot: see what requests committed
        order = db.session.get(Order, order_id)
        assert order is not None
        return order

    return read
