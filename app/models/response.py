"""Response templates: the words an agent says again and again ("we are looking into it", "please
restart and tell us"), kept once and put into a record's comment with its values filled in
(app/services/responses.py)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, timestamp
from .user import User


class ResponseTemplate(Base):
    """A template's ``body`` holds placeholders (``{{number}}``, ``{{requester}}`` ...) filled in from
    the record it is used on. ``kind`` limits it to one kind of record (None: every kind).
    ``owner_id`` None makes it the desk's (every agent uses it; process owners and admins write
    it), else it is its owner's alone. ``version`` goes up with each edit: an edit written over an
    older one is refused."""

    __tablename__ = "response_template"
    __table_args__ = (
        CheckConstraint("kind IS NULL OR kind IN ('incident', 'change', 'problem', 'request')", name="kind_known"),
    )

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]

    created_by: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[created_by_id])


#: One name per owner, and one among the desk's, whatever the letter case (the desk's have no
#: owner: 0 stands for it). The service checks first, to name the field; this holds for two saves at once.
NAME_INDEX = "uq_response_template_owner_name"
Index(NAME_INDEX, func.coalesce(ResponseTemplate.owner_id, 0), func.lower(ResponseTemplate.name), unique=True)
