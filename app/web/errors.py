"""Error pages and small page helpers shared by the views and the app-level handlers."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, render_template, url_for
from flask_babel import gettext as _


def optional_url(endpoint: str, **values: Any) -> str | None:
    """The URL of a page, or None while that page does not exist yet (links appear with it)."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def error_page(status: int, title: str, message: str, **extra: Any) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message, **extra), status


def not_found_page() -> tuple[str, int]:
    return error_page(404, _("Not found"),
                      _("There is nothing here, or it is not yours to see. Check the address, or go back to your tasks."))


def flash_already_sent(ref: str | None) -> None:
    """Say that a create form came a second time and made nothing new (its one-time token,
    app/services/submissions.py), naming the record the first time created."""
    flash(_("This form was already sent: %(number)s was created then.", number=ref) if ref
          else _("This form was already sent."), "success")
