"""Warranty notices: an asset whose warranty ends within ``WARRANTY_NOTICE_DAYS`` (30; at most
:data:`MAX_NOTICE_DAYS`) days is told, once per end date, to its active owner and to the members of
its support group who work the group's queue (nobody of those: the configuration managers, else the
admins), in-app, by mail and by webhook (``ci.warranty_ending``), so that it is renewed or the
asset replaced before it runs out. A later end date (a renewed warranty) is told again when it
comes near; a retired CI is not told. Each notice is audited (``ci_warranty_noticed``).

Run by every sweep (app/scheduler.py), a bounded batch at a time; several sweepers tell each CI
once (PostgreSQL: rows another sweeper holds are skipped; SQLite: one writer at a time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import or_, select

from app.db import begin_write
from app.languages import Text
from app.models import CiStatus, ConfigurationItem, Role

from .notifications import Person

if TYPE_CHECKING:
    from . import Services

EVENT = "ci.warranty_ending"
#: The longest notice period taken (ten years): a larger setting is read as this.
MAX_NOTICE_DAYS = 3650


def notice_days(config: Mapping[str, Any]) -> int:
    """The notice period set (``WARRANTY_NOTICE_DAYS``), at most :data:`MAX_NOTICE_DAYS`; 0: none."""
    return min(int(config.get("WARRANTY_NOTICE_DAYS") or 0), MAX_NOTICE_DAYS)


class WarrantyService:
    def __init__(self, services: Services) -> None:
        self.services = services

    def recipients(self, ci: ConfigurationItem) -> list[Person]:
        """Who hears of the CI's warranty: its active owner and its support group's queue workers;
        when that is nobody, the active configuration managers, else the active admins (someone
        keeps the CMDB)."""
        notifier = self.services.notifications
        people: list[Person] = [ci.owner] if ci.owner is not None and ci.owner.active else []
        people += notifier.queue_members(ci.support_group.name) if ci.support_group is not None else []
        for role in (Role.CONFIGURATION_MANAGER, Role.ADMIN):
            if people:
                break
            people = list(self.services.users.active_with_role(role))
        return people

    def sweep(self, limit: int = 100) -> int:
        """Tell the warranties ending soon that were not told yet; one transaction; returns how
        many CIs were told about."""
        days = notice_days(self.services.runtime.config)
        if days <= 0:
            return 0
        session = self.services.session
        begin_write(session)
        today = self.services.runtime.clock.now().date()
        due = select(ConfigurationItem).where(
            ConfigurationItem.warranty_until.is_not(None),
            ConfigurationItem.warranty_until >= today,
            ConfigurationItem.warranty_until <= today + timedelta(days=days),
            ConfigurationItem.status != CiStatus.RETIRED,
            or_(ConfigurationItem.warranty_noticed_for.is_(None),
                ConfigurationItem.warranty_noticed_for != ConfigurationItem.warranty_until),
        ).order_by(ConfigurationItem.warranty_until, ConfigurationItem.id).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True, of=ConfigurationItem)
        notifier = self.services.notifications
        told = 0
        for ci in session.scalars(due):
            assert ci.warranty_until is not None
            ci.warranty_noticed_for = ci.warranty_until
            people = self.recipients(ci)
            left = (ci.warranty_until - today).days
            when = Text("today") if left == 0 else Text("tomorrow") if left == 1 else Text("in %(count)d days", count=left)
            said = {"ci": ci.name, "until": ci.warranty_until.isoformat()}
            notifier.notify(
                people, EVENT, Text("The warranty of %(ci)s ends on %(until)s", **said),
                Text("The warranty of %(ci)s ends on %(until)s (%(when)s). Renew it, or plan to replace the item: "
                     "%(link)s", when=when, link=notifier.url(f"/cmdb/cis/{quote(ci.name)}"), **said),
                payload={"ci": ci.name, "warranty_until": ci.warranty_until.isoformat(), "days_left": left,
                         "asset_tag": ci.asset_tag})
            self.services.audit.record("ci_warranty_noticed", None, actor_name="scheduler", payload={
                "ci": ci.name, "warranty_until": ci.warranty_until.isoformat(), "days_left": left,
                "recipients": sorted({p.username for p in people})})
            told += 1
        session.commit()
        return told
