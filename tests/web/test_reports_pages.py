"""The reports page and its CSV: the scenario's figures (tests/services/report_scenario.py), the
period form's errors, the 403 page for people who may not read reports, the page in Chinese."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from tests.services.report_scenario import PERIOD, build
from tests.web.conftest import text_of

URL = f"/reports?from={PERIOD[0]}&to={PERIOD[1]}"


@pytest.fixture()
def built(desk: Any, clock: Any) -> Any:
    build(desk, clock)
    return desk


def cells(page: str, table_id: str) -> list[list[str]]:
    """The rows of one table of the page, each a list of its cells' texts (tags dropped)."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, re.S)
    assert table, table_id
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)
    return [[" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in rows]


def test_the_page_shows_the_figures(web: Any, built: Any) -> None:
    web.login("olga")
    response = web.get(URL)
    assert response.status_code == 200
    page = text_of(response)
    # olga (process owner) has it in the header's "Manage" menu, marked as the page she is on
    assert re.search(r'<a href="/reports"[^>]* aria-current="page">Reports</a>', page)
    assert cells(page, "report-volume")[1:3] == [["Incident", "7", "5", "4"], ["Change", "3", "0", "3"]]
    assert cells(page, "report-backlog")[1:] == [["Incident", "P3", "2"], ["Incident", "P4", "2"]]
    assert cells(page, "report-incident-categories")[1] == ["Network", "2"]  # the incident forms' title, as on the record pages
    assert cells(page, "report-incident-priorities")[1:] == [["P2", "2"], ["P3", "3"], ["P4", "2"]]
    # hours as the API and the CSV give them (two decimals: 2.25 h is not "2.2")
    assert cells(page, "report-resolution")[1:] == [["Incident", "P2", "2", "3.00", "3.00"],
                                                    ["Incident", "P3", "3", "11.00", "4.00"]]
    assert cells(page, "report-sla")[1:] == [["First response", "5", "0", "0", "2", "100.0%"],
                                             ["Resolution", "3", "1", "0", "3", "75.0%"]]
    assert cells(page, "report-changes")[1:] == [["Successful", "1"], ["Rolled back", "1"], ["Rollback failed", "0"],
                                                 ["Rejected, then withdrawn", "1"], ["Cancelled", "0"]]
    assert "Success rate: 50.0% (1 of 2 implemented changes were successful)." in page
    assert cells(page, "report-aging")[1] == ["Incident", "1", "2", "0", "1", "0", "4"]
    assert cells(page, "report-workload")[1:] == [["NetworkTeam", "2"], ["(none)", "2"]]
    assert '<dd id="knowledge-published">0</dd>' in page and 'id="report-knowledge-needs-work"' not in page


def test_the_knowledge_section_lists_the_articles_that_need_work(web: Any, desk: Any, services: Any) -> None:
    article = services.knowledge.publish(None, title="Printer jams", symptoms="", cause="", workaround="", source=None)
    number = article.number
    services.session.commit()
    for name, helped in (("rita", False), ("mona", True)):
        desk.client.post(f"/api/v1/knowledge/{number}/feedback", headers=desk.auth(name), json={"helpful": helped})
    web.login("olga")
    page = text_of(web.get("/reports"))  # the 30 days up to today (the test clock's)
    assert '<dd id="knowledge-published">1</dd>' in page and '<dd id="knowledge-share">50.0%</dd>' in page
    assert cells(page, "report-knowledge-needs-work")[1:] == [[f"{number} Printer jams", "1", "1"]]


def test_one_kind_shows_its_sections(web: Any, built: Any) -> None:
    web.login("aude")
    page = text_of(web.get(URL + "&kind=change"))
    assert cells(page, "report-volume")[1:] == [["Change", "3", "0", "3"]]
    assert 'id="report-sla"' not in page and 'id="report-incident-categories"' not in page
    assert 'id="report-changes"' in page


def test_the_csv_holds_every_section(web: Any, built: Any) -> None:
    web.login("alex")
    response = web.get(URL.replace("/reports", "/reports.csv"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="report-2026-01-10-2026-01-25.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["section", "kind", "subject", "measure", "value"]
    assert ["period", "", "", "from", "2026-01-10"] in rows
    assert ["volume", "incident", "", "opened", "7"] in rows
    assert ["backlog", "incident", "P4", "open", "2"] in rows
    assert ["incidents_by_category", "incident", "hardware", "opened", "1"] in rows
    assert ["resolution", "incident", "P3", "median_hours", "4.0"] in rows
    assert ["sla", "", "resolution", "percent", "75.0"] in rows
    assert ["changes", "change", "withdrawn", "closed", "1"] in rows
    assert ["changes", "change", "", "success_rate", "50.0"] in rows
    assert ["aging", "incident", "days_1_3", "open", "2"] in rows
    assert ["workload", "", "", "open", "2"] in rows
    assert {row[0] for row in rows[1:]} == {"period", "volume", "backlog", "incidents_by_category",
                                             "incidents_by_priority", "resolution", "sla", "changes", "satisfaction", "aging",
                                             "workload", "knowledge", "time_worked"}
    assert ["time_worked", "", "", "minutes", "0"] in rows
    assert ["knowledge", "", "", "published", "0"] in rows


def test_a_group_name_is_not_a_formula_in_the_csv(web: Any, desk: Any) -> None:
    desk.start("rita", "incident_management", {"title": "x", "description": "y", "category": "network",
                                               "impact": "low", "urgency": "low"})
    from app.models import Ticket

    ticket = desk.services.session.query(Ticket).one()
    ticket.assignment_group = "=HYPERLINK(\"http://evil\")"
    desk.services.session.commit()
    web.login("ada")
    rows = list(csv.reader(io.StringIO(web.get("/reports.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert ["workload", "", "'=HYPERLINK(\"http://evil\")", "open", "1"] in rows


@pytest.mark.parametrize(("query", "field", "message"), [
    ("from=2026-02-30", "from", "must be a date (YYYY-MM-DD)"),
    ("from=2026-01-10&to=2026-01-09", "from", "must be before the end of the period, which is not included"),
    ("from=2026-01-10&to=2026-01-10", "from", "must be before the end of the period, which is not included"),
    ("from=2025-01-01&to=2026-01-03", "to", "the period may be at most 366 days"),
    ("kind=outage", "kind", "choose one from the list"),
    ("from=2026-01-05zzz", "from", "must be a date (YYYY-MM-DD)"),  # the API refuses it too: not cut off
])
def test_a_bad_period_comes_back_with_the_field_named(web: Any, desk: Any, query: str, field: str, message: str) -> None:
    web.login("alex")
    for url in (f"/reports?{query}", f"/reports.csv?{query}"):
        response = web.get(url)
        assert response.status_code == 422
        page = text_of(response)
        assert f'id="r-{field}-error"' in page and message in page and 'aria-invalid="true"' in page
        assert 'id="report-volume"' not in page


def test_two_bad_dates_are_both_named_at_once(web: Any, desk: Any) -> None:
    """Both dates mistyped: the page marks both, not the first one and then, once it is fixed, the
    other; the API names both fields too."""
    web.login("alex")
    page = text_of(web.get("/reports?from=2026-02-30&to=soon"))
    assert 'id="r-from-error"' in page and 'id="r-to-error"' in page
    answer = desk.client.get("/api/v1/reports/summary?from=2026-02-30&to=soon", headers=desk.auth("alex"))
    assert answer.status_code == 422
    assert set(answer.get_json()["details"]["fields"]) == {"from", "to"}


@pytest.mark.parametrize("name", ["rita", "cora"])
def test_requesters_and_approvers_get_the_403_page_and_no_link(web: Any, desk: Any, name: str) -> None:
    web.login(name)
    assert web.get("/reports").status_code == 403
    assert web.get("/reports.csv").status_code == 403
    assert 'href="/reports"' not in text_of(web.get("/tasks"))


def test_the_page_in_chinese(web: Any, built: Any) -> None:
    web.login("ada")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get(URL))
    assert ">报表</a>" in page and "<h1>报表</h1>" in page
    assert cells(page, "report-volume")[0] == ["类型", "创建的记录", "已解决", "已关闭"]
    assert cells(page, "report-aging")[0] == ["类型", "不到 1 天", "1 至 3 天", "3 至 7 天", "7 至 30 天", "30 天及以上", "合计"]
    assert "成功率：50.0%（已实施的 2 个变更中有 1 个成功）。" in page
    assert cells(page, "report-workload")[2] == ["（无）", "2"]
    bad = text_of(web.get("/reports?from=2026-01-10&to=2026-01-09"))
    assert "必须早于期间的结束日期（结束日期本身不包括在内）" in bad and "无法生成报表。" in bad
    # coded values read as on the record pages, not as codes (QA: "network", "high" on the zh page)
    categories = [row[0] for row in cells(page, "report-incident-categories")[1:]]
    assert categories and not set(categories) & {"network", "software", "hardware"}
