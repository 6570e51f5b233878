"""The record list as CSV: the filters of /tickets, every matching record the reader may see,
people by user name, times in UTC, formulas disarmed; the desk's staff get each record's time
worked, a requester gets her own records without it; too many records send her back to narrow
the list."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.web.conftest import WebClient, text_of
from tests.web.test_response_template_pages import open_incident


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, text_of(response)[:300]
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"] and ".csv" in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))


def test_the_list_downloads_as_csv_with_its_filters_and_the_time_worked(web_factory: Any, desk: Any,
                                                                        services: Any) -> None:
    first = open_incident(desk, "=HYPERLINK(\"http://evil.example\",\"Printer\")")
    second = open_incident(desk, "a;=cmd|' /C calc'!A0")
    change = desk.start("alex", "change_enablement", {
        "title": "Patch the print server", "description": "Monthly patches", "change_type": "standard",
        "reason": "Security", "planned_start": "2026-02-01T20:00:00Z", "planned_end": "2026-02-01T21:00:00Z",
        "implementation_plan": "Patch", "rollback_plan": "Snapshot", "test_plan": "Print"})["data"]["record_number"]
    agent: WebClient = web_factory()
    agent.login("alex")
    agent.post(f"/tickets/{first}/time-worked", {"spent": "30m"})
    agent.post(f"/tickets/{first}/time-worked", {"spent": "1h"})

    # the list's page links its download, with the filters it shows
    page = text_of(agent.get("/tickets?kind=incident&sort=number"))
    assert 'href="/tickets.csv?kind=incident&amp;sort=number"' in page

    rows = read_csv(agent.get("/tickets.csv?kind=incident&sort=number"))
    assert [r["number"] for r in rows] == [first, second]
    assert rows[0]["title"] == "'=HYPERLINK(\"http://evil.example\",\"Printer\")"  # not a formula
    assert rows[0]["requester"] == "rita" and rows[0]["kind"] == "incident" and rows[0]["status"] == "new"
    assert rows[0]["opened_at"].endswith("+00:00") and rows[0]["closed_at"] == ""
    assert [r["time_worked_minutes"] for r in rows] == ["90", "0"]
    # every cell is quoted: a spreadsheet splitting on ";" keeps "a;=cmd..." one cell
    raw = agent.get("/tickets.csv?kind=incident&sort=number").get_data(as_text=True)
    assert f'"{second}","incident","a;=cmd|\' /C calc\'!A0"' in raw
    assert rows[1]["title"] == "a;=cmd|' /C calc'!A0"
    everything = read_csv(agent.get("/tickets.csv"))
    assert {r["number"] for r in everything} == {first, second, change}

    # a requester: her own records, no time worked
    requester = web_factory()
    requester.login("rita")
    hers = read_csv(requester.get("/tickets.csv"))
    assert {r["number"] for r in hers} == {first, second}
    assert "time_worked_minutes" not in hers[0]


def test_too_many_records_send_the_reader_back_to_narrow_the_list(web_factory: Any, desk: Any, monkeypatch: Any) -> None:
    from app.web import ticket_export

    open_incident(desk, "One")
    open_incident(desk, "Two")
    monkeypatch.setattr(ticket_export, "EXPORT_MAX_RECORDS", 1)
    agent = web_factory()
    agent.login("alex")
    refused = agent.get("/tickets.csv?kind=incident&sort=number")
    assert refused.status_code == 302
    assert refused.headers["Location"] == "/tickets?kind=incident&sort=number"
    assert "More than 1 records match: narrow the list to download it." in text_of(agent.get(refused.headers["Location"]))
    assert len(read_csv(agent.get("/tickets.csv?kind=incident&q=One"))) == 1
