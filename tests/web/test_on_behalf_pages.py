"""The start and catalog pages let a service desk agent log a record for a caller ("Requested for",
app/web/forms.py ``with_caller_field``); requesters never see the field, and one sent anyway is refused."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.models import Ticket
from app.web.forms import CALLER_FIELD
from tests.web.conftest import INCIDENT, WebClient, refused_to, text_of
from tests.web.test_catalog import LAPTOP

FORM = {key: INCIDENT[key] for key in ("title", "description", "category", "impact", "urgency")}


def tickets(services: Any) -> int:
    services.session.rollback()
    count = int(services.session.scalar(select(func.count()).select_from(Ticket)) or 0)
    services.session.rollback()
    return count


def logged(web: WebClient, desk: Any, url: str, form: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """alex sends ``form`` to ``url`` for rita: the new record's number and the record, which is
    hers and names him as who logged it."""
    answer = web.post(url, {**form, CALLER_FIELD: "Rita"})
    assert answer.status_code == 302, text_of(answer)[:500]
    number = answer.headers["Location"].rsplit("/", 1)[-1]
    record = desk.record(number)
    assert (record["requester"], record["opened_by"]) == ("rita", "alex")
    return number, record


def test_an_agent_sees_the_field_and_a_requester_does_not(web_factory: Any, desk: Any) -> None:
    alex, rita = web_factory(), web_factory()
    alex.login("alex")
    rita.login("rita")
    page = text_of(alex.get("/start/incident_management"))
    assert f'name="{CALLER_FIELD}"' in page and "Requested for" in page
    assert f'name="{CALLER_FIELD}"' in text_of(alex.get("/catalog/HW-LAPTOP"))
    for url in ("/start/incident_management", "/catalog/HW-LAPTOP"):
        assert CALLER_FIELD not in text_of(rita.get(url)) and "Requested for" not in text_of(rita.get(url))
    # the field suggests people as alex types (js/as-you-type.js asks the address it names)
    assert (f'list="f-{CALLER_FIELD}-suggestions" data-suggest="/start/incident_management/callers"' in page
            and f'<datalist id="f-{CALLER_FIELD}-suggestions"></datalist>' in page and "js/as-you-type.js" in page)
    assert 'data-suggest="/start/catalog_request/callers"' in text_of(alex.get("/catalog/HW-LAPTOP"))


def test_the_suggestions_are_the_services_and_refused_as_json(web_factory: Any, desk: Any) -> None:
    alex, rita = web_factory(), web_factory()
    alex.login("alex")
    rita.login("rita")
    answer = alex.get("/start/incident_management/callers?q=rit")
    assert answer.status_code == 200 and [p["username"] for p in answer.get_json()["items"]] == ["rita"]
    assert alex.get("/start/problem_management/callers?q=rit").get_json() == {"items": []}
    assert alex.get("/start/no_such_process/callers?q=rit").status_code == 404
    refused = rita.get("/start/incident_management/callers?q=ale")
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    signed_out = web_factory().get("/start/incident_management/callers?q=ale", headers={"Accept": "application/json"})
    assert signed_out.status_code == 401 and signed_out.get_json()["error"] == "signed_out"


def test_an_agent_logs_a_callers_incident_from_the_page(web: WebClient, desk: Any, services: Any) -> None:
    web.login("alex")
    number, record = logged(web, desk, "/start/incident_management", FORM)
    started = desk.instance(record["instance_id"])
    assert "on_behalf_of" not in str(started["data"])  # the control is no answer of the form
    page = text_of(web.get(f"/tickets/{number}"))
    assert f"Record {number} “{FORM['title']}” was logged for rita, who is told its number." in page
    assert '<dd id="opened-by"><a href="/tickets?opened_by=alex"' in page and "Logged by" in page
    listed = text_of(web.get("/tickets?opened_by=alex"))
    assert f"/tickets/{number}" in listed and 'id="filter-opened-by" name="opened_by" value="alex"' in listed


def test_an_unknown_caller_is_refused_beside_the_field_with_the_answers_kept(web: WebClient, desk: Any,
                                                                             services: Any) -> None:
    web.login("alex")
    answer = web.post("/start/incident_management", {**FORM, CALLER_FIELD: "nobody"})
    page = refused_to(web, answer, "/start/incident_management")
    assert tickets(services) == 0
    assert 'id="f-_on_behalf_of-error"' in page and "nobody: no such active user" in page
    assert 'value="nobody"' in page and f'value="{FORM["title"]}"' in page
    assert 'href="#f-_on_behalf_of"' in page  # the error summary leads to the field


def test_the_caller_is_refused_with_the_forms_own_errors(web: WebClient, desk: Any, services: Any) -> None:
    web.login("alex")
    answer = web.post("/start/incident_management", {**FORM, "description": "", CALLER_FIELD: "nobody"})
    page = refused_to(web, answer, "/start/incident_management")
    assert "nobody: no such active user" in page and 'id="f-description-error"' in page
    assert tickets(services) == 0


def test_the_refusal_reads_in_chinese(web: WebClient, desk: Any, services: Any) -> None:
    web.login("alex")
    web.post("/language", {"lang": "zh_CN"})
    answer = web.post("/start/problem_management", {"title": "VPN drops", "description": "Every morning",
                                                     CALLER_FIELD: "rita"})
    page = refused_to(web, answer, "/start/problem_management")
    assert "rita 无权发起此流程" in page and "为谁提交" in page
    assert tickets(services) == 0


def test_a_requester_sending_the_field_anyway_is_refused(web: WebClient, desk: Any, services: Any) -> None:
    web.login("rita")
    answer = web.post("/start/incident_management", {**FORM, CALLER_FIELD: "alex"})
    assert answer.status_code == 403
    said = "Only service desk agents and administrators log a record for somebody else."
    assert said in text_of(answer)
    answer = web.post("/catalog/HW-LAPTOP", {**LAPTOP, CALLER_FIELD: "alex"})
    assert answer.status_code == 403 and said in text_of(answer)
    assert tickets(services) == 0


def test_an_agent_orders_a_laptop_for_a_colleague(web: WebClient, desk: Any, services: Any) -> None:
    web.login("alex")
    number, record = logged(web, desk, "/catalog/HW-LAPTOP", LAPTOP)
    page = text_of(web.get(f"/tickets/{number}"))
    assert (f"Request {number} “{record['title']}” was sent for rita, who is told its number. "
            "It now waits for their line manager&#39;s approval.") in page
