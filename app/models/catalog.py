"""The service catalog: a category tree and requestable items."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, str128, str255, timestamp


class ItemStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class CatalogCategory(Base):
    __tablename__ = "catalog_category"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str255]
    parent_code: Mapped[str | None] = mapped_column(String(32), index=True)
    position: Mapped[int] = mapped_column(default=0)


class CatalogItem(Base):
    __tablename__ = "catalog_item"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str255]
    category_code: Mapped[str] = mapped_column(String(32), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_group: Mapped[str128]
    fulfilment_group: Mapped[str128]
    form: Mapped[str | None] = mapped_column(String(128))
    approval_rule: Mapped[str] = mapped_column(String(32), default="none")
    cost: Mapped[float] = mapped_column(Numeric(12, 2, asdecimal=False), default=0)
    target_hours: Mapped[int] = mapped_column(default=24)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.PUBLISHED, index=True)
    extra: Mapped[dict[str, Any]]
    updated_at: Mapped[timestamp]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
