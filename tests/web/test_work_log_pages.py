"""Time worked on a record's page: an agent logs "1h 30m" (a typo comes back beside the field with
what was typed), the panel lists it and adds it up, she removes her own entry; another agent may
not remove it; an auditor reads the panel without a form; a requester sees no panel at all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.models import WorkLog
from tests.web.conftest import WebClient, refused_to, text_of
from tests.web.test_out_of_office_pages import element, field_error
from tests.web.test_response_template_pages import form_of, open_incident


def entries(services: Any) -> list[tuple[str, int, str]]:
    services.session.expire_all()
    return [(w.user_name, w.minutes, w.note) for w in services.session.scalars(select(WorkLog).order_by(WorkLog.id))]


def test_an_agent_logs_time_the_panel_adds_it_up_and_she_removes_her_own(web_factory: Any, desk: Any,
                                                                        services: Any, clock: Any) -> None:
    number = open_incident(desk)
    agent: WebClient = web_factory()
    agent.login("alex")
    page = text_of(agent.get(f"/tickets/{number}"))
    assert element(page, "no-work") == "No time logged yet." and element(page, "work-total") == "Total: 0 min"

    # a typo: refused beside the field, the note kept, nothing stored
    refused = agent.post(f"/tickets/{number}/time-worked", {"spent": "1h 30x", "note": "Swapped the toner"})
    shown = refused_to(agent, refused, f"/tickets/{number}#work-form")
    assert field_error(shown, "work-spent") == "must be a duration such as 45m, 1h 30m or 1:30"
    assert form_of(shown, "work-form")["note"] == "Swapped the toner"
    assert form_of(shown, "work-form")["spent"] == "1h 30x"
    later = (clock.now().date() + timedelta(days=1)).isoformat()
    shown = refused_to(agent, agent.post(f"/tickets/{number}/time-worked", {"spent": "20m", "worked_on": later}),
                       f"/tickets/{number}#work-form")
    assert field_error(shown, "work-day") == "must not be after today"
    assert entries(services) == []

    done = agent.post(f"/tickets/{number}/time-worked", {"spent": "1h 30m", "note": "Swapped the toner"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/tickets/{number}#work")
    assert agent.post(f"/tickets/{number}/time-worked", {"spent": "0:45"}).status_code == 303
    nina = web_factory()
    nina.login("nina")
    assert nina.post(f"/tickets/{number}/time-worked", {"spent": "20"}).status_code == 303
    page = text_of(agent.get(f"/tickets/{number}"))
    assert element(page, "work-total") == "Total: 2 h 35 min"
    assert entries(services) == [("alex", 90, "Swapped the toner"), ("alex", 45, ""), ("nina", 20, "")]
    ids = [w.id for w in services.session.scalars(select(WorkLog).order_by(WorkLog.id))]
    # her entries have a remove button, nina's not
    assert [f"/tickets/{number}/time-worked/{i}/remove" in page for i in ids] == [True, True, False]

    assert nina.post(f"/tickets/{number}/time-worked/{ids[0]}/remove").status_code == 403
    removed = agent.post(f"/tickets/{number}/time-worked/{ids[0]}/remove", follow_redirects=True)
    assert "The entry is removed." in text_of(removed)
    assert "That entry was removed already." in text_of(
        agent.post(f"/tickets/{number}/time-worked/{ids[0]}/remove", follow_redirects=True))
    assert entries(services) == [("alex", 45, ""), ("nina", 20, "")]
    # the reports add it up by person
    report = text_of(agent.get("/reports"))
    assert element(report, "worked-total") == "Total: 1 h 05 min"
    assert "alex" in element(report, "report-worked-people") and "45 min" in element(report, "report-worked-people")


def test_an_auditor_reads_the_panel_and_a_requester_sees_none_of_it(web_factory: Any, desk: Any,
                                                                   services: Any) -> None:
    number = open_incident(desk)
    agent = web_factory()
    agent.login("alex")
    agent.post(f"/tickets/{number}/time-worked", {"spent": "25m", "note": "Remote session"})
    auditor = web_factory()
    auditor.login("aude")
    page = text_of(auditor.get(f"/tickets/{number}"))
    assert element(page, "work-total") == "Total: 25 min" and "Remote session" in page
    assert 'id="work-form"' not in page and "/remove" not in page
    assert auditor.post(f"/tickets/{number}/time-worked", {"spent": "5m"}).status_code == 403
    requester = web_factory()
    requester.login("rita")
    page = text_of(requester.get(f"/tickets/{number}"))
    assert 'id="work"' not in page and "Remote session" not in page
    assert requester.post(f"/tickets/{number}/time-worked", {"spent": "5m"}).status_code == 403
    assert agent.post(f"/tickets/{number}/time-worked", {"spent": "5m"}, csrf=False).status_code in (400, 403)
    assert entries(services) == [("alex", 25, "Remote session")]


def test_the_panel_speaks_chinese(web_factory: Any, desk: Any) -> None:
    number = open_incident(desk)
    agent = web_factory()
    agent.login("alex")
    agent.post("/language", {"lang": "zh_CN", "next": "/"})
    shown = refused_to(agent, agent.post(f"/tickets/{number}/time-worked", {"spent": "soon"}), f"/tickets/{number}#work-form")
    assert "<h2 id=\"work-title\">工作时间</h2>" in shown
    assert field_error(shown, "work-spent") == "必须是时长，例如 45m、1h 30m 或 1:30"
