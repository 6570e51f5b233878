"""A unit of work that runs again (it lost a race) writes the refusals of its last run once: a bulk
action may refuse one task, then lose the race on another and run again, refusing it anew."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from app.errors import PermissionDenied
from app.models import AuditEvent
from app.unit_of_work import run_unit_of_work


def denied(services: Any) -> int:
    return services.session.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.event_type == "access_denied"))


def test_a_rerun_refusing_again_is_audited_once(services):
    user = services.users.create_user("rhea", "password-1234", roles=["requester"])
    services.session.commit()
    runs = []

    def work() -> None:
        runs.append(1)
        services.audit.refuse(user, "claim", reason="claimed by someone else", task_id=7)
        if len(runs) == 1:
            raise StaleDataError("another transaction changed the instance first")
        raise PermissionDenied("the task is claimed by someone else")

    with pytest.raises(PermissionDenied):
        run_unit_of_work(services, work)
    assert len(runs) == 2
    assert denied(services) == 1
