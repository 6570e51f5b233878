"""Out of office through the API: a user away names a delegate, who takes the tasks assigned to the
user by name (those opening while away at once, those open already when the absence starts), is
told of them and does them; they come back when the absence ends (cleared, or its end passed,
by the sweep), and separation of duties and one vote each keep some with the user. Who may set
whose absence, and field-named 422s.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent, HumanTask
from app.services.away import KEPT_EXCLUDED, KEPT_ONE_VOTE, NOT_A_STAND_IN
from tests.http.desk import LAPTOP, Desk
from tests.http.helpers import assert_error, upload
from tests.http.test_e2e_change import APPROVE, ASSESS_HIGH, complete_id, raise_change, vote_ids

ROOT = Path(__file__).resolve().parents[2]
UNTIL = "2026-01-12T09:00:00Z"


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    made = Desk(client, services)
    # a second line manager, mona's stand-in
    services.users.create_user("lena", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.session.commit()
    return made


def away(desk: Desk, who: str, body: dict[str, Any], whose: str = "me", status: int = 200) -> dict[str, Any]:
    response = desk.client.put(f"/api/v1/users/{whose}/away", json=body, headers=desk.auth(who))
    assert response.status_code == status, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def order_laptop(desk: Desk, who: str = "rita") -> str:
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth(who), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["number"]  # type: ignore[no-any-return]


def approval(desk: Desk, number: str) -> dict[str, Any]:
    [task] = [t for t in desk.record(number)["open_tasks"] if t["bpmn_id"] == "approve_manager"]
    return task  # type: ignore[no-any-return]


def inbox(desk: Desk, who: str) -> list[int]:
    body = desk.client.get("/api/v1/tasks?mine=1&per_page=200", headers=desk.auth(who)).get_json()
    return [t["id"] for t in body["items"]]


def audited(services: Any, kind: str) -> list[dict[str, Any]]:
    services.session.expire_all()
    return [e.payload for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == kind).order_by(AuditEvent.seq))]


def subjects(desk: Desk, who: str) -> list[str]:
    return [n["subject"] for n in desk.notifications(who)]


def test_an_approval_opening_while_the_manager_is_away_goes_to_her_delegate(desk: Desk, services):
    absence = away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    assert {k: absence[k] for k in ("username", "away", "in_force", "from", "until")} == {
        "username": "mona", "away": True, "in_force": True, "from": "2026-01-05T09:00:00+00:00",
        "until": "2026-01-12T09:00:00+00:00"}
    assert absence["delegate"] == {"username": "lena", "display_name": "lena"}
    assert any("You stand in for mona" in s for s in subjects(desk, "lena"))
    mona_before = subjects(desk, "mona")
    number = order_laptop(desk)
    task = approval(desk, number)
    assert task["assigned_user"] == "lena"
    assert task["id"] in inbox(desk, "lena") and task["id"] not in inbox(desk, "mona")
    # lena hears of it as the approver would; mona hears nothing
    assert any(s.startswith("Approval needed") and number in s for s in subjects(desk, "lena"))
    assert subjects(desk, "mona") == mona_before
    # mona no longer sees it; lena does it, and the history says whose it was
    refused = desk.client.post(f"/api/v1/tasks/{task['id']}/complete", headers=desk.auth("mona"),
                               json={"data": {"approved": True, "approval_comment": "OK"}})
    assert_error(refused, 404)
    desk.complete(number, "approve_manager", "lena", {"approved": True, "approval_comment": "For mona."})
    assert [(e["from"], e["to"]) for e in audited(services, "task_delegated")] == [("mona", "lena")]
    assert away(desk, "mona", {"delegate": "lena", "until": UNTIL})["handed"] == []


def test_tasks_open_when_the_absence_starts_move_and_come_back_when_it_is_cleared(desk: Desk, services):
    number = order_laptop(desk)
    task = approval(desk, number)
    assert task["assigned_user"] == "mona"
    absence = away(desk, "ada", {"delegate": "lena", "until": UNTIL}, whose="mona")  # an admin sets it for her
    assert [t["id"] for t in absence["handed"]] == [task["id"]] and absence["kept"] == []
    assert approval(desk, number)["assigned_user"] == "lena"
    assert any(s.startswith("Handed to you") and number in s for s in subjects(desk, "lena"))
    # she is back early: the task is hers again, and she is told
    back = desk.client.delete("/api/v1/users/me/away", headers=desk.auth("mona"))
    assert back.status_code == 200 and back.get_json()["away"] is False
    assert approval(desk, number)["assigned_user"] == "mona"
    assert task["id"] in inbox(desk, "mona") and task["id"] not in inbox(desk, "lena")
    assert any("back with you" in s for s in subjects(desk, "mona"))
    assert [(e["from"], e["to"]) for e in audited(services, "task_returned")] == [("lena", "mona")]
    assert [e["username"] for e in audited(services, "user_away_cleared")] == ["mona"]
    # clearing nothing changes nothing
    assert desk.client.delete("/api/v1/users/me/away", headers=desk.auth("mona")).status_code == 200
    assert len(audited(services, "user_away_cleared")) == 1


def test_an_absence_to_come_starts_and_ends_with_the_sweep(desk: Desk, services, clock):
    number = order_laptop(desk)
    absence = away(desk, "mona", {"delegate": "lena", "from": "2026-01-06T08:00:00+01:00", "until": "2026-01-08T00:00:00Z"})
    assert (absence["in_force"], absence["from"], absence["handed"]) == (False, "2026-01-06T07:00:00+00:00", [])
    assert approval(desk, number)["assigned_user"] == "mona"
    clock.advance(timedelta(hours=23))  # Tuesday 08:00 UTC: it holds
    assert services.away.sweep() == 1
    assert approval(desk, number)["assigned_user"] == "lena"
    assert services.away.sweep() == 0  # nothing more to move
    clock.advance(timedelta(days=3))  # past its end
    assert services.away.sweep() == 1
    assert approval(desk, number)["assigned_user"] == "mona"
    ended = desk.client.get("/api/v1/users/mona/away", headers=desk.auth("aude")).get_json()
    assert (ended["away"], ended["delegate"]) == (False, None)
    assert [e["until"] for e in audited(services, "user_away_ended")] == ["2026-01-08T00:00:00Z"]


def test_a_task_the_delegate_may_not_do_stays_with_the_user(desk: Desk, services):
    # rhea requests and is also a line manager: the approval of her own request is not hers to give
    services.users.create_user("rhea", "password-1234", roles=["approver", "requester"], groups=["LineManagers"])
    services.users.set_manager("rhea", "mona")
    services.session.commit()
    number = order_laptop(desk, "rhea")
    absence = away(desk, "mona", {"delegate": "rhea", "until": UNTIL})
    task = approval(desk, number)
    assert task["assigned_user"] == "mona"
    assert [(t["id"], t["reason"]) for t in absence["kept"]] == [(task["id"], KEPT_EXCLUDED)]
    assert services.away.sweep() == 0


def test_a_cab_member_away_votes_through_a_delegate_who_has_no_vote_of_the_round(desk: Desk, services):
    services.users.create_user("vera", "password-1234", roles=["approver"], groups=[])  # not on the CAB
    services.session.commit()
    away(desk, "cab1", {"delegate": "cab2", "until": UNTIL})  # cab2 has a vote of her own: one each
    away(desk, "cab3", {"delegate": "vera", "until": UNTIL})
    number, instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    votes = {t["id"]: t["assigned_user"] for t in desk.record(number)["open_tasks"] if t["bpmn_id"] == "cab_vote"}
    assert sorted(votes.values()) == ["cab1", "cab2", "vera"]
    found = vote_ids(desk, number)
    assert set(found) == {"cab1", "cab2"}
    [handed] = [task_id for task_id, who in votes.items() if who == "vera"]
    assert handed in inbox(desk, "vera")
    for task_id, who in ((found["cab1"], "cab1"), (found["cab2"], "cab2"), (handed, "vera")):
        assert complete_id(desk, task_id, who, APPROVE).status_code == 200
    cast = desk.instance(instance_id, "ada")["data"]["votes"]
    assert sorted((v["approver"], v.get("for")) for v in cast) == [("cab1", None), ("cab2", None), ("vera", "cab3")]


def test_who_may_set_whose_absence(desk: Desk):
    body = {"delegate": "lena", "until": UNTIL}
    assert_error(desk.client.put("/api/v1/users/mona/away", json=body, headers=desk.auth("rita")), 403)
    assert_error(desk.client.get("/api/v1/users/mona/away", headers=desk.auth("rita")), 403)
    assert_error(desk.client.put("/api/v1/users/mona/away", json=body, headers=desk.auth("aude")), 403)
    assert desk.client.get("/api/v1/users/mona/away", headers=desk.auth("aude")).get_json()["away"] is False
    assert away(desk, "mona", body, whose="MONA")["away"] is True  # her own name, any case
    assert_error(desk.client.delete("/api/v1/users/mona/away", headers=desk.auth("lena")), 403)
    assert_error(desk.client.put("/api/v1/users/ghost/away", json=body, headers=desk.auth("ada")), 404)


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"delegate": "ghost", "until": UNTIL}, "delegate", NOT_A_STAND_IN),
    ({"delegate": "mona", "until": UNTIL}, "delegate", "someone else"),
    ({"delegate": "aude", "until": UNTIL}, "delegate", NOT_A_STAND_IN),
    ({"delegate": "rita", "until": UNTIL}, "delegate", NOT_A_STAND_IN),
    ({"delegate": "", "until": UNTIL}, "delegate", ""),
    ({"delegate": "lena"}, "until", ""),
    ({"delegate": "lena", "until": "2026-01-12T09:00:00"}, "until", ""),
    ({"delegate": "lena", "until": "2026-01-05T08:00:00Z"}, "until", "past"),
    ({"delegate": "lena", "from": "2026-01-10T00:00:00Z", "until": "2026-01-09T00:00:00Z"}, "until", "after the start"),
    ({"delegate": "lena", "until": "2027-02-01T00:00:00Z"}, "until", "366 days"),
    ({"delegate": "lena", "from": "2026-01-01T00:00:00Z", "until": "2027-01-06T09:00:01Z"}, "until", "366 days"),
    ({"delegate": "lena", "until": UNTIL, "note": "x"}, "note", ""),
])
def test_a_bad_absence_is_refused_naming_the_field_and_nothing_changes(desk: Desk, services, body, field, words):
    number = order_laptop(desk)
    response = desk.client.put("/api/v1/users/me/away", json=body, headers=desk.auth("mona"))
    error = assert_error(response, 422)
    fields = error["details"].get("fields") or error["details"].get("json") or error["details"]
    assert field in fields, error
    assert words in str(fields[field]), error
    assert desk.client.get("/api/v1/users/me/away", headers=desk.auth("mona")).get_json()["away"] is False
    assert approval(desk, number)["assigned_user"] == "mona"
    services.session.expire_all()
    assert services.session.scalar(select(HumanTask.delegated_from).where(HumanTask.bpmn_id == "approve_manager")) is None


def test_a_deactivated_delegate_gives_the_tasks_back(desk: Desk, services):
    number = order_laptop(desk)
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    assert approval(desk, number)["assigned_user"] == "lena"
    assert desk.client.post("/api/v1/users/lena/deactivate", headers=desk.auth("ada")).status_code == 200
    assert services.away.sweep() == 1
    assert approval(desk, number)["assigned_user"] == "mona"
    assert desk.client.get("/api/v1/users/me/away", headers=desk.auth("mona")).get_json()["in_force"] is False


def test_a_new_delegate_takes_over_what_the_old_one_had(desk: Desk, services):
    number = order_laptop(desk)
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    services.users.create_user("leo", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.session.commit()
    before = subjects(desk, "mona")
    absence = away(desk, "mona", {"delegate": "leo", "until": UNTIL})
    assert absence["delegate"]["username"] == "leo" and len(absence["handed"]) == 1
    assert approval(desk, number)["assigned_user"] == "leo"
    assert subjects(desk, "mona") == before  # nothing came back to her
    trail = [(e["from"], e["to"]) for kind in ("task_delegated", "task_returned") for e in audited(services, kind)]
    assert sorted(trail) == [("lena", "mona"), ("mona", "lena"), ("mona", "leo")]
    changed = audited(services, "user_away_set")[-1]
    assert (changed["delegate"], changed["before"]["delegate"]) == ("leo", "lena")


def test_a_handed_task_stays_with_the_delegate_when_its_instance_moves_to_a_new_version(desk: Desk):
    number = order_laptop(desk)
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    xml = (ROOT / "processes" / "catalog_request.bpmn").read_text(encoding="utf-8")
    changed = xml.replace('name="Approve as line manager"', 'name="Approve as manager"')
    assert changed != xml
    deployed = upload(desk.client, desk.auth("olga"), [("catalog_request.bpmn", changed.encode())])
    assert deployed.status_code == 201, deployed.get_json()
    instance_id = desk.record(number)["instance_id"]
    moved = desk.client.post(f"/api/v1/instances/{instance_id}/migrate", headers=desk.auth("olga"), json={})
    assert moved.status_code == 200, moved.get_json()
    task = approval(desk, number)
    assert (task["name"], task["assigned_user"], task["delegated_from"]) == ("Approve as manager", "lena", "mona")


@pytest.mark.parametrize(("delegate", "words"), [
    ("ghost", "no user ghost"), ("aude", "does not work on them"), ("rita", "does not hold the role approver"),
])
def test_an_admin_is_told_which_rule_refuses_a_delegate(desk: Desk, delegate, words):
    response = desk.client.put("/api/v1/users/mona/away", json={"delegate": delegate, "until": UNTIL},
                               headers=desk.auth("ada"))
    [reason] = assert_error(response, 422)["details"]["fields"]["delegate"]
    assert words in reason


def test_anyone_else_reads_one_reason_for_every_name_that_cannot_stand_in(desk: Desk, services):
    services.users.create_user("gone", "password-1234", roles=["approver"], groups=[])
    services.users.deactivate_user(None, "gone")
    services.session.commit()
    reasons = set()
    for name in ("ghost", "gone", "aude", "rita"):
        response = desk.client.put("/api/v1/users/me/away", json={"delegate": name, "until": UNTIL},
                                   headers=desk.auth("mona"))
        reasons.update(assert_error(response, 422)["details"]["fields"]["delegate"])
    assert reasons == {NOT_A_STAND_IN}


def test_a_start_typed_in_the_past_holds_from_now_and_its_length_counts_from_now(desk: Desk):
    absence = away(desk, "mona", {"delegate": "lena", "from": "2025-01-01T00:00:00Z", "until": "2026-01-10T00:00:00Z"})
    assert (absence["from"], absence["in_force"]) == ("2026-01-05T09:00:00+00:00", True)


# -- one vote each, the sweep's reach, and what an admin decided (review of out of office) --------

def votes_of(desk: Desk, number: str) -> dict[int, str]:
    return {t["id"]: t["assigned_user"] for t in desk.record(number)["open_tasks"] if t["bpmn_id"] == "cab_vote"}


def test_a_member_whose_own_vote_is_with_her_delegate_is_handed_no_second_one(desk: Desk, services):
    """cab1 is away (vera stands in: her vote goes to vera); cab2 going away names cab1, whose own
    vote comes back to her when she is back: cab2's vote stays with cab2, and nobody votes twice."""
    services.users.create_user("vera", "password-1234", roles=["approver"], groups=[])
    services.session.commit()
    number, _instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    away(desk, "cab1", {"delegate": "vera", "until": UNTIL})
    absence = away(desk, "cab2", {"delegate": "cab1", "until": UNTIL})
    assert [t["reason"] for t in absence["kept"]] == [KEPT_ONE_VOTE]
    assert desk.client.delete("/api/v1/users/me/away", headers=desk.auth("cab1")).status_code == 200
    assert sorted(votes_of(desk, number).values()) == ["cab1", "cab2", "cab3"]


def test_one_vote_each_holds_with_a_clock_that_moves_between_the_rows_of_a_round(desk: Desk, clock, monkeypatch):
    """In production the clock moves while a round's rows are made: they open at one instant, so the
    round still holds the delegate's own vote opened a microsecond earlier."""
    monkeypatch.setattr(clock, "now", lambda: clock.advance(timedelta(microseconds=1)))
    number, _instance_id = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    votes = votes_of(desk, number)
    first, last = votes[min(votes)], votes[max(votes)]
    away(desk, last, {"delegate": first, "until": UNTIL})
    assert sorted(votes_of(desk, number).values()) == ["cab1", "cab2", "cab3"]


def test_more_absences_in_force_than_a_batch_starve_nobody(desk: Desk, services, clock):
    services.users.set_manager("rita", "lena")  # the line manager with the highest id
    services.session.commit()
    number = order_laptop(desk)
    assert approval(desk, number)["assigned_user"] == "lena"
    away(desk, "cab1", {"delegate": "cab2", "until": UNTIL})
    away(desk, "cab3", {"delegate": "cab2", "until": UNTIL})
    away(desk, "lena", {"delegate": "mona", "from": "2026-01-06T00:00:00Z", "until": UNTIL})
    clock.advance(timedelta(days=1))
    assert services.away.sweep(limit=1) == 1
    assert approval(desk, number)["assigned_user"] == "mona"


def test_an_admins_reassignment_of_a_handed_task_is_not_undone_when_the_absence_ends(desk: Desk, services):
    services.users.create_user("leo", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.session.commit()
    number = order_laptop(desk)
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    task = approval(desk, number)
    assert desk.client.post("/api/v1/users/lena/deactivate", headers=desk.auth("ada")).status_code == 200
    moved = desk.client.post(f"/api/v1/tasks/{task['id']}/reassign", headers=desk.auth("ada"), json={"username": "leo"})
    assert moved.status_code == 200, moved.get_json()
    assert services.away.sweep() == 0
    assert (approval(desk, number)["assigned_user"], approval(desk, number)["delegated_from"]) == ("leo", None)
    [reassigned] = audited(services, "task_reassigned")
    assert reassigned["delegated_from"] == "mona"


@pytest.mark.parametrize("roles", [["auditor"], ["requester"]])
def test_a_delegate_who_lost_the_roles_since_stands_in_no_more(desk: Desk, services, roles):
    number = order_laptop(desk)
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    assert approval(desk, number)["assigned_user"] == "lena"
    services.users.update_user(None, "lena", {"roles": roles})
    services.session.commit()
    assert services.away.sweep() == 1  # what she had comes back
    later = order_laptop(desk)  # and what opens now stays with mona
    assert approval(desk, number)["assigned_user"] == approval(desk, later)["assigned_user"] == "mona"
    assert services.away.sweep() == 0
    assert desk.client.get("/api/v1/users/me/away", headers=desk.auth("mona")).get_json()["in_force"] is False


def test_a_leavers_tasks_stay_with_the_delegate(desk: Desk, services, clock):
    number = order_laptop(desk)
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    assert desk.client.post("/api/v1/users/mona/deactivate", headers=desk.auth("ada")).status_code == 200
    clock.advance(timedelta(days=8))
    services.away.sweep()
    task = approval(desk, number)
    assert (task["assigned_user"], task["delegated_from"]) == ("lena", None)
    assert [e["kept_by_delegate"] for e in audited(services, "task_returned")] == [True]


def test_no_chains_a_delegate_away_too_keeps_what_was_handed(desk: Desk, services):
    services.users.create_user("leo", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.session.commit()
    away(desk, "lena", {"delegate": "leo", "until": UNTIL})
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    number = order_laptop(desk)
    services.away.sweep()
    assert approval(desk, number)["assigned_user"] == "lena"


def test_a_vote_the_delegate_cast_keeps_the_next_with_its_member(desk: Desk):
    number, _ = raise_change(desk)
    desk.complete(number, "assess", "cora", ASSESS_HIGH)
    [own] = [task_id for task_id, who in votes_of(desk, number).items() if who == "cab2"]
    assert complete_id(desk, own, "cab2", APPROVE).status_code == 200
    absence = away(desk, "cab1", {"delegate": "cab2", "until": UNTIL})
    assert [t["reason"] for t in absence["kept"]] == [KEPT_ONE_VOTE]


def test_the_user_directory_says_who_is_out_of_office_and_finds_them(desk: Desk, clock):
    away(desk, "mona", {"delegate": "lena", "until": UNTIL})
    away(desk, "cab1", {"delegate": "cab2", "from": "2026-01-08T00:00:00Z", "until": UNTIL})  # to come
    found = desk.client.get("/api/v1/users?away=true", headers=desk.auth("aude")).get_json()
    assert [u["username"] for u in found["items"]] == ["mona"]
    assert found["items"][0]["away"] == {"from": "2026-01-05T09:00:00+00:00", "until": "2026-01-12T09:00:00+00:00",
                                         "delegate": "lena"}
    others = desk.client.get("/api/v1/users?away=false&per_page=100", headers=desk.auth("ada")).get_json()
    names = [u["username"] for u in others["items"]]
    assert "mona" not in names and "cab1" in names and "rita" in names
    [cab1] = [u for u in others["items"] if u["username"] == "cab1"]
    assert cab1["away"]["from"] == "2026-01-08T00:00:00+00:00"  # set, not yet holding
    assert [u for u in others["items"] if u["username"] == "rita"][0]["away"] is None
    clock.advance(timedelta(days=3))
    found = desk.client.get("/api/v1/users?away=1", headers=desk.auth("ada")).get_json()
    assert [u["username"] for u in found["items"]] == ["cab1", "mona"]
    assert desk.client.get("/api/v1/users/me", headers=desk.auth("mona")).get_json()["away"]["delegate"] == "lena"
