"""Configuration items as assets through the API: the asset tag (one item's, whatever the letter
case), who it is assigned to, vendor, purchase date, cost and warranty end, field-named 422s,
audited changes, the list's warranty and assignee filters; and the warranty notices: told once per
end date to the owner and the support group's queue workers (in-app, mail, webhook), again for a
renewed warranty, never for a retired item or when turned off.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import Notification, OutboxMessage, User
from app.services.warranty import WarrantyService
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_cmdb import GATEWAY, events

LAPTOP = {"name": "lt-0042", "class": "hardware", "asset_tag": "AT-0042", "assigned_to": "rita", "vendor": "Lenovo",
          "purchased_on": "2024-02-01", "warranty_until": "2026-01-25", "cost": 1299, "owner": "nina",
          "support_group": "DesktopSupport"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def create(desk: Desk, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = desk.client.post("/api/v1/cis", json=body, headers=desk.auth("ada"))
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_an_asset_is_recorded_changed_and_audited(desk: Desk, services):
    made = create(desk, LAPTOP)
    assert {k: made[k] for k in ("asset_tag", "assigned_to", "vendor", "purchased_on", "warranty_until", "cost")} == {
        "asset_tag": "AT-0042", "assigned_to": "rita", "vendor": "Lenovo", "purchased_on": "2024-02-01",
        "warranty_until": "2026-01-25", "cost": "1299.00"}
    changed = desk.client.patch("/api/v1/cis/lt-0042", headers=desk.auth("ada"),
                                json={"assigned_to": "alex", "warranty_until": "2027-01-25", "cost": "1199.50"})
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["assigned_to"], changed.get_json()["cost"]) == ("alex", "1199.50")
    cleared = desk.client.patch("/api/v1/cis/lt-0042", headers=desk.auth("ada"),
                                json={"assigned_to": None, "cost": "", "purchased_on": None})
    assert cleared.status_code == 200
    assert [cleared.get_json()[k] for k in ("assigned_to", "cost", "purchased_on")] == [None, None, None]
    created, updated, again = events(services, "ci_created", "ci_updated")
    assert (created["asset_tag"], created["assigned_to"], created["cost"], created["warranty_until"]) == (
        "AT-0042", "rita", "1299.00", "2026-01-25")
    assert updated["changes"] == {"assigned_to": {"from": "rita", "to": "alex"},
                                  "warranty_until": {"from": "2026-01-25", "to": "2027-01-25"},
                                  "cost": {"from": "1299.00", "to": "1199.50"}}
    assert again["changes"]["purchased_on"] == {"from": "2024-02-01", "to": None}


@pytest.mark.parametrize(("body", "field"), [
    ({"purchased_on": "2026-13-01"}, "purchased_on"),
    ({"purchased_on": "01/02/2026"}, "purchased_on"),
    ({"purchased_on": "０２０２６-01-01"}, "purchased_on"),
    ({"purchased_on": "2026-W01-1"}, "purchased_on"),  # an ISO week date is no YYYY-MM-DD
    ({"cost": "1_000"}, "cost"),
    ({"cost": "1e2"}, "cost"),
    ({"warranty_until": "9999-01-01"}, "warranty_until"),
    ({"purchased_on": "2026-02-01", "warranty_until": "2026-01-31"}, "warranty_until"),
    ({"cost": -1}, "cost"),
    ({"cost": "1.234"}, "cost"),
    ({"cost": "abc"}, "cost"),
    ({"cost": True}, "cost"),
    ({"cost": "NaN"}, "cost"),
    ({"cost": "1e30"}, "cost"),
    ({"cost": [1]}, "cost"),
    ({"assigned_to": "nobody"}, "assigned_to"),
    ({"asset_tag": "x" * 65}, "asset_tag"),
    ({"vendor": "v" * 129}, "vendor"),
    ({"asset_tag": "at-0042"}, "asset_tag"),  # the laptop's, in another letter case
])
def test_bad_asset_fields_are_named_and_nothing_is_stored(desk: Desk, services, body: dict[str, Any], field: str):
    create(desk, LAPTOP)
    refused = assert_error(desk.client.post("/api/v1/cis", json={**GATEWAY, **body}, headers=desk.auth("ada")), 422)
    assert list(refused["details"]["fields"]) == [field], refused
    assert desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("ada")).status_code == 404
    # the same on a change of another item, which stays as it was
    create(desk, {**LAPTOP, "name": "lt-0050", "asset_tag": "AT-0050"})
    refused = assert_error(desk.client.patch("/api/v1/cis/lt-0050", json=body, headers=desk.auth("ada")), 422)
    assert list(refused["details"]["fields"]) == [field], refused
    read = desk.client.get("/api/v1/cis/lt-0050", headers=desk.auth("ada")).get_json()
    assert (read["asset_tag"], read["cost"], read["warranty_until"]) == ("AT-0050", "1299.00", "2026-01-25")


def test_the_list_filters_by_warranty_and_by_whom_an_asset_is_assigned_to(desk: Desk):
    create(desk, LAPTOP)  # warranty ends in 20 days
    create(desk, {**LAPTOP, "name": "lt-0043", "asset_tag": "AT-0043", "assigned_to": "alex", "warranty_until": "2026-03-01"})
    create(desk, {**LAPTOP, "name": "lt-0001", "asset_tag": "AT-0001", "warranty_until": "2025-12-31"})  # ended
    create(desk, {**GATEWAY})  # no warranty

    def names(**query: str) -> list[str]:
        response = desk.client.get("/api/v1/cis", headers=desk.auth("alex"), query_string=query)
        assert response.status_code == 200, response.get_json()
        return [i["name"] for i in response.get_json()["items"]]

    assert names(warranty="30") == ["lt-0042"]
    assert names(warranty="60") == ["lt-0042", "lt-0043"]
    assert names(warranty="expired") == ["lt-0001"]
    assert names(assigned_to="RITA") == ["lt-0001", "lt-0042"]
    assert names(assigned_to="nobody-at-all") == []
    assert names(q="at-0043") == ["lt-0043"]
    refused = assert_error(desk.client.get("/api/v1/cis", headers=desk.auth("alex"), query_string={"warranty": "soon"}), 422)
    assert "warranty" in refused["details"]["fields"]


def test_a_warranty_ending_soon_is_told_once_and_again_when_renewed(desk: Desk, services, clock):
    services.users.get_by_username("nina").email = "nina@example.org"
    create(desk, LAPTOP)  # ends 2026-01-25: in 20 days
    create(desk, {**LAPTOP, "name": "lt-0043", "asset_tag": "AT-0043", "warranty_until": "2026-03-01"})  # in 55 days
    create(desk, {**LAPTOP, "name": "lt-0044", "asset_tag": "AT-0044", "status": "retired"})
    services.session.commit()
    assert WarrantyService(services).sweep() == 1
    services.session.rollback()
    told = [(name, n) for n, name in services.session.execute(
        select(Notification, User.username).join(User, User.id == Notification.user_id)
        .where(Notification.subject.like("The warranty of %")))]
    # the owner and DesktopSupport's agents (nina is both: told once); not rita, who only uses it
    assert [name for name, _ in told] == ["nina"]
    notice = told[0][1]
    assert notice.subject == "The warranty of lt-0042 ends on 2026-01-25"
    assert "(in 20 days)" in notice.body and "/cmdb/cis/lt-0042" in notice.body
    mails = [(m.channel, m.recipient) for m in services.session.scalars(
        select(OutboxMessage).where(OutboxMessage.event_type == "ci.warranty_ending"))]
    assert mails == [("email", "nina@example.org")]
    [audited] = events(services, "ci_warranty_noticed")
    assert (audited["ci"], audited["days_left"], audited["recipients"]) == ("lt-0042", 20, ["nina"])
    # told once: the next sweeps tell nothing
    assert WarrantyService(services).sweep() == 0
    # renewed: the new end is told when it comes near; lt-0043 comes near meanwhile too
    assert desk.client.patch("/api/v1/cis/lt-0042", json={"warranty_until": "2026-02-20"},
                             headers=desk.auth("ada")).status_code == 200
    clock.advance(timedelta(days=30))
    assert WarrantyService(services).sweep() == 2
    assert [e["ci"] for e in events(services, "ci_warranty_noticed")] == ["lt-0042", "lt-0042", "lt-0043"]


def test_warranty_notices_can_be_turned_off(desk: Desk, services, monkeypatch):
    create(desk, LAPTOP)
    services.session.commit()
    monkeypatch.setitem(services.runtime.config, "WARRANTY_NOTICE_DAYS", 0)
    assert WarrantyService(services).sweep() == 0
    assert events(services, "ci_warranty_noticed") == []


def test_odd_but_right_values_are_read_as_meant(desk: Desk):
    made = create(desk, {**LAPTOP, "cost": "-0"})
    assert made["cost"] == "0.00"  # not "-0.00"
    assert create(desk, {**LAPTOP, "name": "lt-1", "asset_tag": "AT-1", "cost": ".5"})["cost"] == "0.50"
    # a purchase date moved after the warranty is named as sent
    refused = assert_error(desk.client.patch("/api/v1/cis/lt-0042", json={"purchased_on": "2026-02-01"},
                                             headers=desk.auth("ada")), 422)
    assert list(refused["details"]["fields"]) == ["purchased_on"]


def test_an_item_assigned_to_a_leaver_can_still_be_changed(desk: Desk, services):
    create(desk, LAPTOP)
    services.users.deactivate_user(services.users.get_by_username("ada"), "rita")
    services.session.commit()
    # the edit form sends every field, the assignee as it is: the other change goes through
    changed = desk.client.patch("/api/v1/cis/lt-0042", json={"assigned_to": "rita", "location": "Store room"},
                                headers=desk.auth("ada"))
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["assigned_to"], changed.get_json()["location"]) == ("rita", "Store room")
    # giving it to a leaver anew is refused
    create(desk, {**LAPTOP, "name": "lt-2", "asset_tag": "AT-2", "assigned_to": None})
    refused = assert_error(desk.client.patch("/api/v1/cis/lt-2", json={"assigned_to": "rita"}, headers=desk.auth("ada")), 422)
    assert list(refused["details"]["fields"]) == ["assigned_to"]


def test_a_warranty_with_nobody_of_its_own_is_told_to_the_cmdb_s_keepers(desk: Desk, services):
    services.users.create_user("cmo", "password-1234", roles=["configuration_manager"], groups=[])
    create(desk, {**LAPTOP, "owner": None, "support_group": None})
    services.session.commit()
    assert WarrantyService(services).sweep() == 1
    [audited] = events(services, "ci_warranty_noticed")
    assert audited["recipients"] == ["cmo"]


def test_the_warranty_sweep_reads_a_huge_setting_as_ten_years(desk: Desk, services, monkeypatch):
    create(desk, {**LAPTOP, "warranty_until": "2035-06-01"})
    services.session.commit()
    monkeypatch.setitem(services.runtime.config, "WARRANTY_NOTICE_DAYS", 3_000_000)
    assert WarrantyService(services).sweep() == 1


def test_the_database_holds_an_asset_tag_to_one_item(desk: Desk, services):
    """Two creates at the same moment both pass the service's check; the unique index on
    lower(asset_tag) keeps the second out (shown here by writing past the check)."""
    from sqlalchemy.exc import IntegrityError

    from app.models import ConfigurationItem

    create(desk, LAPTOP)
    services.session.rollback()
    services.session.add(ConfigurationItem(name="twin", ci_class="hardware", asset_tag="at-0042"))
    with pytest.raises(IntegrityError):
        services.session.flush()
    services.session.rollback()
    # items that are no asset have no tag, and many may
    for name in ("plain-1", "plain-2"):
        create(desk, {"name": name, "class": "other"})
