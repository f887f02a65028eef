"""Shop views: the product page, Buy, and cancelling a pending order."""

from __future__ import annotations

import logging

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from shopapp.extensions import limiter
from shopapp.services import catalog, checkout, orders, stock
from shopapp.shop import bp, page_cache

log = logging.getLogger("shopapp.shop")


def _render_shop(*, error: str | None = None, status: int = 200, selection: dict[str, str] | None = None):
    user = current_user._get_current_object()  # once: each access through the proxy costs a lookup
    products = catalog.active_product_rows()
    notice = None
    if request.args.get("checkout") == "canceled":
        # A GET never writes: the order stays pending (and keeps any units it holds) until the shopper
        # cancels it below or its session expires at Stripe.
        notice = (
            "Payment canceled: nothing was charged. Your order stays open until its payment page expires; "
            "cancel it under My orders to release its items now."
        )
    per_page = current_app.config["ORDERS_PER_PAGE"]
    # 0 for a visitor (no orders to show); a shopper's page number, bounded like the query's.
    page = min(max(1, request.args.get("page", default=1, type=int)), orders.MAX_PAGE) if user.is_authenticated else 0
    context = {
        "products": products,
        "max_quantity": current_app.config["MAX_QUANTITY_PER_LINE"],
        "selection": selection or {},
        "error": error,
        "notice": notice,
    }
    if error is not None or selection or "_flashes" in session or current_app.debug:
        # (In debug, templates and static files are edited while the server runs: every view re-renders.)
        # A one-off page (a message, the shopper's own selection): rendered, never cached.
        order_page = orders.orders_for_user(user.id, page, per_page) if page else None
        return render_template("shop/index.html", order_page=order_page, **context), status

    # Everything the page shows comes from these values (see page_cache): who is viewing, the product
    # rows, the changeable state of the page's orders, the notice, where the app is mounted and where its
    # static files are (their URLs carry a hash of their content).
    viewer = (user.id, user.email, user.is_staff) if page else None
    products_key = tuple(map(tuple, products))

    def key(state: tuple[object, ...] | None) -> tuple[object, ...]:
        return (request.script_root, current_app.static_folder, viewer, products_key, page, state, notice is not None)

    html = page_cache.cached(key(orders.order_page_state(user.id, page, per_page) if page else None))
    if html is None:
        order_page = orders.orders_for_user(user.id, page, per_page) if page else None
        html = render_template(
            "shop/index.html", order_page=order_page, csrf_token=page_cache.placeholder_token, **context
        )
        # Filed under the state of the rows it was rendered from, so it can never be reused for another.
        page_cache.store(key(order_page.state if order_page else None), html)
    return page_cache.with_csrf_token(html), status


@bp.get("/")
def index():
    """The shop page: products for everyone, "My orders" for a logged-in shopper."""
    return _render_shop()


def _checkout_limit() -> str:
    return str(current_app.config["CHECKOUT_RATE_LIMIT"])


@bp.post("/checkout")
@limiter.limit(_checkout_limit)
@login_required
def buy() -> Response | tuple[str, int]:
    """Validate the selection, create or reuse the order and its Checkout Session, and go pay (303)."""
    fields = list(request.form.items(multi=True))
    selection = {name: value for name, value in fields if name.startswith("qty-")}
    try:
        cart = catalog.parse_selection(fields, current_app.config["MAX_QUANTITY_PER_LINE"])
        started = checkout.start_checkout(
            current_user.id,
            cart,
            checkout.CheckoutUrls(
                success_url=url_for("payments.success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}",
                cancel_url=url_for("shop.index", checkout="canceled", _external=True),
            ),
            checkout.SessionTTL(
                default=current_app.config["CHECKOUT_SESSION_TTL_MINUTES"],
                with_stock=current_app.config["CHECKOUT_SESSION_TTL_MINUTES_WITH_STOCK"],
            ),
        )
    except (catalog.SelectionError, stock.OutOfStock) as error:
        return _render_shop(error=str(error), status=400, selection=selection)
    except checkout.CheckoutError as error:
        response = _render_shop(error=str(error), status=503, selection=selection)
        return response
    return redirect(started.url, code=303)


# Bounded so an id beyond the database integer range is a 404, not an overflow.
@bp.post("/orders/<int(max=2147483647):order_id>/cancel")
@login_required
def cancel_order(order_id: int) -> Response | tuple[str, int]:
    """Cancel one of the shopper's pending orders (its session is expired at Stripe first)."""
    try:
        outcome = checkout.cancel_order(current_user.id, order_id)
    except checkout.OrderNotFound:
        log.warning("Cancel refused: order %s is not user %s's (or does not exist)", order_id, current_user.id)
        return _render_shop(error="That order was not found.", status=404)
    except checkout.CheckoutError as error:
        return _render_shop(error=str(error), status=503)
    if outcome == checkout.Outcome.EXPIRED:
        flash(f"Order #{order_id} was canceled. Nothing was charged.", "info")
    elif outcome == checkout.Outcome.PAID:
        flash(f"Order #{order_id} had already been paid, so it was not canceled.", "warning")
    else:
        flash(f"Order #{order_id} can no longer be canceled.", "warning")
    return redirect(url_for("shop.index"))
