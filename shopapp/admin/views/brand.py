"""Brand: the shop's name, logo, accent colour, contact details and footer pages, as staff edit them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from shopapp.admin.forms import BrandForm, LogoForm
from shopapp.admin.views.base import StaffOnly
from shopapp.security import body_limit
from shopapp.services import brand, pictures


class BrandView(StaffOnly, BaseView):
    """One page: the brand form (every shop page, email and the payment page's name use it) and the logo."""

    def _render(self, form: BrandForm, logo_form: LogoForm, status: int = 200) -> Any:
        current = brand.current_brand(current_app.config["SHOP_NAME"])
        return self.render("admin/brand.html", form=form, logo_form=logo_form, brand=current), status

    def _filled_form(self) -> BrandForm:
        current = brand.current_brand(current_app.config["SHOP_NAME"])
        data: dict[str, Any] = {
            "shop_name": current.shop_name,
            "accent_color": current.accent_color,
            "contact_email": current.contact_email,
            "order_email": current.order_email,
            "postal_address": current.postal_address,
            "footer_line": current.footer_line,
        }
        for slug in brand.PageSlug:
            data[f"{slug.value}_page"] = brand.page_markdown(slug)
        return BrandForm(formdata=None, data=data)

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        """Show and save the brand form; refused fields answer 400 with the message beside each."""
        if request.method == "GET":
            return self._render(self._filled_form(), LogoForm(formdata=None))
        form = BrandForm()
        if not form.validate():
            return self._render(form, LogoForm(formdata=None), 400)
        try:
            brand.save_brand(
                brand.BrandInput(
                    shop_name=form.shop_name.data or "",
                    accent_color=form.accent_color.data or "",
                    contact_email=form.contact_email.data or "",
                    postal_address=form.postal_address.data or "",
                    footer_line=form.footer_line.data or "",
                    order_email=form.order_email.data or "",
                    pages={slug: getattr(form, f"{slug.value}_page").data or "" for slug in brand.PageSlug},
                ),
                actor=f"staff {current_user.email}",
                default_name=current_app.config["SHOP_NAME"],
            )
        except brand.BrandInputError as error:
            for name, message in error.errors.items():
                field = getattr(form, name)
                field.errors = [*field.errors, message]
            return self._render(form, LogoForm(formdata=None), 400)
        flash("Brand and pages saved: every page and email now uses them.", "success")
        return redirect(url_for(".index"), code=303)

    @expose("/logo", methods=("POST",))
    @body_limit("PICTURE_UPLOAD_MAX_BYTES")
    def logo(self) -> Any:
        """Upload (verified and re-encoded like product pictures) or remove the logo."""
        logo_form = LogoForm()
        config = current_app.config
        actor = f"staff {current_user.email}"
        if not logo_form.validate():
            return self._render(self._filled_form(), logo_form, 400)
        if logo_form.remove.data:
            brand.remove_logo(actor=actor, default_name=config["SHOP_NAME"])
            flash("Logo removed: the header shows the shop's name.", "success")
            return redirect(url_for(".index"), code=303)
        upload = request.files.get("logo")
        try:
            brand.store_logo(
                upload.read(config["PICTURE_MAX_BYTES"] + 1) if upload else b"",
                folder=Path(config["UPLOAD_FOLDER"]),
                max_bytes=config["PICTURE_MAX_BYTES"],
                max_pixels=config["PICTURE_MAX_PIXELS"],
                actor=actor,
                default_name=config["SHOP_NAME"],
            )
        except pictures.PictureError as error:
            logo_form.logo.errors = [*logo_form.logo.errors, str(error)]
            return self._render(self._filled_form(), logo_form, 400)
        flash("Logo saved.", "success")
        return redirect(url_for(".index"), code=303)

    logo.too_large_message = lambda config: (  # type: ignore[attr-defined]
        f"The logo is larger than {config['PICTURE_MAX_BYTES'] // (1024 * 1024)} MB; choose a smaller file."
    )
