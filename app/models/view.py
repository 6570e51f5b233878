"""A person's saved views of the record list: a name and the list's filters and order
(app/services/views.py)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, timestamp


class SavedView(Base):
    """``query`` is the list's query string as the service normalised it (known parameters only,
    in a fixed order): ``/tickets?<query>`` opens the view."""

    __tablename__ = "saved_view"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[str] = mapped_column(Text)
    created_at: Mapped[timestamp]


#: One name per person, whatever the letter case.
NAME_INDEX = "uq_saved_view_user_name"
Index(NAME_INDEX, SavedView.user_id, func.lower(SavedView.name), unique=True)
