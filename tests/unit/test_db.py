from __future__ import annotations

from sqlalchemy import select

from app.db import count_capped
from app.models import Group


def test_count_capped_counts_exactly_below_the_cap_and_stops_above(services):
    for i in range(7):
        services.users.ensure_group(f"group-{i}")
    query = select(Group).where(Group.name.like("group-%"))
    assert count_capped(services.session, query, cap=10) == (7, True)
    assert count_capped(services.session, query, cap=7) == (7, True)
    assert count_capped(services.session, query, cap=5) == (5, False)
    assert count_capped(services.session, query.order_by(Group.name.desc()), cap=3) == (3, False)
