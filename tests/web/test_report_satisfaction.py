"""Requester satisfaction: an incident's requester may rate the service (1-5) when she confirms the
resolution; the rating is the record's (``details.rating``, the latest round's), and the reports
count the ratings of the records closed in the period (API, CSV, page)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from app.models import Ticket
from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.http.test_e2e_catalog import confirm, fulfil, order
from tests.http.test_reopen_comment import resolve, resolved_incident
from tests.web.conftest import INCIDENT


@pytest.fixture()
def desk(client, services) -> Desk:
    return Desk(client, services)


def report(desk: Desk, query: str = "") -> dict:
    response = desk.client.get(f"/api/v1/reports/summary{query}", headers=desk.auth("alex"))
    assert response.status_code == 200, response.get_json()
    return {row["kind"]: row for row in response.get_json()["satisfaction"]}


def test_ratings_reach_the_record_and_the_report(desk: Desk, services):
    happy, unhappy, silent = (resolved_incident(desk) for _ in range(3))
    desk.complete(happy, "confirm_resolution", "rita", {"confirmed": True, "rating": 5})
    desk.complete(unhappy, "confirm_resolution", "rita", {"confirmed": True, "rating": 2, "comment": "Took a week"})
    desk.complete(silent, "confirm_resolution", "rita", {"confirmed": True})
    assert [desk.record(n)["details"].get("rating") for n in (happy, unhappy, silent)] == [5, 2, None]
    assert all(desk.record(n)["status"] == "closed" for n in (happy, unhappy, silent))

    incidents = report(desk)["incident"]
    assert (incidents["closed"], incidents["rated"], incidents["response_rate"]) == (3, 2, 66.7)
    assert (incidents["mean"], incidents["satisfied"]) == (3.5, 50.0)
    assert incidents["scores"] == [{"score": s, "count": int(s in (2, 5))} for s in (1, 2, 3, 4, 5)]
    assert report(desk, "?kind=change") == {}  # changes ask for no rating
    assert set(report(desk, "?kind=request")) == {"request"}


def test_a_reopened_incident_counts_with_its_latest_rating(desk: Desk):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": False, "rating": 1, "comment": "still broken"})
    assert desk.record(number)["details"]["rating"] == 1
    resolve(desk, number)
    assert desk.record(number)["details"].get("rating") is None  # a new round asks again
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "rating": 4})
    assert desk.record(number)["details"]["rating"] == 4
    incidents = report(desk)["incident"]
    assert (incidents["rated"], incidents["mean"], incidents["satisfied"]) == (1, 4.0, 100.0)


@pytest.mark.parametrize("rating", [0, 6, "5", 4.5, True])
def test_a_rating_outside_1_to_5_is_refused_naming_the_field(desk: Desk, rating):
    number = resolved_incident(desk)
    task = desk.task_id(number, "confirm_resolution")
    response = desk.client.post(f"/api/v1/tasks/{task}/complete", headers=desk.auth("rita"),
                                json={"data": {"confirmed": True, "rating": rating}})
    body = assert_error(response, 422)
    assert "rating" in body["details"]["fields"], body
    assert desk.record(number)["status"] == "resolved"


def test_an_odd_stored_rating_counts_as_not_rated_and_the_report_still_answers(desk: Desk, services):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "rating": 3})
    other = resolved_incident(desk)
    desk.complete(other, "confirm_resolution", "rita", {"confirmed": True})
    ticket = services.session.scalar(select(Ticket).where(Ticket.number == other))
    ticket.details = {**ticket.details, "rating": "great"}  # what another process might have stored
    services.session.commit()
    incidents = report(desk)["incident"]
    assert (incidents["closed"], incidents["rated"], incidents["mean"]) == (2, 1, 3.0)


def test_the_page_and_the_csv_show_the_ratings(desk: Desk, web):
    number = resolved_incident(desk)
    desk.complete(number, "confirm_resolution", "rita", {"confirmed": True, "rating": 4})
    web.login("alex")
    page = web.get("/reports").get_data(as_text=True)
    assert 'id="report-satisfaction"' in page and "Requester satisfaction" in page
    row = page[page.index('id="report-satisfaction"'):]
    assert '<td class="num" data-label="Satisfied">100.0%</td>' in row
    exported = web.get("/reports.csv").get_data(as_text=True)  # the default period, as the page's
    rows = [r for r in csv.reader(io.StringIO(exported)) if r and r[0] == "satisfaction"]
    assert ["satisfaction", "incident", "", "mean", "4.0"] in rows
    assert ["satisfaction", "incident", "4", "rated", "1"] in rows
    web.post("/language", {"lang": "zh_CN"})
    assert "请求人满意度" in web.get("/reports").get_data(as_text=True)


def test_records_closed_without_being_asked_for_a_rating_leave_the_response_rate_alone(desk: Desk):
    """A withdrawn incident and a rejected request are closed too, but their requesters were never
    asked to rate: counted among the closed, they lowered the response rate (1 of 3 rated read 33 %)."""
    rated = resolved_incident(desk)
    desk.complete(rated, "confirm_resolution", "rita", {"confirmed": True, "rating": 4})
    withdrawn = desk.start("rita", "incident_management", INCIDENT)
    cancelled = desk.client.post(f"/api/v1/instances/{withdrawn['id']}/cancel", headers=desk.auth("rita"), json={})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert desk.record(withdrawn["data"]["record_number"])["status"] == "cancelled"
    asked = order(desk, "NET-VPN")["number"]
    desk.complete(asked, "approve_manager", "mona", {"approved": True})
    fulfil(desk, asked, "nina")
    confirm(desk, asked, rating=5)
    refused = order(desk, "NET-VPN")["number"]
    desk.complete(refused, "approve_manager", "mona", {"approved": False, "approval_comment": "Not needed."})
    assert desk.record(refused)["status"] == "rejected"

    rows = report(desk)
    assert (rows["incident"]["closed"], rows["incident"]["rated"], rows["incident"]["response_rate"]) == (1, 1, 100.0)
    assert (rows["request"]["closed"], rows["request"]["rated"], rows["request"]["response_rate"]) == (1, 1, 100.0)
