"""The audit pages: the history search with its CSV export and the chain's state, one instance's
timeline; auditors and admins only."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.models import AuditEvent
from app.web.audit_pages import EVENT_LABELS, csv_cell
from tests.web.conftest import INCIDENT, text_of

TRIAGE = {"category": "network", "priority": "P3", "assignment_group": "NetworkTeam",
          "triage_notes": "Looks like the VPN gateway"}


def triaged_incident(desk, **changes) -> tuple[str, int]:
    started = desk.start("rita", "incident_management", {**INCIDENT, **changes})
    number = started["data"]["record_number"]
    desk.complete(number, "triage", "alex", TRIAGE)
    return number, started["id"]


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))


@pytest.mark.parametrize("path", ["/audit", "/audit.csv", "/audit/instances/1"])
def test_people_who_are_not_auditors_get_the_403_page_and_the_attempt_is_audited(web, desk, services, path):
    web.login("alex")
    response = web.get(path)
    assert response.status_code == 403
    page = text_of(response)
    assert "Not allowed" in page and "only auditors and administrators may read the audit history" in page
    refused = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied",
                                                                AuditEvent.actor == "alex")).all()
    assert [e.payload["action"] for e in refused] == ["export_audit" if path.endswith(".csv") else "read_audit"]
    assert web.post("/audit/chain-check").status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(web):
    response = web.get("/audit?record=INC-000001")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_an_auditor_finds_an_instance_by_record_number_and_opens_its_timeline(web, desk):
    number, instance_id = triaged_incident(desk)
    other, other_id = triaged_incident(desk, title="Mail down")
    web.login("aude")
    page = text_of(web.get(f"/audit?record={number.lower()}"))
    assert f'value="{number}"' in page  # the search is shown as it was understood
    results = page.split('id="audit-results"')[1]
    assert number in results and other not in results
    assert f'href="/audit/instances/{instance_id}"' in results and f"/audit/instances/{other_id}" not in results
    assert "Task completed" in results and "Triage incident" in results and "alex" in results
    assert re.search(r"\d+ events found, newest first\.", page)
    assert f'href="/audit.csv?record={number}"' in page

    timeline = text_of(web.get(f"/audit/instances/{instance_id}"))
    assert f"History of instance {instance_id}" in timeline and number in timeline
    completed = timeline.split('data-event-type="task_completed"')[1].split("</tr>")[0]
    assert "alex" in completed and "Triage incident" in completed
    # a choice reads as the form titles it, with the value stored; a group (offered from the
    # directory, no title in the form) as its name
    assert "<dt>Category</dt>" in completed and '<dd>Network <span class="muted">(network)</span></dd>' in completed
    assert "<dt>Assignment group</dt>" in completed and "<dd>NetworkTeam</dd>" in completed
    assert "<dt>Triage notes</dt>" in completed and "<dd>Looks like the VPN gateway</dd>" in completed
    started = timeline.split('data-event-type="instance_started"')[1].split("</tr>")[0]
    assert "rita" in started and "<dd>VPN down</dd>" in started
    # the diagram section the viewer fills in (when bpmn-js is installed), fed by this instance's path
    if "vendor/bpmn-viewer" in timeline:
        assert f'data-diagram-url="/audit/instances/{instance_id}/diagram.json"' in timeline
        diagram = web.get(f"/audit/instances/{instance_id}/diagram.json").get_json()
        assert "triage" in diagram["completed"] and diagram["xml"].startswith("<?xml")


def test_refused_attempts_are_highlighted_on_the_timeline(web_factory, desk):
    started = desk.start("rita", "incident_management", INCIDENT)
    number = started["data"]["record_number"]
    task_id = desk.task_id(number, "triage")
    nina = web_factory()
    nina.login("nina")  # not of the ServiceDesk: may not claim the triage
    assert nina.get(f"/tasks/{task_id}").status_code == 404
    aude = web_factory()
    aude.login("aude")
    timeline = text_of(aude.get(f"/audit/instances/{started['id']}"))
    assert "1 refused attempts, highlighted below." in timeline
    row = re.search(r'<tr role="row" id="event-\d+" data-event-type="access_denied" class="has-error">(.*?)</tr>',
                    timeline, re.S)
    assert row, "the refused attempt is not highlighted"
    assert "Refused" in row.group(1) and "nina" in row.group(1) and "not visible" in row.group(1)


def test_search_by_actor_event_type_process_instance_and_dates(web, desk, clock):
    number, instance_id = triaged_incident(desk)
    clock.advance(timedelta(days=3))
    later = desk.start("alex", "problem_management", {"title": "Recurring VPN drops", "description": "Weekly"})
    web.login("ada")  # admins read the history too

    def seqs(query: str) -> set[str]:
        page = text_of(web.get("/audit?" + query))
        return set(re.findall(r'<tr role="row" id="event-(\d+)"', page))

    by_alex = text_of(web.get("/audit?actor=alex&event=task_completed"))
    assert by_alex.count('<tr role="row" id="event-') == 1 and "Triage incident" in by_alex
    assert '<option value="task_completed" selected>Task completed</option>' in by_alex
    problems = text_of(web.get("/audit?process=problem_management"))
    assert f"/audit/instances/{later['id']}" in problems and f"/audit/instances/{instance_id}\"" not in problems
    assert seqs(f"instance={instance_id}") == seqs(f"record={number}")
    assert seqs("from=2026-01-05&to=2026-01-05") and not seqs("from=2026-01-05&to=2026-01-05") & seqs("from=2026-01-08")
    assert f"/audit/instances/{later['id']}" in text_of(web.get("/audit?from=2026-01-08"))
    # the last day there is has no next day to stop before (QA: a 500)
    assert seqs("to=9999-12-31") == seqs("") and web.get("/audit.csv?from=9999-12-31&to=9999-12-31").status_code == 200
    assert "No event matches this search." in text_of(web.get("/audit?record=INC-999999"))


def test_a_bad_search_says_which_field_is_wrong(web, desk):
    web.login("aude")
    response = web.get("/audit?from=yesterday&to=2026-01-01&instance=abc")
    assert response.status_code == 422
    page = text_of(response)
    assert "The search has problems." in page
    assert 'href="#f-from">From: must be a date (YYYY-MM-DD)' in page
    assert 'href="#f-instance">Instance number: must be a whole number' in page
    assert 'value="yesterday"' in page and 'aria-invalid="true" aria-describedby="f-from-error"' in page
    backwards = text_of(web.get("/audit?from=2026-01-05&to=2026-01-01"))
    assert "To: must not be before the start date" in backwards
    assert web.get("/audit.csv?to=soon").status_code == 422


def test_results_are_paged(web, desk, app):
    number, _id = triaged_incident(desk)
    app.config["PER_PAGE_DEFAULT"] = 3
    web.login("aude")
    first = text_of(web.get(f"/audit?record={number}"))
    assert first.count('<tr role="row" id="event-') == 3
    assert f'href="/audit?page=2&amp;record={number}" rel="next"' in first
    total = int(re.search(r"(\d+) events found", first).group(1))
    assert total > 6
    last_page = -(-total // 3)
    last = text_of(web.get(f"/audit?record={number}&page={last_page}"))
    assert f"Page {last_page} of {last_page}" in last and 'rel="next"' not in last and 'rel="prev"' in last


def test_the_csv_export_has_the_search_s_events_as_an_attachment(web, desk):
    number, instance_id = triaged_incident(desk)
    triaged_incident(desk, title="Mail down")
    web.login("aude")
    response = web.get(f"/audit.csv?record={number}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="audit-\d{8}-\d{6}\.csv"', response.headers["Content-Disposition"])
    assert response.headers["Cache-Control"] == "no-store"
    rows = csv_rows(response)
    assert rows and {r["instance_id"] for r in rows} == {str(instance_id)} and {r["record_number"] for r in rows} == {number}
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)  # oldest first
    triage = [r for r in rows if r["event_type"] == "task_completed"]
    assert len(triage) == 1 and triage[0]["actor"] == "alex" and triage[0]["process_id"] == "incident_management"
    assert '"assignment_group":"NetworkTeam"' in triage[0]["payload"]
    page = text_of(web.get(f"/audit?record={number}"))
    assert len(rows) == int(re.search(r"(\d+) events found", page).group(1))


def test_an_export_is_itself_recorded_with_who_asked_for_what(web, desk, services):
    number, _id = triaged_incident(desk)
    web.login("aude")
    rows = csv_rows(web.get(f"/audit.csv?record={number}&from=2026-01-01"))
    exported = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "audit_exported")).all()
    assert len(exported) == 1 and exported[0].actor == "aude"
    assert exported[0].payload == {"filters": {"record_number": number, "occurred_from": "2026-01-01T00:00:00+00:00"},
                                   "events": len(rows), "through_seq": max(int(r["seq"]) for r in rows)}
    assert "Audit history exported" in text_of(web.get("/audit?event=audit_exported"))
    # a refused export is recorded as a refusal, not as an export
    web.login("rita")
    assert web.get("/audit.csv").status_code == 403
    assert services.session.scalar(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.event_type == "audit_exported")) == 1


def test_the_csv_export_cannot_smuggle_formulas(web, desk, services):
    services.audit.record("note", None, payload={"x": 1}, actor_name="=HYPERLINK(\"http://evil\")")
    services.audit.record("note", None, payload={}, actor_name="@SUM(A1)")
    services.session.commit()
    web.login("aude")
    rows = csv_rows(web.get("/audit.csv?event=note"))
    assert sorted(r["actor"] for r in rows) == ["'=HYPERLINK(\"http://evil\")", "'@SUM(A1)"]
    assert [csv_cell(v) for v in ("+1", "-2", "\tx", "\rx", "plain", 5, None, "a=b")] == \
        ["'+1", "'-2", "'\tx", "'\rx", "plain", "5", "", "a=b"]


def test_an_export_too_large_is_refused_with_a_message(web, desk, monkeypatch):
    number, _id = triaged_incident(desk)
    monkeypatch.setattr("app.web.audit_pages.EXPORT_MAX_EVENTS", 3)
    web.login("aude")
    response = web.get(f"/audit.csv?record={number}")
    assert response.status_code == 302 and response.headers["Location"] == f"/audit?record={number}"
    assert "More than 3 events match: narrow the search to export it." in text_of(web.get(response.headers["Location"]))
    assert len(csv_rows(web.get(f"/audit.csv?record={number}&event=task_completed"))) == 1


def test_the_chain_state_is_checked_on_demand_and_names_the_first_broken_event(web, desk, services, clock):
    triaged_incident(desk)
    web.login("aude")
    assert "The chain has not been checked yet." in text_of(web.get("/audit"))
    checked = web.post("/audit/chain-check", {"next": "/audit?actor=alex"})
    assert checked.headers["Location"] == "/audit?actor=alex"
    page = text_of(web.get("/audit?actor=alex"))
    count = int(re.search(r"The audit chain is intact: (\d+) events checked\.", page).group(1))
    assert f"Intact: {count} events verified" in page
    assert 'datetime="2026-01-05T09:00:00+00:00" id="chain-checked-at"' in page and "<dd>aude</dd>" in page
    assert "Audit chain checked" in text_of(web.get("/audit?event=audit_chain_checked"))

    # someone edits the triage event's data in the database
    victim = services.session.scalar(select(AuditEvent).where(AuditEvent.event_type == "task_completed"))
    services.session.execute(update(AuditEvent).where(AuditEvent.id == victim.id)
                             .values(payload={**victim.payload, "data": {"priority": "P4"}}))
    services.session.commit()
    clock.advance(timedelta(minutes=20))
    web.post("/audit/chain-check")
    page = text_of(web.get("/audit"))
    assert f"The audit chain is broken at event {victim.seq}: its content does not match its hash" in page
    assert f"at event {victim.seq} (id {victim.id}): its content does not match its hash." in page
    assert f"The {victim.seq - 1} events before it are intact." in page
    assert 'datetime="2026-01-05T09:20:00+00:00"' in page


def test_the_audit_pages_speak_chinese(web, desk):
    number, instance_id = triaged_incident(desk)
    web.login("aude")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get(f"/audit?record={number}&from=x"))
    assert "审计历史" in page and "搜索" in page and "必须是日期" in page
    page = text_of(web.get(f"/audit?record={number}"))
    assert "任务已完成" in page and "下载" in page
    timeline = text_of(web.get(f"/audit/instances/{instance_id}"))
    assert "时间线" in timeline and "任务已完成" in timeline


def test_an_unknown_instance_is_not_found(web, desk):
    web.login("aude")
    assert web.get("/audit/instances/999999").status_code == 404


def test_the_timeline_diagram_data_is_for_auditors_only(web, desk):
    _number, instance_id = triaged_incident(desk)
    web.login("alex")
    refused = web.get(f"/audit/instances/{instance_id}/diagram.json")
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"


def test_every_event_type_the_app_records_has_a_label_on_the_pages():
    root = Path(__file__).resolve().parents[2] / "app"
    recorded = {name for path in root.rglob("*.py")
                for name in re.findall(r'\.record\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8"))}
    assert len(recorded) > 20
    assert sorted(recorded - set(EVENT_LABELS)) == []


def test_the_timeline_names_choices_and_leaves_out_empty_payload_values(web, desk, services):
    """QA: a vote read "Decision true", a refused attempt "Refused: Refused attempt", and SLA
    events listed the values they do not have ("targets {}", "clocks —")."""
    number, instance_id = triaged_incident(desk)
    # a refused attempt on it: cab1 (an approver of no lane of the incident) opens the instance
    assert desk.client.get(f"/api/v1/instances/{instance_id}", headers=desk.auth("cab1")).status_code == 404
    timeline = services.audit.instance_timeline(services.users.get_by_username("aude"), instance_id)
    for entry in timeline.entries:
        # submitted data and a record's changes keep their empty values: clearing a field is news
        if entry.event.event_type not in ("task_completed", "instance_started", "record_updated"):
            assert all(f.value not in (None, {}, [], "") for f in entry.fields), entry
    web.login("aude")
    page = text_of(web.get(f"/audit/instances/{instance_id}"))
    refused = page.split('data-event-type="access_denied"')[1].split("</tr>")[0]
    assert refused.count("Refused attempt") == 1 and "Refused:" not in refused


def test_a_choice_is_shown_by_its_title_with_its_value():
    from app.services.audit import _data_fields
    schema = {"properties": {"approved": {"type": "boolean", "title": "Decision",
                                          "oneOf": [{"const": True, "title": "Approve"}, {"const": False, "title": "Reject"}]},
                             "count": {"type": "integer", "oneOf": [{"const": True, "title": "Yes"}]}}}
    fields = {f.key: f for f in _data_fields("task_completed", {"data": {"approved": False, "count": 1}}, schema)}
    assert (fields["approved"].title, fields["approved"].value_title) == ("Decision", "Reject")
    assert fields["count"].value_title is None  # 1 is not the choice true
