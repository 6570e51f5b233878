"""Response templates through the API: an agent keeps their own stock replies and uses the desk's;
process owners and admins write the desk's; a record's templates come with its values filled in,
only for whoever may read the record; edits over a newer version are refused; bad input is
refused naming the field (and the placeholder), and nothing is stored; every change is audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent, ResponseTemplate
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_incident import open_incident

URL = "/api/v1/response-templates"
ON_IT = {"name": "We are on it", "body": "Hello {{requester}}, {{agent}} of {{ group }} works on {{number}} "
                                         "({{title}}, {{priority}}).", "kind": "incident"}


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def create(desk: Desk, body: dict[str, Any], who: str = "alex") -> Any:
    return desk.client.post(URL, headers=desk.auth(who), json=body)


def created(desk: Desk, body: dict[str, Any], who: str = "alex") -> dict[str, Any]:
    answer = create(desk, body, who)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()  # type: ignore[no-any-return]


def listed(desk: Desk, who: str, query: str = "") -> list[str]:
    answer = desk.client.get(URL + query, headers=desk.auth(who))
    assert answer.status_code == 200, answer.get_json()
    return [t["name"] for t in answer.get_json()["items"]]


def patch(desk: Desk, template_id: int, body: dict[str, Any], who: str = "alex") -> Any:
    return desk.client.patch(f"{URL}/{template_id}", headers=desk.auth(who), json=body)


def stored(services: Any) -> list[tuple[str, str, int | None, int]]:
    services.session.expire_all()
    return [(r.name, r.body, r.owner_id, r.version)
            for r in services.session.scalars(select(ResponseTemplate).order_by(ResponseTemplate.id))]


def events(services: Any, event_type: str) -> list[dict[str, Any]]:
    services.session.expire_all()
    return [e.payload for e in services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                                                        .order_by(AuditEvent.seq))]


def test_an_agent_fills_a_template_in_from_a_record_and_the_desk_shares_its_own(desk: Desk, services):
    number, _ = open_incident(desk, title="VPN drops every hour")
    mine = created(desk, ON_IT)
    assert mine["shared"] is False and mine["editable"] is True and mine["version"] == 1
    assert mine["created_by"] == "alex"
    shared = created(desk, {"name": "Closing", "body": "Thank you, {{requester}}. {{number}} is closed."}, who="olga")
    assert shared["shared"] is False  # not asked for: the process owner's own
    desk_wide = created(desk, {"name": "Restart first", "body": "Please restart and tell us on {{number}}.",
                               "shared": True}, who="olga")
    created(desk, {"name": "A change's plan", "body": "The plan of {{number}} is attached.", "kind": "change",
                   "shared": True}, who="ada")

    # each sees the desk's and their own, by name; another's own is not there
    assert listed(desk, "alex") == ["A change's plan", "Restart first", "We are on it"]
    assert listed(desk, "olga") == ["A change's plan", "Closing", "Restart first"]
    assert listed(desk, "alex", "?kind=incident") == ["Restart first", "We are on it"]
    assert listed(desk, "alex", "?kind=change") == ["A change's plan", "Restart first"]

    answer = desk.client.get(f"/api/v1/tickets/{number.lower()}/response-templates", headers=desk.auth("alex"))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["number"] == number
    texts = {t["name"]: t["text"] for t in body["items"]}
    record = desk.record(number)
    rita = services.users.get_by_username("rita").display_name
    alex = services.users.get_by_username("alex").display_name
    group = record["assignment_group"] or ""
    assert texts == {
        "Restart first": f"Please restart and tell us on {number}.",
        "We are on it": f"Hello {rita}, {alex} of {group} works on {number} (VPN drops every hour, "
                        f"{record['priority'] or ''}).",
    }
    assert [t["shared"] for t in body["items"]] == [True, False]

    # the desk's template: agents use it, do not change it; the process owner does
    assert desk_wide["id"] in [t["id"] for t in answer.get_json()["items"]]
    refused = assert_error(patch(desk, desk_wide["id"], {"version": 1, "body": "Mine now"}), 403, "forbidden")
    assert "process owners and admins" in refused["message"]
    assert_error(desk.client.delete(f"{URL}/{desk_wide['id']}", headers=desk.auth("alex")), 403, "forbidden")
    one = desk.client.get(f"{URL}/{desk_wide['id']}", headers=desk.auth("alex")).get_json()
    assert one["editable"] is False and one["shared"] is True
    changed = patch(desk, desk_wide["id"], {"version": 1, "body": "Please restart, then reply on {{number}}."},
                    who="ada")
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["version"] == 2 and changed.get_json()["created_by"] == "olga"

    # another person's own template does not exist for anyone else, admins included
    for who in ("nina", "ada"):
        assert_error(desk.client.get(f"{URL}/{mine['id']}", headers=desk.auth(who)), 404, "not_found")
        assert_error(patch(desk, mine["id"], {"version": 1, "name": "x"}, who=who), 404, "not_found")
        assert_error(desk.client.delete(f"{URL}/{mine['id']}", headers=desk.auth(who)), 404, "not_found")
    assert [name for name, *_ in stored(services)] == ["We are on it", "Closing", "Restart first", "A change's plan"]

    # audited: who wrote what, what it was
    assert [p["name"] for p in events(services, "response_template_created")] == [
        "We are on it", "Closing", "Restart first", "A change's plan"]
    [update] = events(services, "response_template_updated")
    assert update["was"]["body"] == "Please restart and tell us on {{number}}." and update["version"] == 2
    gone = desk.client.delete(f"{URL}/{mine['id']}", headers=desk.auth("alex"))
    assert gone.status_code == 204
    assert [p["name"] for p in events(services, "response_template_deleted")] == ["We are on it"]
    assert listed(desk, "alex") == ["A change's plan", "Restart first"]


def test_requesters_approvers_and_auditors_have_no_templates_and_an_unknown_record_none_either(desk: Desk, services):
    number, _ = open_incident(desk)
    created(desk, ON_IT)
    # a requester, an approver and an auditor: no templates at all (403 before anything is read)
    for who in ("rita", "cora", "aude"):
        assert_error(desk.client.get(URL, headers=desk.auth(who)), 403, "forbidden")
        assert_error(create(desk, ON_IT, who=who), 403, "forbidden")
        assert_error(desk.client.get(f"/api/v1/tickets/{number}/response-templates", headers=desk.auth(who)),
                     403, "forbidden")
    # the desk's staff read every record: an unknown one is 404, as the record itself answers
    assert_error(desk.client.get("/api/v1/tickets/INC-99999/response-templates", headers=desk.auth("alex")),
                 404, "not_found")
    assert len(stored(services)) == 1
    refusals = [p for p in events(services, "access_denied") if str(p.get("action", "")).startswith("response_template")]
    assert refusals, "the refusals are audited"


def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(desk: Desk, services):
    before = created(desk, ON_IT)
    cases = [
        ({"name": "", "body": "x"}, "name", "is required"),
        ({"name": "   ", "body": "x"}, "name", "is required"),
        ({"name": "A" * 121, "body": "x"}, "name", "at most 120 characters"),
        ({"name": "Fine", "body": "  "}, "body", "is required"),
        ({"name": "Fine", "body": "x" * 4001}, "body", "at most 4000 characters"),
        ({"name": "Fine", "body": "Dear {{requestor}},"}, "body", "unknown placeholder {{requestor}}"),
        ({"name": "Fine", "body": "x", "kind": "outage"}, "kind", "must be one of incident, change, problem, request"),
        ({"name": "we ARE on it", "body": "x"}, "name", "is taken"),
        ({"name": "Bidi \u202e", "body": "x"}, "name", "bidirectional control"),
        ({"name": "Fine", "body": "x", "shared": "yes"}, "shared", "Not a valid boolean"),
        ({"name": "Fine", "body": "x", "colour": "red"}, "colour", "Unknown field"),
    ]
    for body, field, words in cases:
        refused = assert_error(create(desk, body), 422, "validation_failed")
        fields = refused["details"].get("fields") or refused["details"].get("json") or {}
        assert field in fields, (body, refused)
        assert words in " ".join(map(str, fields[field])), (body, refused)
    # sharing is for process owners and admins: 403 naming the field
    refused = assert_error(create(desk, {"name": "Everyone's", "body": "x", "shared": True}), 403, "forbidden")
    assert refused["details"]["field"] == "shared"
    # an edit: the same rules, and a version of its own
    for body, field in [({"version": 1, "body": "{{nope}}"}, "body"), ({"version": 1, "kind": "x"}, "kind"),
                        ({"name": "x"}, "version"), ({"version": "1", "name": "x"}, "version")]:
        refused = assert_error(patch(desk, before["id"], body), 422, "validation_failed")
        fields = refused["details"].get("fields") or refused["details"].get("json") or {}
        assert field in fields, (body, refused)
    assert_error(desk.client.get(URL + "?kind=outage", headers=desk.auth("alex")), 422, "validation_failed")
    assert stored(services) == [(ON_IT["name"], ON_IT["body"], services.users.get_by_username("alex").id, 1)]


def test_an_edit_over_a_newer_version_is_refused_and_sharing_moves_a_template(desk: Desk, services):
    olga = services.users.get_by_username("olga").id
    row = created(desk, {"name": "Known issue", "body": "A known issue; see {{number}}."}, who="olga")
    first = patch(desk, row["id"], {"version": 1, "body": "A known issue, fixed soon; see {{number}}."}, who="olga")
    assert first.status_code == 200
    late = assert_error(patch(desk, row["id"], {"version": 1, "body": "Mine"}, who="olga"), 409, "conflict")
    assert late["details"]["current_version"] == 2
    assert stored(services) == [("Known issue", "A known issue, fixed soon; see {{number}}.", olga, 2)]

    # the process owner shares it with the desk: agents now see it, and it is no longer only hers
    shared = patch(desk, row["id"], {"version": 2, "shared": True}, who="olga")
    assert shared.status_code == 200 and shared.get_json()["shared"] is True
    assert listed(desk, "nina") == ["Known issue"]
    # a name is unique among the desk's templates, and among each person's own
    assert_error(create(desk, {"name": "known issue", "body": "x", "shared": True}, who="ada"), 422)
    assert created(desk, {"name": "Known issue", "body": "My own take."}, who="nina")["shared"] is False
    assert listed(desk, "nina") == ["Known issue", "Known issue"]
    # an agent may not share their own
    mine = created(desk, {"name": "Thanks", "body": "Thanks!"}, who="nina")
    assert_error(patch(desk, mine["id"], {"version": 1, "shared": True}, who="nina"), 403, "forbidden")
    assert desk.client.get(f"{URL}/{mine['id']}", headers=desk.auth("nina")).get_json()["shared"] is False


def test_a_template_for_another_kind_is_not_offered_and_values_are_filled_in_once(desk: Desk, services):
    number, _ = open_incident(desk, title="Broken {{agent}} {{number}}")
    created(desk, {"name": "Plan", "body": "Plan of {{number}}", "kind": "change"})
    created(desk, {"name": "Echo", "body": "About “{{title}}” ({{service}})"})
    answer = desk.client.get(f"/api/v1/tickets/{number}/response-templates", headers=desk.auth("alex")).get_json()
    service = desk.record(number).get("service") or ""
    assert [(t["name"], t["text"]) for t in answer["items"]] == [
        ("Echo", f"About “Broken {{{{agent}}}} {{{{number}}}}” ({service})")]
    # a value is filled in once: the title's braces are not read as placeholders, and no more is
    # filled in than a comment holds
    long_title, _ = open_incident(desk, title="{{title}}" * 20)
    [echo] = desk.client.get(f"/api/v1/tickets/{long_title}/response-templates", headers=desk.auth("alex")).get_json()["items"]
    assert echo["text"].count("{{title}}") == 20
    created(desk, {"name": "Titles", "body": "{{title}}" * 444})  # 3,996 characters, 444 titles of 180
    texts = {t["name"]: t["text"] for t in desk.client.get(
        f"/api/v1/tickets/{long_title}/response-templates", headers=desk.auth("alex")).get_json()["items"]}
    assert len(texts["Titles"]) == 20_000  # 79,920 filled in, cut where a comment ends


def test_the_desks_template_stays_the_desks_and_an_edit_that_changes_nothing_is_no_new_version(desk: Desk, services):
    row = created(desk, {"name": "Outage", "body": "We know; see the status page.", "shared": True}, who="olga")
    refused = assert_error(patch(desk, row["id"], {"version": 1, "shared": False}, who="ada"), 422, "validation_failed")
    assert refused["details"]["fields"]["shared"] == ["the desk's template stays the desk's: delete it instead"]
    assert listed(desk, "nina") == ["Outage"]
    same = patch(desk, row["id"], {"version": 1, "name": "Outage", "shared": True}, who="olga")
    assert same.status_code == 200 and same.get_json()["version"] == 1
    assert events(services, "response_template_updated") == []
    # who has no templates is told so before anything about the body
    assert_error(patch(desk, row["id"], {}, who="rita"), 403, "forbidden")


def test_a_name_taken_by_a_save_at_the_same_moment_is_refused_naming_the_name(desk: Desk, services, monkeypatch):
    from app.services.responses import ResponseService

    created(desk, {"name": "Twice", "body": "First."})
    # the check before the insert saw nothing (the other save had not committed): the index holds
    monkeypatch.setattr(ResponseService, "_taken", lambda *_args, **_kwargs: False)
    refused = assert_error(create(desk, {"name": "TWICE", "body": "Second."}), 422, "validation_failed")
    assert refused["details"]["fields"]["name"] == ["is taken: another template of the same owner has this name"]
    # the desk's and another person's may still be so named
    assert created(desk, {"name": "Twice", "body": "The desk's.", "shared": True}, who="olga")["shared"] is True
    assert created(desk, {"name": "twice", "body": "Nina's."}, who="nina")["name"] == "twice"
    assert [name for name, *_ in stored(services)] == ["Twice", "Twice", "twice"]
