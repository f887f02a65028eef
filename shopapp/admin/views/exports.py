"""The exports page: every staff CSV in one place."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_admin import BaseView, expose

from shopapp.admin.views.base import (
    StaffOnly,
    csv_download,
)
from shopapp.services import exports


class ExportView(StaffOnly, BaseView):
    """All staff exports on one page: orders (with items and addresses), items, payment events, users."""

    @expose("/")
    def index(self) -> str:
        """Links to each CSV."""
        return self.render("admin/exports.html", kinds=exports.KINDS)

    @expose("/<kind>.csv")
    def download(self, kind: str) -> Any:
        """One export as CSV; 404 for an unknown kind."""
        if kind not in exports.KINDS:
            abort(404)
        return csv_download(kind)
