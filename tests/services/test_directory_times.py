"""Users and groups are dated by the app's clock, as every other record is: an auditor comparing
a user's creation with the audit events about them sees the same time in both."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from app.models import AuditEvent


def test_users_and_groups_are_created_at_the_apps_time(services: Any, clock: Any) -> None:
    clock.set(datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc))
    users = services.users
    users.create_user("admin1", "password-1234", roles=["admin"])
    services.session.commit()
    admin = users.get_by_username("admin1")
    clock.advance(timedelta(days=2))
    users.create_user("newbie", "password-1234", roles=["requester"], groups=["Newcomers"])  # the group made with it
    clock.advance(timedelta(days=3))
    users.create_group(admin, "Later")
    services.session.commit()

    assert admin.created_at == datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    newbie = users.user_dict(users.get_by_username("newbie"))
    assert newbie["created_at"] == datetime(2031, 3, 6, 5, 6, 7, tzinfo=timezone.utc)
    groups = {g.name: g.created_at for g in users.get_by_username("newbie").groups}
    assert groups == {"Newcomers": datetime(2031, 3, 6, 5, 6, 7, tzinfo=timezone.utc)}
    assert users.find_group("Later").created_at == datetime(2031, 3, 9, 5, 6, 7, tzinfo=timezone.utc)
    # the same moment as the audit's event of the creation
    [created] = [e for e in services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "user_created"))
                 if e.payload["username"] == "newbie"]
    assert created.occurred_at == newbie["created_at"]
