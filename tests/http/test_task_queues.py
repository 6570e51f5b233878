"""The two inbox lists through the API (and the tab counts of the web inbox, from the same service):

- "Mine" (``mine=1``): the tasks I claimed, and the unclaimed ones assigned to me personally;
- the group queue: the unclaimed tasks I may pick up: my groups' (candidate group, else lane) and
  those assigned to me personally, never a task assigned to someone else of my group.

An unclaimed task assigned to me is on both lists; a claimed one only in its claimant's Mine.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.http.desk import LAPTOP, Desk
from tests.http.helpers import assert_error
from tests.web.conftest import WebClient

INCIDENT = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
            "impact": "medium", "urgency": "medium", "service": "VPN"}


@pytest.fixture()
def desk(client, services) -> Desk:
    desk = Desk(client, services)
    # a second line manager and a second service desk agent: members of the same groups
    services.users.create_user("lena", "password-1234", roles=["approver"], groups=["LineManagers"])
    services.users.create_user("sam", "password-1234", roles=["agent"], groups=["ServiceDesk"])
    services.session.commit()
    return desk


def listed(desk: Desk, who: str, *, mine: bool) -> list[int]:
    """The ids on one of ``who``'s lists, checking that its total counts exactly them."""
    body = desk.client.get(f"/api/v1/tasks?per_page=200{'&mine=1' if mine else ''}", headers=desk.auth(who)).get_json()
    ids = [t["id"] for t in body["items"]]
    assert body["total"] == len(ids), body
    return ids


def order_laptop(desk: Desk) -> tuple[str, int]:
    """rita orders a laptop: its approval is assigned to her line manager, mona (lane LineManagers)."""
    response = desk.client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"), json={"data": LAPTOP})
    assert response.status_code == 201, response.get_json()
    number = response.get_json()["number"]
    return number, desk.task_id(number, "approve_manager")


def test_a_task_assigned_to_one_person_is_in_their_mine_and_in_nobody_elses_queue(desk: Desk):
    _number, approval = order_laptop(desk)
    # mona finds it waiting for her before she claims it, on both of her lists
    assert listed(desk, "mona", mine=True) == [approval]
    task = desk.client.get(f"/api/v1/tasks/{approval}", headers=desk.auth("mona")).get_json()
    assert task["assigned_user"] == "mona" and task["claimed_by"] is None
    assert listed(desk, "mona", mine=False) == [approval]
    # lena is a line manager too, but the approval is mona's: on neither of her lists, nor hers to take
    assert listed(desk, "lena", mine=True) == [] and listed(desk, "lena", mine=False) == []
    assert_error(desk.client.post(f"/api/v1/tasks/{approval}/claim", headers=desk.auth("lena")), 404)
    # the requester does not see it either
    assert approval not in listed(desk, "rita", mine=False) + listed(desk, "rita", mine=True)

    # claimed, it leaves the queue and stays in mona's Mine
    assert desk.client.post(f"/api/v1/tasks/{approval}/claim", headers=desk.auth("mona")).status_code == 200
    assert listed(desk, "mona", mine=True) == [approval]
    assert listed(desk, "mona", mine=False) == []


def test_a_claimed_group_task_leaves_the_queue_of_every_member_until_released(desk: Desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage")
    assert listed(desk, "alex", mine=False) == [triage] and listed(desk, "sam", mine=False) == [triage]
    assert listed(desk, "alex", mine=True) == []  # a group task is no one's until claimed

    assert desk.client.post(f"/api/v1/tasks/{triage}/claim", headers=desk.auth("alex")).status_code == 200
    assert listed(desk, "alex", mine=True) == [triage]
    assert listed(desk, "alex", mine=False) == [] and listed(desk, "sam", mine=False) == []
    assert listed(desk, "sam", mine=True) == []

    assert desk.client.post(f"/api/v1/tasks/{triage}/unclaim", headers=desk.auth("alex")).status_code == 200
    assert listed(desk, "alex", mine=True) == []
    assert listed(desk, "alex", mine=False) == [triage] and listed(desk, "sam", mine=False) == [triage]


def test_a_task_an_admin_hands_to_someone_is_in_their_mine_only(desk: Desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    triage = desk.task_id(number, "triage")
    moved = desk.client.post(f"/api/v1/tasks/{triage}/reassign", headers=desk.auth("ada"), json={"username": "sam"})
    assert moved.status_code == 200, moved.get_json()
    assert listed(desk, "sam", mine=True) == [triage]
    assert listed(desk, "sam", mine=False) == [] and listed(desk, "alex", mine=False) == []


def test_the_lists_filter_by_process(desk: Desk):
    _number, approval = order_laptop(desk)
    query = "/api/v1/tasks?mine=1&process_id="
    assert [t["id"] for t in desk.client.get(query + "catalog_request", headers=desk.auth("mona")).get_json()["items"]] == [approval]
    assert desk.client.get(query + "incident_management", headers=desk.auth("mona")).get_json()["total"] == 0


def test_the_inbox_tabs_and_home_count_what_the_lists_show(desk: Desk, app: Any):
    """The pages' group queue leaves out what waits on the user by name: mona's approval is under
    Mine only (it used to be counted twice, once under a group queue), though the API's list of
    everything she may pick up still holds it."""
    _number, approval = order_laptop(desk)
    assert listed(desk, "mona", mine=False) == [approval]
    for who, expected in {"mona": {"mine": 1, "queue": 0}, "lena": {"mine": 0, "queue": 0}}.items():
        web = WebClient(app.test_client())
        web.login(who)
        for tab in ("mine", "queue"):
            page = web.get(f"/tasks?tab={tab}").get_data(as_text=True)
            badges = dict(re.findall(r'id="tab-(\w+)"[^>]*>[^<]*<span class="badge">(\d+)</span>', page))
            assert badges == {name: str(count) for name, count in expected.items()}, (who, tab, badges)
            assert page.count(f'<a href="/tasks/{approval}">') == expected[tab], (who, tab)
        home = web.get("/").get_data(as_text=True)
        assert re.search(rf'id="count-my-tasks">\s*<span class="count">{expected["mine"]}</span>', home), who
        assert re.search(rf'id="count-queue">\s*<span class="count">{expected["queue"]}</span>', home), who
