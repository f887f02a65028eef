"""Shop views: the product page, Buy, and cancelling a pending order."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, send_file, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from shopapp import i18n
from shopapp.extensions import limiter
from shopapp.security import safe_redirect_target
from shopapp.services import brand, catalog, checkout, links, orders, pictures, receipts, shipping, stock
from shopapp.shop import bp, page_cache
from shopapp.templating import current_brand

log = logging.getLogger("shopapp.shop")


# A GET never writes: the order stays pending (and keeps any units it holds) until the shopper cancels it
# or its session expires at Stripe.
CANCELED_NOTICE = _l(
    "Payment canceled: nothing was charged. Your order stays open until its payment page expires; "
    "cancel it under My orders to release its items now."
)


def _render_shop(
    *,
    error: str | None = None,
    status: int = 200,
    selection: dict[str, str] | None = None,
    orders_page: bool = False,
):
    user = current_user
    # My orders: the shopper's page number, bounded like the orders query's; the shop page shows no orders.
    page = min(max(1, request.args.get("page", default=1, type=int)), orders.MAX_PAGE) if orders_page else 0
    notice = str(CANCELED_NOTICE) if request.args.get("checkout") == "canceled" else None
    if not selection and SELECTION_KEY in session:  # quantities from a refused or canceled checkout
        selection = session.pop(SELECTION_KEY)
        error = error or session.pop(ERROR_KEY, None)
    if not selection and not orders_page:
        # Quantities carried through log-in or sign-up in the `next` URL (see login_to_buy).
        selection = _selection_from(request.args.items())
    template = "shop/orders.html" if orders_page else "shop/index.html"
    html = page_cache.shop_page(user, page, notice=notice, error=error, selection=selection or {}, template=template)
    return html, status


def _selection_from(fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Quantity fields worth keeping (well-named, non-zero, short), at most 50: they travel in a URL or cookie."""
    kept = {k: v.strip()[:12] for k, v in fields if _SELECTION_FIELD.fullmatch(k) and v.strip() not in ("", "0")}
    return dict(list(kept.items())[:50])


@bp.get("/")
def index():
    """The shop page: every product with its quantity field and the Buy button."""
    return _render_shop()


@bp.get("/orders")
@login_required
def my_orders():
    """My orders: the shopper's orders, newest first, 20 a page; checkouts never completed are collapsed."""
    return _render_shop(orders_page=True)


@bp.get("/buy/login")
def login_to_buy() -> Response:
    """The "Log in to buy" button (a GET from the shop's form, so it works without JavaScript or a session):
    log-in, or sign-up from there, returns to the shop with the same quantities, carried in the `next` URL."""
    selection: dict[str, Any] = _selection_from(request.args.items())
    back = url_for("shop.index", **selection)
    if current_user.is_authenticated:
        return redirect(back)
    return redirect(url_for("auth.login", next=back))


@bp.get("/products/<int(max=2147483647):product_id>")
def product_page(product_id: int) -> tuple[str, int]:
    """One product: picture, description, price, quantity and Buy (the same form as the shop page)."""
    product = catalog.active_product(product_id)
    if product is None:
        abort(404)
    return render_template(
        "shop/product.html",
        product=product,
        max_quantity=current_app.config["MAX_QUANTITY_PER_LINE"],
        selection=_selection_from(request.args.items()),
    ), 200


@bp.get("/pages/<slug>")
def footer_page(slug: str) -> tuple[str, int]:
    """Contact, Terms, Privacy or Returns: text staff write in the admin (Markdown, sanitised)."""
    try:
        which = brand.PageSlug(slug)
    except ValueError:
        abort(404)
    return render_template("shop/page.html", page=which, body=brand.render_markdown(brand.page_markdown(which))), 200


@bp.get("/brand.css")
def brand_stylesheet() -> Response:
    """The accent colour as CSS (the CSP forbids inline styles); its URL carries the brand's hash, so cache long."""
    response = Response(current_brand().stylesheet, mimetype="text/css")
    if request.args.get("v") == current_brand().version:
        response.cache_control.public = True
        response.cache_control.max_age = PICTURE_MAX_AGE_SECONDS
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True
    return response


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
            # From SHOP_BASE_URL, not the request: behind the proxy the request is http:// to 127.0.0.1.
            checkout.CheckoutUrls(
                success_url=links.public_url("payments.success") + "?session_id={CHECKOUT_SESSION_ID}",
                cancel_url=links.public_url("shop.checkout_canceled", t=links.cancel_token(current_user.id))
                + f"&order={checkout.ORDER_ID_PLACEHOLDER}",
                # The payment page in the shop's language (one of Stripe's Checkout locales).
                locale=i18n.checkout_locale(str(get_locale())),
            ),
            checkout.SessionTTL(
                default=current_app.config["CHECKOUT_SESSION_TTL_MINUTES"],
                with_stock=current_app.config["CHECKOUT_SESSION_TTL_MINUTES_WITH_STOCK"],
            ),
            shipping_countries=tuple(current_app.config["SHIPPING_COUNTRIES"]),
        )
    except (catalog.SelectionError, stock.OutOfStock, checkout.CheckoutError) as error:
        # Back to the shop page (303), not a page rendered at POST /checkout that a refresh would resubmit:
        # the message and the shopper's quantities are shown there once (issue 15).
        log.info("Checkout refused for user %s: %s", current_user.id, error)
        return _back_to_shop(str(error), selection)
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
        return _render_shop(error=_("That order was not found."), status=404, orders_page=True)
    except checkout.CheckoutError as error:
        return _render_shop(error=str(error), status=503, orders_page=True)
    if outcome == checkout.Outcome.EXPIRED:
        flash(f"Order #{order_id} was canceled. Nothing was charged.", "info")
    elif outcome == checkout.Outcome.PAID:
        flash(f"Order #{order_id} had already been paid, so it was not canceled.", "warning")
    else:
        flash(f"Order #{order_id} can no longer be canceled.", "warning")
    return redirect(url_for("shop.my_orders"))


# ---------------------------------------------------------------------------------------------
# The shopper's order page (issue 15): linked from "My orders", the success page and every email.


@bp.get("/orders/<int(max=2147483647):order_id>")
@login_required
def order_page(order_id: int) -> tuple[str, int]:
    """One of the shopper's orders: items, totals, status history and refunds; anyone else's is a 404."""
    order = orders.get_order_for_user(order_id, current_user.id)
    if order is None:
        log.warning("Order page refused: order %s is not user %s's (or does not exist)", order_id, current_user.id)
        abort(404)
    return render_template(
        "shop/order.html",
        order=order,
        history=orders.status_history(order),
        address=shipping.address_lines(order.shipping_address),
        tracking_url=shipping.tracking_url(order.shipping_carrier, order.tracking_number),
        payment_method=receipts.payment_method_for(order),
        print_view=request.args.get("print") == "1",
    ), 200


# ---------------------------------------------------------------------------------------------
# Coming back from the payment page with "Cancel" (Stripe's cancel_url) (issue 15).

# Session keys holding quantities ({"qty-<id>": "<n>"}) and a checkout error to show once on the next shop page.
SELECTION_KEY = "shop_selection"
ERROR_KEY = "shop_error"
_SELECTION_FIELD = re.compile(r"qty-\d{1,10}")


def _back_to_shop(error: str, selection: dict[str, str]) -> Response:
    """303 to the shop page, which shows `error` beside the Buy form and the quantities as they were typed.
    Only quantity fields of a sane size are kept: the session is a cookie and must stay small."""
    kept = {k: v[:12] for k, v in list(selection.items())[:50] if _SELECTION_FIELD.fullmatch(k)}
    session[SELECTION_KEY] = kept or {"qty-0": "0"}  # non-empty, so the error is shown even without fields
    session[ERROR_KEY] = error[:500]
    return redirect(url_for("shop.index"), code=303)


@bp.get("/checkout/canceled")
@login_required
def checkout_canceled() -> Response:
    """The shopper pressed Cancel on the payment page: close that checkout (expired at Stripe so it can no
    longer be paid, order CANCELED, held stock released, via the one cancel service) and show the shop with
    the same quantities, ready to buy again. Safe to repeat: a closed order is left as it is.

    Only with the shopper's cancel token (services/links.cancel_token, put in the URL given to Stripe): a
    cross-site link to /checkout/canceled?order=N without it closes nothing."""
    order_id = request.args.get("order", type=int)
    order = orders.get_order_for_user(order_id, current_user.id) if order_id and order_id < 2**31 else None
    if order is not None and not links.cancel_token_valid(current_user.id, request.args.get("t")):
        log.warning("Cancel link without a valid token for order %s (user %s): not canceled", order_id, current_user.id)
        order = None
    if order is None:
        flash(_("Payment canceled: nothing was charged."), "info")
        return redirect(url_for("shop.index"))
    selection = {f"qty-{item.product_id}": str(item.quantity) for item in order.items}
    try:
        outcome = checkout.cancel_order(current_user.id, order.id)
    except checkout.CheckoutError:
        flash(_("Payment canceled: nothing was charged. The payment page closes by itself shortly."), "info")
        outcome = None
    if outcome == checkout.Outcome.PAID:
        flash(f"Order #{order.id} had already been paid, so it was not canceled.", "warning")
        return redirect(url_for("shop.order_page", order_id=order.id))
    if outcome is not None:
        flash(_("Payment canceled: nothing was charged. Your selection is below, ready when you are."), "info")
    session[SELECTION_KEY] = selection
    return redirect(url_for("shop.index"))


# One year, and "immutable": a picture's URL is the hash of its bytes, so a new picture is a new URL.
PICTURE_MAX_AGE_SECONDS = 365 * 24 * 3600


@bp.get("/pictures/<name>")
def picture(name: str) -> Response:
    """A stored product picture by its content-hashed name, cached for a year; 404 for any other name."""
    path = pictures.stored_file(Path(current_app.config["UPLOAD_FOLDER"]), name)
    if path is None:
        abort(404)
    response = send_file(
        path, mimetype=pictures.MEDIA_TYPES[path.suffix[1:]], max_age=PICTURE_MAX_AGE_SECONDS, conditional=True
    )
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response


# ---------------------------------------------------------------------------------------------
# The footer's language switch (issue 22): remembered in a cookie, and on the account for its emails.


@bp.get("/language/<language>")
def switch_language(language: str) -> Response:
    """Answer in `language` from now on (a cookie; 303 back to the page it was chosen on, else the shop).

    A GET that writes no row: the account's language (for its emails) is saved at sign-up and log-in.
    An unknown language changes nothing.
    """
    back = safe_redirect_target(request.referrer and urlsplit(request.referrer)._replace(scheme="", netloc="").geturl())
    response = redirect(back or url_for("shop.index"), code=303)
    if language not in i18n.languages():
        return response
    return i18n.remember(response, language)
