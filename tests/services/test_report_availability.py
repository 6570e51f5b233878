"""The reports' availability section: the minutes each service spent under an outage, a degraded
service or planned maintenance as the status notices announced it (each level for as long as the
notice's timeline held it), within the period's past, an overlap counted once, and the share of
that time without an outage."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.http.desk import Desk

DAY = datetime(2026, 3, 10, tzinfo=timezone.utc)


def notice(services: Any, clock: Any, *, at: datetime, title: str, level: str, service: str | None,
           lasts: timedelta | None) -> None:
    """A notice posted at ``at`` (starting then) and resolved ``lasts`` later (None: still open)."""
    alex = services.users.get_by_username("alex")
    clock.set(at)
    posted = services.status.post(alex, {"title": title, "level": level, "body": "Said.", "service": service})
    services.session.commit()
    if lasts is not None:
        clock.set(at + lasts)
        services.status.resolve(alex, posted.id, posted.version, {"body": "Over."})
        services.session.commit()


def test_the_availability_section_measures_the_announced_minutes(client: Any, services: Any, clock: Any) -> None:
    Desk(client, services)
    h = timedelta(hours=1)
    # E-mail: an outage from the day before into the period (only its part within counts), and two
    # overlapping outages on the 12th (2 h and 1 h, overlapping by 30 min: 2 h 30 min together)
    notice(services, clock, at=DAY - 2 * h, title="Mail down", level="outage", service="E-mail", lasts=3 * h)
    notice(services, clock, at=DAY + 48 * h, title="Mail down again", level="outage", service="E-mail", lasts=2 * h)
    notice(services, clock, at=DAY + 49.5 * h, title="Mail relay", level="outage", service="E-mail", lasts=h)
    # VPN: slow for 90 minutes, then maintenance; a notice of information is not measured
    notice(services, clock, at=DAY + 24 * h, title="VPN slow", level="degraded", service="VPN", lasts=1.5 * h)
    notice(services, clock, at=DAY + 30 * h, title="VPN upgrade", level="maintenance", service="VPN", lasts=h)
    notice(services, clock, at=DAY + 31 * h, title="VPN tips", level="info", service="VPN", lasts=h)
    # no service named, still open: it runs until now
    notice(services, clock, at=DAY + 72 * h, title="Something is down", level="outage", service=None, lasts=None)
    # an outage eased to degraded after an hour, resolved an hour later; one eased to information
    alex = services.users.get_by_username("alex")
    for title, service, eased_to in (("Printers down", "Printing", "degraded"), ("Wiki down", "Wiki", "info")):
        clock.set(DAY + 60 * h)
        eased = services.status.post(alex, {"title": title, "level": "outage", "body": "Down.", "service": service})
        services.session.commit()
        clock.set(DAY + 61 * h)
        services.status.update(alex, eased.id, 1, {"body": "Coming back.", "level": eased_to})
        services.session.commit()
        clock.set(DAY + 62 * h)
        services.status.resolve(alex, eased.id, 2, {"body": "Back."})
        services.session.commit()
    # maintenance announced for later and called off before it began: no time, not counted
    clock.set(DAY + 5 * h)
    called_off = services.status.post(alex, {"title": "Phones upgrade", "level": "maintenance", "body": "Planned.",
                                             "service": "Phones", "starts_at": DAY + 80 * h})
    services.session.commit()
    clock.set(DAY + 6 * h)
    services.status.resolve(alex, called_off.id, 1, {"body": "Called off."})
    services.session.commit()
    # after the period: not counted
    notice(services, clock, at=DAY + 30 * 24 * h, title="Later", level="outage", service="E-mail", lasts=h)

    clock.set(DAY + 96 * h)  # four days into the ten-day period: the measured past is 96 hours
    olga = services.users.get_by_username("olga")
    rows = services.reports.summary(olga, "2026-03-10", "2026-03-20")["availability"]
    assert rows == [  # the longest outage first
        {"service": None, "notices": 1, "outage_minutes": 24 * 60, "degraded_minutes": 0,
         "maintenance_minutes": 0, "availability": 75.0},
        {"service": "E-mail", "notices": 3, "outage_minutes": 60 + 150, "degraded_minutes": 0,
         "maintenance_minutes": 0, "availability": round(100 * (1 - 210 / (96 * 60)), 2)},
        {"service": "Printing", "notices": 1, "outage_minutes": 60, "degraded_minutes": 60,
         "maintenance_minutes": 0, "availability": round(100 * (1 - 60 / (96 * 60)), 2)},
        {"service": "Wiki", "notices": 1, "outage_minutes": 60, "degraded_minutes": 0,
         "maintenance_minutes": 0, "availability": round(100 * (1 - 60 / (96 * 60)), 2)},
        {"service": "VPN", "notices": 2, "outage_minutes": 0, "degraded_minutes": 90,
         "maintenance_minutes": 60, "availability": 100.0},
    ]
    # a period still to come has nothing to measure; one before any notice lists none
    assert services.reports.summary(olga, "2026-04-01", "2026-04-05")["availability"] == []
    assert services.reports.summary(olga, "2026-02-01", "2026-02-10")["availability"] == []
