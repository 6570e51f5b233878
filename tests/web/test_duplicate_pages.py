"""Close as a duplicate on the record page: the desk's staff name the record that is worked, tick
the box, and the record is closed, its requester following the other; a refused form comes back
beside its fields, and nobody else is offered it."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from app.models import TicketLink
from tests.http.test_close_as_duplicate import incident
from tests.http.test_e2e_incident import resolve, triage
from tests.web.conftest import refused_to, text_of
from tests.web.test_out_of_office_pages import element, field_error


def links(services: Any) -> int:
    return services.session.scalar(select(func.count()).select_from(TicketLink))


def test_an_agent_closes_a_second_report_from_its_page(web, desk, services):
    first = incident(desk)
    second = incident(desk, "mona", "No VPN since this morning")
    web.login("alex")
    page = text_of(web.get(f"/tickets/{second}"))
    assert 'id="duplicate-form"' in page and f'action="/tickets/{second}/duplicate"' in page
    answer = web.post(f"/tickets/{second}/duplicate", {"of": first.lower(), "note": "Same outage", "confirm": "yes"})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/tickets/{second}"
    after = text_of(web.get(f"/tickets/{second}"))
    assert f"{second} was closed as a duplicate of {first}; its requester now watches {first}." in after
    assert f"duplicate of {first} (VPN down): Same outage" in element(after, "ticket-cancellation")
    assert 'id="duplicate-form"' not in after  # closed: nothing left to close
    mona = web.__class__(web.client.application.test_client())
    mona.login("mona")
    assert mona.get(f"/tickets/{first}").status_code == 200  # she follows the first record now


def test_a_form_missing_its_parts_comes_back_beside_them(web, desk, services):
    second = incident(desk, "mona")
    web.login("alex")
    back = f"/tickets/{second}#duplicate-form"
    page = refused_to(web, web.post(f"/tickets/{second}/duplicate", {"of": " ", "note": "x"}), back)
    assert field_error(page, "duplicate-of") == "is required"
    assert field_error(page, "duplicate-confirm") == "Tick the box to confirm."
    assert '<details class="duplicate-record" id="duplicate-form" open>' in page and ">x</textarea>" in page
    unknown = refused_to(web, web.post(f"/tickets/{second}/duplicate", {"of": "inc-999999", "confirm": "yes"}), back)
    assert field_error(unknown, "duplicate-of") == "There is no record INC-999999 that you may see."
    itself = refused_to(web, web.post(f"/tickets/{second}/duplicate", {"of": second, "confirm": "yes"}), back)
    assert field_error(itself, "duplicate-of") == "A record is not its own duplicate."
    assert links(services) == 0 and desk.record(second)["status"] != "cancelled"


def test_a_closed_record_is_refused_beside_the_field_in_the_pages_language(web, desk, services):
    first, second = incident(desk), incident(desk, "mona")
    triage(desk, first)
    resolve(desk, first)
    desk.complete(first, "confirm_resolution", "rita", {"confirmed": True, "rating": 5})
    web.login("alex")
    back = f"/tickets/{second}#duplicate-form"
    page = refused_to(web, web.post(f"/tickets/{second}/duplicate", {"of": first, "confirm": "yes"}), back)
    assert field_error(page, "duplicate-of") == (
        f"{first} is closed: reopen it, or link the two without closing {second}.")
    web.post("/language", {"lang": "zh_CN"})
    chinese = refused_to(web, web.post(f"/tickets/{second}/duplicate", {"of": first, "confirm": "yes"}), back)
    assert "已关闭" in field_error(chinese, "duplicate-of")
    assert "作为重复项关闭" in chinese
    assert links(services) == 0


def test_a_requester_is_not_offered_it_and_is_refused_when_she_posts_it(web, desk, services):
    first, second = incident(desk), incident(desk)
    web.login("rita")
    assert 'id="duplicate-form"' not in text_of(web.get(f"/tickets/{second}"))
    answer = web.post(f"/tickets/{second}/duplicate", {"of": first, "confirm": "yes"})
    assert answer.status_code == 302
    told = text_of(web.get(f"/tickets/{second}"))
    assert re.search(rf"{second} could not be closed as a duplicate: ", told)
    assert links(services) == 0 and desk.record(second)["status"] != "cancelled"
    assert web.post(f"/tickets/{second}/duplicate", {"of": first, "confirm": "yes"}, csrf=False).status_code == 403
    # a form she cannot see is not answered beside its fields: refused as it is
    incomplete = web.post(f"/tickets/{second}/duplicate", {"of": ""})
    assert incomplete.status_code == 302
    assert "could not be closed as a duplicate" in text_of(web.get(f"/tickets/{second}"))


def test_a_record_the_user_may_not_see_is_not_found(web, desk):
    first, second = incident(desk), incident(desk)
    web.login("mona")
    assert web.post(f"/tickets/{second}/duplicate", {"of": first, "confirm": "yes"}).status_code == 404


LIST = "/tickets?kind=incident&open=1"


def ticked(page: str) -> set[str]:
    return set(re.findall(r'<input type="checkbox" name="number" value="([A-Z]+-\d+)" form="duplicates-form" '
                          r'id="select-[A-Z]+-\d+" checked', page))


def test_the_desk_closes_the_ticked_reports_of_the_list_onto_the_one_worked(web, desk, services):
    first = incident(desk)
    reports = [incident(desk, "mona", "VPN again"), incident(desk, "alex", "No VPN")]
    web.login("alex")
    page = text_of(web.get(LIST))
    assert 'id="duplicates-form"' in page and 'action="/tickets/duplicates"' in page
    assert all(f'id="select-{n}"' in page for n in [first, *reports])
    answer = web.post("/tickets/duplicates", {"number": reports, "of": first.lower(), "note": "Major incident",
                                              "confirm": "yes", "next": LIST})
    assert answer.status_code == 302 and answer.headers["Location"] == LIST
    after = text_of(web.get(LIST))
    assert f"Records closed as duplicates of {first}: 2." in after
    assert all(desk.record(n)["status"] == "cancelled" for n in reports)
    assert all(f'id="select-{n}"' not in after for n in reports)  # closed: off the open list


def test_a_refused_record_comes_back_marked_and_nothing_is_closed(web, desk, services):
    from tests.http.test_e2e_change import raise_change
    first, report = incident(desk), incident(desk, "mona")
    change, _ = raise_change(desk)
    web.login("alex")
    back = "/tickets?open=1"
    page = refused_to(web, web.post("/tickets/duplicates", {"number": [report, change], "of": first,
                                                            "confirm": "yes", "next": back}), back)
    summary = element(page, "duplicates-errors")
    assert "Nothing was changed." in summary and change in summary and report not in summary
    assert "cannot join" in element(page, f"select-{change}-error")
    assert ticked(page) == {report, change}
    assert '<details class="bulk-bar duplicates-bar" id="duplicates" open>' in page
    assert links(services) == 0 and desk.record(report)["status"] != "cancelled"


def test_the_list_form_says_what_it_misses(web, desk):
    first = incident(desk)
    web.login("alex")
    page = refused_to(web, web.post("/tickets/duplicates", {"of": " ", "next": LIST}), LIST)
    summary = element(page, "duplicates-errors")
    assert "Tick the records to close first." in summary and "is required" in summary
    assert "Tick the box to confirm." in summary
    odd = refused_to(web, web.post("/tickets/duplicates", {"number": ["<b>x</b>"], "of": first, "confirm": "yes",
                                                           "next": LIST}), LIST)
    assert "not a record" in element(odd, "duplicates-errors")


def test_only_the_desks_staff_are_offered_the_list_form(web, desk):
    incident(desk)
    web.login("rita")
    assert 'id="duplicates-form"' not in text_of(web.get("/tickets"))
