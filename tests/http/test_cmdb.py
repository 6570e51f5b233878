"""The CMDB through the API: who reads and who writes configuration items (a requester is refused,
an agent reads only, admins and configuration managers write), field-named 422s, audited changes,
relationships without self-links or duplicates, the records that name a CI (open ones first) and
its impact, and records refused a retired CI while unknown names stay free text."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk
from tests.http.helpers import assert_error

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN"}
CHANGE = {"title": "Upgrade the gateway", "description": "Firmware 9.2.", "reason": "Version 8 is out of support.",
          "planned_start": "2026-03-10T20:00:00Z", "planned_end": "2026-03-10T22:00:00Z",
          "implementation_plan": "Drain, upgrade, re-enable.", "rollback_plan": "Restore the VM snapshot.",
          "test_plan": "Connect from home.", "change_type": "normal", "ci": "vpn-gw-01"}
GATEWAY = {"name": "vpn-gw-01", "class": "network", "status": "in_service", "description": "The VPN concentrator.",
           "owner": "nina", "support_group": "NetworkTeam", "location": "DC1 rack 4", "serial_number": "FTX1234"}


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    made = Desk(client, services)
    services.users.create_user("cmo", "password-1234", roles=["configuration_manager"], groups=[])
    services.session.commit()
    return made


def create(desk: Desk, who: str = "ada", **values: Any) -> dict[str, Any]:
    response = desk.client.post("/api/v1/cis", json={**GATEWAY, **values}, headers=desk.auth(who))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def relate(desk: Desk, name: str, target: str, kind: str, who: str = "ada", status: int = 201) -> dict[str, Any]:
    response = desk.client.post(f"/api/v1/cis/{name}/relationships", json={"target": target, "kind": kind},
                                headers=desk.auth(who))
    assert response.status_code == status, response.get_json()
    return response.get_json()


def events(services: Any, *types: str) -> list[dict[str, Any]]:
    services.session.rollback()  # see what the requests committed
    found = [{"type": e.event_type, "actor": e.actor, **e.payload} for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type.in_(types)).order_by(AuditEvent.seq))]
    # end the read: the harness's savepoints nest, and the next request's commit would sit inside it
    services.session.rollback()
    return found


def test_requesters_are_refused_agents_read_admins_and_configuration_managers_write(desk: Desk, services):
    created = create(desk)
    assert (created["name"], created["class"], created["status"], created["owner"], created["support_group"]) == \
        ("vpn-gw-01", "network", "in_service", "nina", "NetworkTeam")
    assert created["relationships"] == [] and created["records"] == [] and created["impact"] == []
    create(desk, "cmo", name="vpn-app", **{"class": "software"})

    client = desk.client
    # a requester (and an approver): no list, no CI (404: its existence is not told), no writing
    for who in ("rita", "mona"):
        assert_error(client.get("/api/v1/cis", headers=desk.auth(who)), 403, "forbidden")
        assert_error(client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth(who)), 404, "not_found")
        assert_error(client.post("/api/v1/cis", json={}, headers=desk.auth(who)), 403)  # 403 before the 422
        assert_error(client.patch("/api/v1/cis/vpn-gw-01", json={"location": "x"}, headers=desk.auth(who)), 404)
        assert_error(client.post("/api/v1/cis/vpn-gw-01/retire", headers=desk.auth(who)), 404)
    # an agent and an auditor read, any letter case; they write nothing (403: they see it)
    for who in ("alex", "aude"):
        listed = client.get("/api/v1/cis", headers=desk.auth(who)).get_json()
        assert [i["name"] for i in listed["items"]] == ["vpn-app", "vpn-gw-01"] and listed["total"] == 2
        assert client.get("/api/v1/cis/VPN-GW-01", headers=desk.auth(who)).get_json()["name"] == "vpn-gw-01"
        assert_error(client.post("/api/v1/cis", json=GATEWAY, headers=desk.auth(who)), 403, "forbidden")
        assert_error(client.patch("/api/v1/cis/vpn-gw-01", json={"location": "x"}, headers=desk.auth(who)), 403)
        assert_error(client.post("/api/v1/cis/vpn-gw-01/retire", headers=desk.auth(who)), 403)
        assert_error(client.post("/api/v1/cis/vpn-app/relationships", json={"target": "vpn-gw-01", "kind": "runs_on"},
                                 headers=desk.auth(who)), 403)
        assert_error(client.delete("/api/v1/cis/vpn-app", headers=desk.auth(who)), 403)
    refused = [e for e in events(services, "access_denied") if e.get("ci") or e.get("action") == "list_cis"]
    assert {e["actor"] for e in refused} >= {"rita", "mona", "alex", "aude"}

    # the configuration manager changes it; the change is audited with before and after
    changed = client.patch("/api/v1/cis/vpn-gw-01", json={"status": "maintenance", "location": "DC2 rack 1"},
                           headers=desk.auth("cmo"))
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["status"], changed.get_json()["location"]) == ("maintenance", "DC2 rack 1")
    audited = events(services, "ci_created", "ci_updated")
    assert [(e["type"], e["actor"], e["ci"]) for e in audited] == [
        ("ci_created", "ada", "vpn-gw-01"), ("ci_created", "cmo", "vpn-app"), ("ci_updated", "cmo", "vpn-gw-01")]
    assert audited[-1]["changes"] == {"status": {"from": "in_service", "to": "maintenance"},
                                      "location": {"from": "DC1 rack 4", "to": "DC2 rack 1"}}
    # a save that changes nothing audits nothing
    assert client.patch("/api/v1/cis/vpn-gw-01", json={"location": "DC2 rack 1"}, headers=desk.auth("cmo")).status_code == 200
    assert len(events(services, "ci_updated")) == 1


def test_bad_input_names_the_field(desk: Desk):
    create(desk)
    client, ada = desk.client, desk.auth("ada")
    cases = [
        ({"class": "network"}, "name"),
        ({"name": "x"}, "class"),
        ({"name": "x", "class": "mainframe"}, "class"),
        ({"name": "x", "class": "other", "status": "broken"}, "status"),
        ({"name": "x", "class": "other", "owner": "nobody"}, "owner"),
        ({"name": "x", "class": "other", "support_group": "NoSuchTeam"}, "support_group"),
        ({"name": "VPN-GW-01", "class": "network"}, "name"),  # the name is taken, whatever its case
        ({"name": "a/b", "class": "other"}, "name"),
        ({"name": "x", "class": "other", "location": "x" * 256}, "location"),
        ({"name": "x", "class": "other", "colour": "red"}, "colour"),
        ({"name": "   ", "class": "other"}, "name"),
    ]
    for body, field in cases:
        body = assert_error(client.post("/api/v1/cis", json=body, headers=ada), 422)
        assert field in body["details"]["fields"], (field, body)
    # a rename is checked as a create's name is
    create(desk, name="vpn-gw-02")
    for name in ("VPN-GW-02", "a/b", "", "  ", "x" * 256, 7):
        assert "name" in assert_error(client.patch("/api/v1/cis/vpn-gw-01", json={"name": name}, headers=ada),
                                      422)["details"]["fields"], name
    assert "class" in assert_error(client.patch("/api/v1/cis/vpn-gw-01", json={"class": "big"}, headers=ada),
                                   422)["details"]["fields"]
    for query, field in (({"class": "big"}, "class"), ({"status": "gone"}, "status"), ({"page": 0}, "page")):
        assert field in assert_error(client.get("/api/v1/cis", query_string=query, headers=ada),
                                     422)["details"]["fields"]
    assert_error(client.get("/api/v1/cis/no-such-ci", headers=ada), 404, "not_found")


def test_list_filters_and_pages(desk: Desk):
    create(desk)
    create(desk, name="mail-srv-01", **{"class": "hardware"}, status="maintenance", description="Exchange host",
           serial_number="SN-77")
    create(desk, name="Email", **{"class": "service"}, description="Mail for everyone")
    client, alex = desk.client, desk.auth("alex")

    def names(**query: Any) -> list[str]:
        response = client.get("/api/v1/cis", query_string=query, headers=alex)
        assert response.status_code == 200, response.get_json()
        return [i["name"] for i in response.get_json()["items"]]

    assert names() == ["Email", "mail-srv-01", "vpn-gw-01"]
    assert names(**{"class": "hardware,service"}) == ["Email", "mail-srv-01"]
    assert names(status="maintenance") == ["mail-srv-01"]
    assert names(q="sn-77") == ["mail-srv-01"]
    assert names(q="mail") == ["Email", "mail-srv-01"]
    assert names(q="100%") == []
    page = client.get("/api/v1/cis", query_string={"per_page": 2, "page": 2}, headers=alex).get_json()
    assert ([i["name"] for i in page["items"]], page["total"], page["page"]) == (["vpn-gw-01"], 3, 2)


def test_relationships_impact_and_no_self_links_or_duplicates(desk: Desk, services):
    for name, cls in (("db-01", "hardware"), ("crm-app", "software"), ("crm", "service"), ("web-01", "hardware"),
                      ("portal", "service"), ("switch-a", "network")):
        create(desk, name=name, **{"class": cls}, owner=None, support_group=None)
    relate(desk, "crm-app", "db-01", "runs_on")
    relate(desk, "crm", "crm-app", "depends_on")
    relate(desk, "portal", "crm", "depends_on")
    relate(desk, "db-01", "portal", "depends_on", who="cmo")  # a cycle: the walk ends where it began
    relate(desk, "db-01", "switch-a", "connects_to")
    again = relate(desk, "crm-app", "DB-01", "runs_on", status=200)  # there already: not twice
    assert (again["source"], again["target"], again["kind"]) == ("crm-app", "db-01", "runs_on")

    ada = desk.auth("ada")
    for body, field in (({"target": "db-01", "kind": "runs_on"}, "target"),       # itself
                        ({"target": "nothing", "kind": "runs_on"}, "target"),
                        ({"target": "crm", "kind": "hosts"}, "kind"),
                        ({"kind": "runs_on"}, "target")):
        assert field in assert_error(desk.client.post("/api/v1/cis/db-01/relationships", json=body, headers=ada),
                                     422)["details"]["fields"]

    detail = desk.client.get("/api/v1/cis/db-01", headers=desk.auth("alex")).get_json()
    assert [(i["name"], i["depth"], i["via"]) for i in detail["impact"]] == [
        ("crm-app", 1, "db-01"), ("crm", 2, "crm-app"), ("portal", 3, "crm")]
    assert detail["impacted_services"] == ["crm", "portal"] and detail["impact_truncated"] is False
    assert [(r["direction"], r["kind"], r["ci"]) for r in detail["relationships"]] == [
        ("outgoing", "connects_to", "switch-a"), ("outgoing", "depends_on", "portal"), ("incoming", "runs_on", "crm-app")]
    # connects_to carries no impact; the switch's own page shows the link from db-01
    switch = desk.client.get("/api/v1/cis/switch-a", headers=desk.auth("alex")).get_json()
    assert switch["impact"] == [] and [r["ci"] for r in switch["relationships"]] == ["db-01"]

    removed_id = next(r["id"] for r in detail["relationships"] if r["ci"] == "portal")
    assert_error(desk.client.delete(f"/api/v1/cis/switch-a/relationships/{removed_id}", headers=ada), 404)
    assert desk.client.delete(f"/api/v1/cis/db-01/relationships/{removed_id}", headers=ada).status_code == 204
    assert_error(desk.client.delete(f"/api/v1/cis/db-01/relationships/{removed_id}", headers=ada), 404)
    audited = events(services, "ci_relationship_added", "ci_relationship_removed")
    assert [(e["type"], e["ci"], e["kind"]) for e in audited][-2:] == [
        ("ci_relationship_added", "db-01", "connects_to"), ("ci_relationship_removed", "db-01", "depends_on")]
    assert len(audited) == 6  # five added (the repeat added nothing), one removed


def test_a_ci_lists_the_records_naming_it_and_a_retired_one_is_refused_to_new_records(desk: Desk, services):
    create(desk)
    closed = desk.start("alex", "incident_management", {**INCIDENT, "ci": "vpn-gw-01", "title": "Old outage"})
    closed_number = closed["data"]["record_number"]
    cancelled = desk.client.post(f"/api/v1/instances/{closed['id']}/cancel", json={"reason": "Duplicate"},
                                 headers=desk.auth("alex"))
    assert cancelled.status_code == 200, cancelled.get_json()
    opened = desk.start("rita", "incident_management", {**INCIDENT, "ci": "vpn-gw-01"})["data"]["record_number"]
    # a name the CMDB does not know stays free text, as before
    desk.start("rita", "incident_management", {**INCIDENT, "ci": "printer on floor 3"})

    detail = desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("alex")).get_json()
    assert [(r["number"], r["open"], r["kind"]) for r in detail["records"]] == [
        (opened, True, "incident"), (closed_number, False, "incident")]
    assert detail["records"][0]["title"] == "VPN down" and detail["records_total"] == 2

    # a CI that records name is retired, not deleted
    body = assert_error(desk.client.delete("/api/v1/cis/vpn-gw-01", headers=desk.auth("ada")), 409, "ci_referenced")
    assert body["details"]["records"] == 2
    retired = desk.client.post("/api/v1/cis/vpn-gw-01/retire", headers=desk.auth("ada"))
    assert retired.status_code == 200 and retired.get_json()["status"] == "retired"
    assert_error(desk.client.post("/api/v1/cis/vpn-gw-01/retire", headers=desk.auth("ada")), 409, "ci_retired")
    assert [e["ci"] for e in events(services, "ci_retired")] == ["vpn-gw-01"]

    # a new record may not name it (any letter case), through the API or the start page's service
    response = desk.client.post("/api/v1/instances", json={"process_id": "incident_management",
                                                           "data": {**INCIDENT, "ci": "VPN-GW-01"}},
                                headers=desk.auth("rita"))
    assert "ci" in assert_error(response, 422)["details"]["fields"]
    change = desk.client.post("/api/v1/instances", json={"process_id": "change_enablement", "data": {**CHANGE}},
                              headers=desk.auth("alex"))
    assert "ci" in assert_error(change, 422)["details"]["fields"]
    # the records that named it keep it; one that nobody names is deleted outright
    assert desk.record(opened)["ci"] == "vpn-gw-01"
    create(desk, name="spare-gw")
    assert desk.client.delete("/api/v1/cis/spare-gw", headers=desk.auth("ada")).status_code == 204
    assert_error(desk.client.get("/api/v1/cis/spare-gw", headers=desk.auth("ada")), 404)
    assert [e["ci"] for e in events(services, "ci_deleted")] == ["spare-gw"]


def test_a_configuration_manager_outside_the_desk_sees_the_ci_not_the_records_of_others(desk: Desk):
    # the records on a CI's page are those the reader may see: a configuration manager who is not
    # desk staff sees the CI but not the records of others
    create(desk)
    desk.start("rita", "incident_management", {**INCIDENT, "ci": "vpn-gw-01"})
    detail = desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("cmo")).get_json()
    assert detail["records"] == [] and detail["records_total"] == 0
    assert desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("alex")).get_json()["records_total"] == 1


def test_a_rename_takes_the_records_along_and_the_old_name_answers_404(desk: Desk, services):
    create(desk)
    relate(desk, create(desk, name="vpn-svc", **{"class": "service"})["name"], "vpn-gw-01", "depends_on")
    named = desk.start("rita", "incident_management", {**INCIDENT, "ci": "vpn-gw-01"})["data"]["record_number"]
    other = desk.start("rita", "incident_management", {**INCIDENT, "ci": "printer-3"})["data"]["record_number"]
    for who, status in (("rita", 404), ("alex", 403), ("aude", 403)):
        assert_error(desk.client.patch("/api/v1/cis/vpn-gw-01", json={"name": "vpn-gw-new"}, headers=desk.auth(who)),
                     status)
    assert desk.record(named)["ci"] == "vpn-gw-01"

    response = desk.client.patch("/api/v1/cis/VPN-GW-01", json={"name": "vpn-gw-new"}, headers=desk.auth("cmo"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["name"] == "vpn-gw-new"
    assert body["records"] == []  # a configuration manager outside the desk sees no one's records
    assert [(r["direction"], r["ci"]) for r in body["relationships"]] == [("incoming", "vpn-svc")]
    assert [r["number"] for r in desk.client.get("/api/v1/cis/vpn-gw-new", headers=desk.auth("alex"))
            .get_json()["records"]] == [named]
    assert (desk.record(named)["ci"], desk.record(other)["ci"]) == ("vpn-gw-new", "printer-3")
    assert_error(desk.client.get("/api/v1/cis/vpn-gw-01", headers=desk.auth("alex")), 404, "not_found")
    assert_error(desk.client.patch("/api/v1/cis/vpn-gw-01", json={"location": "x"}, headers=desk.auth("ada")), 404)
    impact = desk.client.get("/api/v1/cis/vpn-gw-new", headers=desk.auth("alex")).get_json()["impact"]
    assert [(i["name"], i["via"]) for i in impact] == [("vpn-svc", "vpn-gw-new")]
    assert desk.client.get("/api/v1/cis/vpn-svc", headers=desk.auth("alex")).get_json()["relationships"][0]["ci"] \
        == "vpn-gw-new"

    [updated] = events(services, "ci_updated")
    assert (updated["actor"], updated["ci"], updated["changes"], updated["records"]) == (
        "cmo", "vpn-gw-new", {"name": {"from": "vpn-gw-01", "to": "vpn-gw-new"}}, 1)
    followed = [e for e in events(services, "record_updated") if "ci_renamed" in e]
    assert [(e["number"], e["actor"], e["changes"], e["ci_renamed"]) for e in followed] == [
        (named, "cmo", {"ci": "vpn-gw-new"}, {"from": "vpn-gw-01", "to": "vpn-gw-new"})]
    # the old name is free again: a new CI may take it
    assert create(desk, name="vpn-gw-01")["records"] == []
