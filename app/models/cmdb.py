"""The configuration management database: configuration items (CIs) and how they relate.

A CI's ``name`` is the key records use in their free-text ``ci`` field (``Ticket.ci``): the CMDB
reads records by it, never the other way round, so a record that names no CI keeps working.
A relationship ``source -> target`` of a ``kind`` reads "source <kind> target" (an application
``runs_on`` a server, a service ``depends_on`` an application); one per (source, target, kind),
never from a CI to itself.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, intpk, str128, timestamp
from .user import Group, User


class CiClass(StrEnum):
    HARDWARE = "hardware"
    SOFTWARE = "software"
    NETWORK = "network"
    SERVICE = "service"
    OTHER = "other"


class CiStatus(StrEnum):
    PLANNED = "planned"
    IN_SERVICE = "in_service"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class CiRelationKind(StrEnum):
    DEPENDS_ON = "depends_on"
    RUNS_ON = "runs_on"
    CONNECTS_TO = "connects_to"


class ConfigurationItem(Base):
    __tablename__ = "configuration_item"
    __table_args__ = (
        Index("ix_configuration_item_class_status", "ci_class", "status"),
    )

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(255), unique=True)
    ci_class: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CiStatus.IN_SERVICE)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    support_group_id: Mapped[int | None] = mapped_column(ForeignKey("group.id"))
    location: Mapped[str] = mapped_column(String(255), default="")
    serial_number: Mapped[str] = mapped_column(String(128), default="")
    # the asset it is, when it is one (a laptop, a server): who uses it, whence it came, what it
    # cost, and until when its warranty holds (app/services/cmdb.py; warranty notices: warranty.py)
    asset_tag: Mapped[str] = mapped_column(String(64), default="", server_default="")
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    vendor: Mapped[str] = mapped_column(String(128), default="", server_default="")
    purchased_on: Mapped[date | None] = mapped_column(Date)
    warranty_until: Mapped[date | None] = mapped_column(Date, index=True)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    #: The ``warranty_until`` its people were last told is ending (a new date is told again).
    warranty_noticed_for: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[timestamp]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    updated_at: Mapped[timestamp]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id], lazy="selectin")
    support_group: Mapped[Group | None] = relationship(foreign_keys=[support_group_id], lazy="selectin")
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id], lazy="selectin")


class CiRelationship(Base):
    __tablename__ = "ci_relationship"
    __table_args__ = (
        UniqueConstraint("source_id", "target_id", "kind", name="uq_ci_relationship_source_target_kind"),
        CheckConstraint("source_id <> target_id", name="not_self"),
    )

    id: Mapped[intpk]
    source_id: Mapped[int] = mapped_column(ForeignKey("configuration_item.id", ondelete="CASCADE"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("configuration_item.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[timestamp]
    created_by: Mapped[str128]

    source: Mapped[ConfigurationItem] = relationship(foreign_keys=[source_id], lazy="joined")
    target: Mapped[ConfigurationItem] = relationship(foreign_keys=[target_id], lazy="joined")


#: One CI per name whatever its letter case ("VPN-GW-01" and "vpn-gw-01" are one thing); lookups
#: compare ``lower(name)`` with ``lower(:name)`` so that they use it.
CI_NAME_LOWER_INDEX = "uq_configuration_item_name_lower"
Index(CI_NAME_LOWER_INDEX, func.lower(ConfigurationItem.name), unique=True)
#: One asset per tag whatever the letter case (items that are no asset have none: "").
CI_ASSET_TAG_INDEX = "uq_configuration_item_asset_tag_lower"
Index(CI_ASSET_TAG_INDEX, func.lower(ConfigurationItem.asset_tag), unique=True,
      sqlite_where=ConfigurationItem.asset_tag != "", postgresql_where=ConfigurationItem.asset_tag != "")


class CiMaintenanceWindow(Base):
    """A weekly (or, with ``week``, monthly) maintenance window of a CI: on the weekdays ``days`` names (a bit each, Monday 1
    to Sunday 64), from ``start_minute`` to ``end_minute`` after midnight, wall-clock time in the
    IANA zone ``timezone`` (so a window stays at 02:00 local across daylight saving). An end at or
    before the start ends on the next day (22:00 to 02:00; equal: 24 hours). Changes planned on the
    CI outside every window show it as a clash (app/services/maintenance.py)."""

    __tablename__ = "ci_maintenance_window"
    __table_args__ = (
        CheckConstraint("days >= 1 AND days <= 127", name="days_bits"),
        CheckConstraint("start_minute >= 0 AND start_minute < 1440", name="start_in_day"),
        CheckConstraint("end_minute >= 0 AND end_minute < 1440", name="end_in_day"),
        CheckConstraint("week IS NULL OR (week >= 1 AND week <= 5)", name="week_of_month"),
    )

    id: Mapped[intpk]
    ci_id: Mapped[int] = mapped_column(ForeignKey("configuration_item.id", ondelete="CASCADE"), index=True)
    name: Mapped[str128] = mapped_column(default="")
    days: Mapped[int]
    #: Monthly: the week of the month the days count in (1 to 4; 5 the last), as "the second
    #: Tuesday" (patch Tuesday); None: every week.
    week: Mapped[int | None]
    start_minute: Mapped[int]
    end_minute: Mapped[int]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[timestamp]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    ci: Mapped[ConfigurationItem] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id], lazy="joined")
