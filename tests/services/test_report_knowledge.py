"""The reports' knowledge section: articles published and attached in the period, readers'
answers given in it, and the articles most often said not to help."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.http.desk import Desk

INCIDENT = {"title": "VPN down", "description": "Cannot connect", "category": "network",
            "impact": "medium", "urgency": "medium"}


def test_the_knowledge_section_counts_the_period(client: Any, services: Any, clock: Any) -> None:
    desk = Desk(client, services)
    users, knowledge = services.users, services.knowledge
    clock.set(datetime(2026, 3, 1, 9, tzinfo=timezone.utc))
    old = knowledge.publish(None, title="Old answer", symptoms="", cause="", workaround="", source=None).number
    services.session.commit()
    clock.set(datetime(2026, 3, 10, 9, tzinfo=timezone.utc))  # the period: March 10 to 20
    vpn = knowledge.publish(None, title="VPN drops", symptoms="", cause="", workaround="", source=None).number
    printer = knowledge.publish(None, title="Printer jams", symptoms="", cause="", workaround="", source=None).number
    services.session.commit()
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    alex = users.get_by_username("alex")
    knowledge.attach(alex, number, vpn)
    for name, article, helped in (("rita", vpn, True), ("mona", vpn, True), ("nina", vpn, False),
                                  ("rita", printer, False), ("mona", printer, False), ("rita", old, False)):
        knowledge.rate(users.get_by_username(name), article, helped)
    services.session.commit()
    clock.advance(timedelta(days=20))  # after the period: changes nothing in it
    knowledge.rate(users.get_by_username("nina"), printer, False)
    services.session.commit()

    report = services.reports.summary(users.get_by_username("olga"), "2026-03-10", "2026-03-20")["knowledge"]
    assert report == {
        "published": 2, "attached": 1, "helped": 2, "not_helped": 4, "helpful_share": 33.3,
        "needs_work": [{"number": printer, "title": "Printer jams", "helped": 0, "not_helped": 2},
                       {"number": old, "title": "Old answer", "helped": 0, "not_helped": 1},
                       {"number": vpn, "title": "VPN drops", "helped": 2, "not_helped": 1}]}
    earlier = services.reports.summary(users.get_by_username("olga"), "2026-02-20", "2026-03-05")["knowledge"]
    assert (earlier["published"], earlier["helped"], earlier["not_helped"], earlier["needs_work"]) == (1, 0, 0, [])
