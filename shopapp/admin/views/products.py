"""Products: create, edit, picture and stock pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from wtforms import IntegerField, SubmitField
from wtforms.validators import InputRequired, NumberRange, Optional

from shopapp.admin.forms import PictureForm, ProductForm, StaffForm
from shopapp.admin.views.base import (
    StaffModelView,
    bad_input_is_400,
    money_column,
)
from shopapp.security import body_limit
from shopapp.services import pictures, products, stock


class RestockForm(StaffForm):
    """Add units to a limited product."""

    add = IntegerField("Units to add", validators=[InputRequired(), NumberRange(min=1, max=stock.MAX_STOCK_CHANGE)])
    restock = SubmitField("Restock")


class OnHandForm(StaffForm):
    """Set the counted units on hand (available + held); empty means unlimited."""

    on_hand = IntegerField("Units on hand", validators=[Optional(), NumberRange(min=0, max=stock.MAX_STOCK_CHANGE)])
    set_on_hand = SubmitField("Set units on hand")


def _stock(view: Any, context: Any, model: Any, name: str) -> Markup:
    shown = "unlimited" if model.stock is None else str(model.stock)
    link = url_for("products.stock_view", id=model.id)
    return Markup('{} <a href="{}" class="ml-2">manage stock</a>').format(shown, link)


class ProductView(StaffModelView):
    """Products: create, edit, deactivate (no delete: past orders point at them); stock changes via its page.

    Every save goes through shopapp.services.products (Stripe's price rules, one transaction, audit trail).
    """

    can_delete = False
    column_list = ("name", "price_cents", "currency", "active", "display_order", "stock", "reserved")
    column_labels = {
        "price_cents": "Price",
        "display_order": "Order",
        "stock": "Available",
        "reserved": "Held by open checkouts",
    }
    column_formatters = {"price_cents": money_column, "stock": _stock}
    column_default_sort = ("display_order", False)
    form = ProductForm
    edit_template = "admin/product_edit.html"

    def create_form(self, obj: Any = None) -> Any:
        form = super().create_form(obj)
        if request.method == "GET":
            form.currency.data = current_app.config["DEFAULT_CURRENCY"]  # the setting "currency for new products"
        return form

    def edit_form(self, obj: Any = None) -> Any:
        # Saving the edit form would write back the stock it was loaded with, undoing every unit
        # shoppers reserved meanwhile: stock changes only through the atomic actions on the stock page.
        form = super().edit_form(obj)
        del form.stock
        return form

    def _product_input(self, form: Any) -> products.ProductInput:
        return products.ProductInput(
            name=form.name.data or "",
            price=form.price.data,
            currency=form.currency.data or "",
            description=form.description.data or "",
            active=bool(form.active.data),
            display_order=form.display_order.data or 0,
            low_stock_threshold=form.low_stock_threshold.data,
            image_alt=form.image_alt.data or "",
            stock=form.stock.data if getattr(form, "stock", None) is not None else None,
            tax_code=form.tax_code.data or "",
        )

    def _refused(self, form: Any, error: products.ProductInputError) -> bool:
        for name, message in error.errors.items():
            field = getattr(form, name, None)
            if field is not None:
                field.errors = [*field.errors, message]
            else:
                flash(message, "error")
        return False

    def create_model(self, form: Any) -> Any:
        try:
            return products.create_product(self._product_input(form), actor=f"staff {current_user.email}")
        except products.ProductInputError as error:
            return self._refused(form, error)

    def update_model(self, form: Any, model: Any) -> bool:
        try:
            products.update_product(model.id, self._product_input(form), actor=f"staff {current_user.email}")
        except products.ProductInputError as error:
            return self._refused(form, error)
        except LookupError:
            flash("This product no longer exists.", "error")
            return False
        return True

    def delete_model(self, model: Any) -> bool:
        return False  # never: past orders point at products (can_delete is off; this closes the door)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self) -> Any:
        """Flask-Admin's create page; a refused save answers 400 with the messages beside the fields."""
        return bad_input_is_400(super().create_view())

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self) -> Any:
        """Flask-Admin's edit page with the product's change history; a refused save answers 400."""
        return bad_input_is_400(super().edit_view())

    @expose("/picture/<int:id>", methods=("GET", "POST"))
    @body_limit("PICTURE_UPLOAD_MAX_BYTES")
    def picture_view(self, id: int) -> Any:
        """Upload, replace or remove a product's picture (verified and re-encoded by the pictures service)."""
        product = stock.get_product(id)
        if product is None:
            abort(404)
        form = PictureForm(request.form if request.method == "POST" else None, data={"alt": product.image_alt})
        status = 200
        if request.method == "POST":
            actor = f"staff {current_user.email}"
            config = current_app.config
            try:
                if not form.validate():
                    status = 400
                elif form.remove.data:
                    pictures.remove_picture(id, actor=actor)
                    flash(f"Picture removed from {product.name}.", "success")
                    return redirect(url_for(".picture_view", id=id), code=303)
                else:
                    upload = request.files.get("picture")
                    pictures.store_picture(
                        id,
                        upload.read(config["PICTURE_MAX_BYTES"] + 1) if upload else b"",
                        folder=Path(config["UPLOAD_FOLDER"]),
                        max_bytes=config["PICTURE_MAX_BYTES"],
                        max_pixels=config["PICTURE_MAX_PIXELS"],
                        actor=actor,
                        alt=form.alt.data or "",
                    )
                    flash(f"Picture saved for {product.name}.", "success")
                    return redirect(url_for(".picture_view", id=id), code=303)
            except pictures.PictureError as error:
                form.picture.errors = [*form.picture.errors, str(error)]
                status = 400
            except pictures.PictureStorageError as error:  # disk full: an outage, said beside the field
                form.picture.errors = [*form.picture.errors, str(error)]
                status = 503
            except products.ProductInputError as error:
                form.alt.errors = [*form.alt.errors, *error.errors.values()]
                status = 400
            except LookupError:
                abort(404)
        return self.render("admin/product_picture.html", product=product, form=form), status

    picture_view.too_large_message = lambda config: (  # type: ignore[attr-defined]
        f"The picture is larger than {config['PICTURE_MAX_BYTES'] // (1024 * 1024)} MB; choose a smaller file."
    )

    def render(self, template: str, **kwargs: Any) -> Any:
        model = kwargs.get("model")
        if template == self.edit_template and model is not None:
            kwargs["history"] = products.history(model.id)
        return super().render(template, **kwargs)

    @expose("/stock/<int:id>", methods=("GET", "POST"))
    def stock_view(self, id: int) -> Any:
        """Show a product's counts and take one staff stock change (restock +N, or units on hand)."""
        product = stock.get_product(id)
        if product is None:
            abort(404)
        formdata = request.form if request.method == "POST" else None
        restock_form = RestockForm(formdata, prefix="restock")
        on_hand_form = OnHandForm(formdata, prefix="count")
        status = 200
        if request.method == "POST":
            try:
                if restock_form.restock.data and restock_form.validate():
                    level = stock.restock(id, restock_form.add.data, actor=f"staff {current_user.email}")
                elif on_hand_form.set_on_hand.data and on_hand_form.validate():
                    level = stock.set_on_hand(id, on_hand_form.on_hand.data, actor=f"staff {current_user.email}")
                else:
                    level = None
                    status = 400
            except stock.StockError as error:
                flash(str(error), "error")
                level, status = None, 400
            if level is not None:
                available = "unlimited" if level.stock is None else level.stock
                flash(f"{level.name}: {available} available, {level.reserved} held by open checkouts.", "success")
                return redirect(url_for(".stock_view", id=id))
            product = stock.get_product(id)
        body = self.render(
            "admin/product_stock.html", product=product, restock_form=restock_form, on_hand_form=on_hand_form
        )
        return body, status
