"""Users: the list and the staff flag."""

from __future__ import annotations

from typing import Any

from flask_admin import expose
from flask_login import current_user

from shopapp.admin.forms import UserStaffForm
from shopapp.admin.views.base import (
    StaffModelView,
    bad_input_is_400,
    csv_download,
    date_filters,
)
from shopapp.models import User
from shopapp.services import staff


class UserView(StaffModelView):
    """Users: list and toggle staff; password hashes and session tokens are never shown.

    The one write (the staff flag) goes through shopapp.services.staff.set_staff, in one transaction.
    """

    can_create = False
    can_delete = False
    column_list = ("email", "is_staff", "created_at")
    column_details_exclude_list = ("password_hash", "session_token")
    column_searchable_list = ("email",)
    column_filters = ("is_staff", *date_filters(User.created_at, "Created"))
    form = UserStaffForm
    edit_template = "admin/user_edit.html"
    can_export = True
    export_types = ["csv"]

    @expose("/export/<export_type>/")
    def export(self, export_type: str) -> Any:
        """Every account as a formula-safe CSV (services.exports); never hashes or tokens."""
        return csv_download("users")

    def update_model(self, form: Any, model: Any) -> bool:
        try:
            staff.set_staff(model.id, bool(form.is_staff.data), actor_id=current_user.id)
        except staff.StaffChangeError as error:
            form.is_staff.errors = [*form.is_staff.errors, str(error)]
            return False
        return True

    def create_model(self, form: Any) -> Any:
        return False  # accounts are made by signing up (can_create is off)

    def delete_model(self, model: Any) -> bool:
        return False

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self) -> Any:
        """Flask-Admin's edit page, headed with whose account it is; a refused change answers 400."""
        return bad_input_is_400(super().edit_view())
