"""Shared pieces of the staff views: the staff-only base, column formatters, CSV download, date filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, request, stream_with_context, url_for
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import template, typefmt
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from shopapp.admin.forms import StaffForm
from shopapp.security import safe_redirect_target
from shopapp.services import exports
from shopapp.services.catalog import format_money
from shopapp.services.ids import DB_INT_MAX
from shopapp.templating import local_time


class StaffOnly:
    """Only logged-in staff get in; anonymous visitors go to log-in, others get 403."""

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.is_staff)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        if not current_user.is_authenticated:
            flash("Please log in with a staff account to continue.", "info")
            return redirect(url_for("auth.login", next=request.full_path))
        abort(403)

    # Flask-Admin's views read their return address from the `url` parameter (query or form) through a
    # module-level helper that no view method wraps, so the check sits in the hook that runs before every
    # exposed view. Its own is_safe_url let "http:/evil.com" through (it rewrites, then judges the rewrite).
    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        denied = super()._handle_view(name, **kwargs)  # type: ignore[misc]
        if denied is not None:
            return denied
        targets = request.args.getlist("url") + (request.form.getlist("url") if request.method == "POST" else [])
        if all(safe_redirect_target(target) for target in targets):
            return None
        if request.method == "POST":
            abort(400)  # an unsafe return address on a change: change nothing
        # The same page without the unsafe parameter: the view then falls back to its own list.
        args = {**request.args.to_dict(flat=False), **(request.view_args or {})}
        args.pop("url", None)
        return redirect(url_for(request.endpoint or ".index_view", **args))


def _yes_no(view: Any, value: Any, name: str) -> str:
    # Flask-Admin shows True as a bare icon and False as nothing: a link or cell without a name for screen readers.
    return "Yes" if value else "No"


def _local_time(view: Any, value: Any, name: str = "") -> str:
    # Lists show the shop's local time to the minute (config SHOP_TIMEZONE), not ISO with microseconds.
    return local_time(value)


class StaffModelView(StaffOnly, ModelView):
    """Base for every model view: CSRF on all forms (create, edit, delete, actions), staff only.

    No column_editable_list: Flask-Admin's in-line (x-editable) editing replaces values by unlabelled icons
    and popovers that screen readers cannot name; staff edit on the record's own form instead.
    """

    # A Flask-WTF form, not Flask-Admin's SecureForm: the site-wide CSRFProtect checks every POST for a
    # Flask-WTF token and refused SecureForm's own (every staff save failed with CSRF on). One token for all.
    form_base_class = StaffForm
    column_type_formatters = {**typefmt.BASE_FORMATTERS, bool: _yes_no, datetime: _local_time}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, bool: _yes_no, datetime: _local_time}
    page_size = 50
    can_set_page_size = True

    def get_one(self, id: Any) -> Any:
        """The row for `?id=` (Flask-Admin's details, edit, delete), or None ("Record does not exist"): an integer
        id beyond the database's range names no row, and querying it would overflow (a 500)."""
        digits = id.removeprefix("-") if isinstance(id, str) else ""
        if digits.isascii() and digits.isdigit() and (len(digits) > 10 or int(digits) > DB_INT_MAX):
            return None
        return super().get_one(id)

    def get_list_row_actions(self) -> list[template.BaseListRowAction]:
        """Flask-Admin's row links (view, edit), with each link's URL built once per page, not per row.

        Its own view and edit links called url_for for every row (routing the endpoint and encoding the
        return address again: a tenth of rendering a 50-row list). The same links, as LinkRowAction
        templates from one url_for with a placeholder for the id; the return address is this list as
        requested. The links render through our admin/model/row_actions.html `link` macro, as before.
        """
        return_url = request.full_path.rstrip("?")
        links = {
            template.ViewRowAction: (".details_view", "fa fa-eye glyphicon glyphicon-eye-open"),
            template.EditRowAction: (".edit_view", "fa fa-pencil glyphicon glyphicon-pencil"),
        }
        actions: list[template.BaseListRowAction] = []
        for row_action in super().get_list_row_actions():
            endpoint, icon = links.get(type(row_action), (None, None))
            if endpoint is None or icon is None:
                actions.append(row_action)
                continue
            # url_for percent-encodes every brace of the return address, so "{row_id}" is the only field
            # (and the id comes before the return address, should a search contain the placeholder).
            url = self.get_url(endpoint, id=_ROW_ID, url=return_url).replace(_ROW_ID, "{row_id}", 1)
            actions.append(template.LinkRowAction(icon, url, title=row_action.title))
        return actions

    @pass_context
    def list_rows(
        self,
        context: Context,
        rows: list[Any],
        list_columns: list[tuple[str, Any]],
        row_actions: list[template.BaseListRowAction],
        with_checkbox: bool,
        select_label: str,
    ) -> Markup | None:
        """The list's table rows as one piece of markup, or None when the template must render them.

        admin/model/list.html rendered each row in Jinja: per cell a call into the view, an escape and a
        dozen small writes, per row a macro for each link; for 50 rows of 8 columns that was most of the
        orders list's time (issue 25). Here each cell's value still comes from Flask-Admin's public
        `get_list_value` (column formatters, choices, type formatters, as before) and is escaped like
        Jinja's autoescape; the markup is the template's own. None (the template's loop then runs) for an
        empty page (its message), for in-line editable columns, and for row actions other than links
        (a delete form needs the template's macro).
        """
        if not rows or self.column_editable_list:
            return None
        links: list[tuple[str, Markup]] = []
        for action in row_actions if self.column_display_actions else ():
            if type(action) is not template.LinkRowAction or not isinstance(action.url, str):
                return None
            title = escape(str(action.title or ""))
            links.append(
                (action.url, Markup('<a class="icon" href="{}" title="%s" aria-label="%s">\n  <span class="%s"'
                 ' aria-hidden="true"></span>\n</a>\n') % (title, title, escape(action.icon_class)))
            )  # fmt: skip
        label = escape(select_label)
        cells = [(name, Markup('<td class="col-%s">') % name) for name, _ in list_columns]
        out: list[str] = []
        for row in rows:
            pk = escape(str(self.get_pk_value(row)))
            out.append("<tr>\n")
            if with_checkbox:
                out.append(
                    f'<td>\n<input type="checkbox" name="rowid" class="action-checkbox" value="{pk}" '
                    f'title="{label}" aria-label="{label} {pk}" />\n</td>\n'
                )
            if self.column_display_actions:
                out.append('<td class="list-buttons-column">\n')
                for url, link in links:
                    out.append(link.replace("{}", escape(url.format(row_id=pk)), 1))
                out.append("</td>\n")
            for name, opening in cells:
                out.append(f"{opening}{escape(self.get_list_value(context, row, name))}</td>\n")
            out.append("</tr>\n")
        return Markup("".join(out))


# Stands in for the row's id in a row link's URL (letters only, so url_for leaves it as it is).
_ROW_ID = "ROWIDPLACEHOLDER"


def csv_download(kind: str, **selection: Any) -> Response:
    """Stream one of the formula-safe CSV exports (services.exports) as an attachment."""
    return Response(
        stream_with_context(exports.export_csv(kind, **selection)),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={kind}.csv"},
    )


def bad_input_is_400(response: Any) -> Any:
    """A POST that re-renders its form (instead of redirecting) was refused: answer 400, not 200."""
    if request.method == "POST" and isinstance(response, str):
        return response, 400
    return response


def money_column(view: Any, context: Any, model: Any, name: str) -> str:
    cents = getattr(model, name)
    return format_money(cents, model.currency) if cents is not None else ""


class _UTCInput:
    """Read the dates staff type as UTC: our UTCDateTime columns refuse naive datetimes."""

    def clean(self, value: str) -> Any:
        cleaned = super().clean(value)  # type: ignore[misc]
        if isinstance(cleaned, list):
            return [moment.replace(tzinfo=UTC) for moment in cleaned]
        return cleaned.replace(tzinfo=UTC)


class UTCBetweenFilter(_UTCInput, sqla_filters.DateTimeBetweenFilter):
    """Between two UTC date-times."""


class UTCAfterFilter(_UTCInput, sqla_filters.DateTimeGreaterFilter):
    """After a UTC date-time."""


class UTCBeforeFilter(_UTCInput, sqla_filters.DateTimeSmallerFilter):
    """Before a UTC date-time."""


def date_filters(column: Any, label: str) -> list[Any]:
    # Our UTCDateTime type is not one Flask-Admin recognises by name, so the filters are spelled out.
    return [UTCBetweenFilter(column, label), UTCAfterFilter(column, label), UTCBeforeFilter(column, label)]
