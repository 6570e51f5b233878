"""A create form sent twice (a double click) creates one record: the start, catalog request and
comment forms carry a one-time token (app/services/submissions.py). So does a task's form: sent
twice, the task is done once and the second send says so instead of "could not be completed"."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app import create_app
from app.models import AuditEvent, SubmissionToken, Ticket, TicketComment
from app.services.submissions import SubmissionService
from tests.conftest import TEST_CONFIG
from tests.http.desk import Desk
from tests.web.conftest import INCIDENT, WebClient, text_of

LAPTOP = {"justification": "My laptop of 2019 no longer holds a charge", "replacement": "false",
          "keyboard_layout": "UK", "delivery_location": "Building B, floor 2"}
TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam"}
START = "/start/incident_management"


def incident_form() -> dict[str, str]:
    return {key: INCIDENT[key] for key in ("title", "description", "category", "impact", "urgency", "service", "ci")}


def submission_token(page: str) -> str:
    """The one-time token rendered into the page's create form."""
    match = re.search(r'<input type="hidden" name="submission_token" value="([^"]+)">', page)
    assert match, "the form has no submission token"
    return match.group(1)


def records_of(services: Any, username: str) -> list[Any]:
    user = services.users.get_by_username(username)
    rows, _total = services.records.list_tickets(user, {"requester": username}, "-opened_at", 1, 50)
    return rows


def comments_on(services: Any, number: str) -> list[str]:
    services.session.expire_all()
    return [c.body for c in services.records.comments(services.users.get_by_username("aude"), number)]


def triaged_incident(desk: Desk) -> str:
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", TRIAGE)
    return str(number)


# -- the start form -----------------------------------------------------------------------------------


def test_a_start_form_sent_twice_creates_one_incident_and_both_land_on_it(web, desk, services):
    web.login("rita")
    token = submission_token(text_of(web.get(START)))
    before = len(records_of(services, "rita"))
    first = web.post(START, {**incident_form(), "submission_token": token})
    assert first.status_code == 302 and re.fullmatch(r"/tickets/INC-\d+", first.headers["Location"])
    second = web.post(START, {**incident_form(), "submission_token": token})
    assert second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]
    assert len(records_of(services, "rita")) == before + 1
    number = first.headers["Location"].rsplit("/", 1)[1]
    page = text_of(web.get(second.headers["Location"]))
    assert f"This form was already sent: {number} was created then." in page


def test_each_rendering_of_the_form_has_its_own_token_and_creates_its_own_record(web, desk, services):
    web.login("rita")
    one, two = (submission_token(text_of(web.get(START))) for _ in range(2))
    assert one != two
    first = web.post(START, {**incident_form(), "submission_token": one})
    second = web.post(START, {**incident_form(), "submission_token": two})
    assert first.headers["Location"] != second.headers["Location"]
    assert len(records_of(services, "rita")) == 2


def test_a_form_refused_for_its_errors_can_be_sent_again_with_the_same_token(web, desk, services):
    web.login("rita")
    token = submission_token(text_of(web.get(START)))
    refused = web.post(START, {**incident_form(), "title": " ", "submission_token": token})
    assert refused.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    refused = web.get(refused.headers["Location"])
    assert records_of(services, "rita") == []
    # the form comes back with a fresh token; the refused one was not kept either
    assert submission_token(text_of(refused)) != token
    sent = web.post(START, {**incident_form(), "submission_token": token})
    assert sent.status_code == 302 and len(records_of(services, "rita")) == 1


def test_without_a_token_the_form_works_as_before_unprotected(web, desk, services):
    web.login("rita")
    for _ in range(2):
        response = web.post(START, incident_form())
        assert response.status_code == 302 and response.headers["Location"].startswith("/tickets/INC-")
    # a malformed token counts as none: no error either
    assert web.post(START, {**incident_form(), "submission_token": "x y"}).status_code == 302
    assert len(records_of(services, "rita")) == 3


def test_a_token_is_the_users_own(web, web_factory, desk, services):
    web.login("rita")
    token = submission_token(text_of(web.get(START)))
    assert web.post(START, {**incident_form(), "submission_token": token}).status_code == 302
    alex = web_factory()
    alex.login("alex")
    theirs = alex.post(START, {**incident_form(), "title": "Printer jam", "submission_token": token})
    assert theirs.status_code == 302
    assert [t.title for t in records_of(services, "alex")] == ["Printer jam"]
    assert len(records_of(services, "rita")) == 1


# -- the catalog request form -------------------------------------------------------------------------


def test_a_catalog_request_sent_twice_orders_once(web, desk, services):
    web.login("rita")
    token = submission_token(text_of(web.get("/catalog/HW-LAPTOP")))
    first = web.post("/catalog/HW-LAPTOP", {**LAPTOP, "submission_token": token})
    second = web.post("/catalog/HW-LAPTOP", {**LAPTOP, "submission_token": token})
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]
    [ticket] = records_of(services, "rita")
    assert first.headers["Location"] == f"/tickets/{ticket.number}"
    assert f"This form was already sent: {ticket.number} was created then." in text_of(web.get(f"/tickets/{ticket.number}"))


# -- the comment form ---------------------------------------------------------------------------------


def test_a_comment_sent_twice_is_added_once(web, desk, services):
    number = triaged_incident(desk)
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    token = submission_token(page[page.index('id="comments"'):])
    form = {"body": "Rebooted the gateway", "submission_token": token}
    first = web.post(f"/tickets/{number}/comments", form)
    second = web.post(f"/tickets/{number}/comments", form)
    assert first.status_code == second.status_code == 302
    assert re.fullmatch(rf"/tickets/{number}#comment-\d+", first.headers["Location"])
    assert second.headers["Location"] == first.headers["Location"]
    assert comments_on(services, number).count("Rebooted the gateway") == 1
    assert "This comment was already added." in text_of(web.get(f"/tickets/{number}"))
    # without a token, as before: each post adds one
    web.post(f"/tickets/{number}/comments", {"body": "Checked again"})
    web.post(f"/tickets/{number}/comments", {"body": "Checked again"})
    assert comments_on(services, number).count("Checked again") == 2


def test_the_create_forms_disable_their_button_once_sent_by_a_script_of_the_site(web, desk):
    number = triaged_incident(desk)
    web.login("alex")
    for url in (START, "/catalog/HW-LAPTOP", f"/tickets/{number}"):
        page = text_of(web.get(url))
        assert re.search(r"<form [^>]*data-submit-once[^>]*>", page), url
        script = re.search(r'<script src="([^"]+/js/submit-once\.js)" defer></script>', page)
        assert script, url
    served = web.get(script.group(1))
    assert served.status_code == 200 and b"data-submit-once" in served.data


# -- a task's form ------------------------------------------------------------------------------------


def test_a_task_form_sent_twice_completes_the_task_once_and_both_end_in_the_inbox(web, desk, services):
    """A double click, or the browser's back button and Submit again: the second send found the
    task done and said "The task could not be completed: task is completed", as if the work had
    been lost."""
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    web.login("alex")
    url = f"/tasks/{task_id}"
    token = submission_token(text_of(web.get(url)))
    first = web.post(url, {**TRIAGE, "submission_token": token})
    assert first.status_code == 302 and first.headers["Location"] == "/tasks"
    assert "Done: “Triage incident”." in text_of(web.get("/tasks"))
    second = web.post(url, {**TRIAGE, "submission_token": token})
    assert second.status_code == 302 and second.headers["Location"] == "/tasks"
    page = text_of(web.get("/tasks"))
    assert "could not be completed" not in page and "This form was already sent." in page
    completed = services.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event_type == "task_completed", AuditEvent.task_id == task_id))
    assert completed == 1


def test_a_task_form_refused_for_its_errors_keeps_its_token_for_the_corrected_send(web, desk, services):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    web.login("alex")
    url = f"/tasks/{task_id}"
    token = submission_token(text_of(web.get(url)))
    refused = web.post(url, {**TRIAGE, "priority": "P9", "submission_token": token})
    assert refused.status_code == 303 and refused.headers["Location"] == url
    shown = text_of(web.get(url))  # the refused form, shown once, with the token it was sent with
    assert submission_token(shown) == token
    done = web.post(url, {**TRIAGE, "submission_token": submission_token(shown)})
    assert done.status_code == 302 and done.headers["Location"] == "/tasks"
    assert desk.record(number)["status"] == "in_progress"


# -- expiry -------------------------------------------------------------------------------------------


def test_tokens_older_than_a_day_are_pruned_as_new_ones_are_written(web, web_factory, desk, services, clock):
    web.login("rita")
    old = submission_token(text_of(web.get(START)))
    assert web.post(START, {**incident_form(), "submission_token": old}).status_code == 302
    clock.advance(timedelta(hours=25))
    web = web_factory()  # the frozen clock moved past the session's timeouts: sign in again
    web.login("rita")
    fresh = submission_token(text_of(web.get(START)))
    assert web.post(START, {**incident_form(), "submission_token": fresh}).status_code == 302
    services.session.expire_all()
    assert list(services.session.scalars(select(SubmissionToken.token))) == [fresh]
    # a token that old is forgotten: sent again, its form creates again
    assert web.post(START, {**incident_form(), "submission_token": old}).status_code == 302
    assert len(records_of(services, "rita")) == 3


# -- concurrent submissions ---------------------------------------------------------------------------


@pytest.fixture()
def live_app(tmp_path: Any) -> Any:
    """The app on a real, committed database (a SQLite file, or a new PostgreSQL database when
    TEST_DATABASE_URL is set), with the shipped processes and the desk's people."""
    from tests.conftest import drop_fresh_database, fresh_database_url

    url = fresh_database_url(tmp_path, "double_submit")
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    ext = application.extensions["processdesk"]
    svc = ext.services()
    application.desk = Desk(application.test_client(), svc)  # type: ignore[attr-defined]
    svc.session.close()
    yield application
    svc.session.close()
    ext.db_engine.dispose()
    drop_fresh_database(url)


THREADS = 6


def _race(app: Any, username: str, url: str, form: dict[str, str]) -> list[Any]:
    """``form`` posted to ``url`` by THREADS signed-in clients of ``username`` at once."""
    clients = [WebClient(app.test_client()) for _ in range(THREADS)]
    for client in clients:
        client.login(username)
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def worker(i: int) -> None:
        barrier.wait()
        response = clients[i].post(url, dict(form))
        results[i] = (response.status_code, response.headers.get("Location"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _count(app: Any, query: Any) -> int:
    svc = app.extensions["processdesk"].services()
    try:
        return int(svc.session.scalar(query) or 0)
    finally:
        svc.session.close()


def test_simultaneous_sends_of_one_start_form_create_one_incident(live_app):
    token = SubmissionService.new_token()
    results = _race(live_app, "rita", START, {**incident_form(), "submission_token": token})
    assert all(status == 302 for status, _location in results), results
    locations = {location for _status, location in results}
    assert len(locations) == 1 and re.fullmatch(r"/tickets/INC-\d+", locations.pop())
    assert _count(live_app, select(func.count()).select_from(Ticket)) == 1
    assert _count(live_app, select(func.count()).select_from(SubmissionToken)) == 1


def test_simultaneous_sends_of_one_comment_add_it_once(live_app):
    number = triaged_incident(live_app.desk)
    live_app.desk.services.session.close()
    token = SubmissionService.new_token()
    results = _race(live_app, "alex", f"/tickets/{number}/comments",
                    {"body": "On it", "submission_token": token})
    assert all(status == 302 for status, _location in results), results
    assert len({location for _status, location in results}) == 1
    assert _count(live_app, select(func.count()).select_from(TicketComment).where(TicketComment.body == "On it")) == 1


def test_simultaneous_sends_of_one_task_form_complete_it_once(live_app):
    number = live_app.desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    task_id = live_app.desk.task_id(number, "triage")
    live_app.desk.services.session.close()
    token = SubmissionService.new_token()
    results = _race(live_app, "alex", f"/tasks/{task_id}", {**TRIAGE, "submission_token": token})
    # every send lands where the first went: none is told the task could not be completed
    assert results == [(302, "/tasks")] * THREADS, results
    assert _count(live_app, select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event_type == "task_completed", AuditEvent.task_id == task_id)) == 1
