"""How the record pages show stored values: codes by the labels the forms give them (translated),
durations, numbers, money and dates in words, the stored value kept in the markup; links between
records worded from each end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo
from flask_babel import force_locale
from markupsafe import Markup

from app.web import labels
from app.web.i18n import TRANSLATIONS_DIR
from app.web.labels import iso_duration, money, number, show
from tests.web.conftest import INCIDENT, text_of

ROOT = Path(__file__).resolve().parents[2]
TRIAGE = {"category": "software", "priority": "P3", "assignment_group": "NetworkTeam"}
LAPTOP = {"justification": "My laptop of 2019 no longer holds a charge", "replacement": "false",
          "keyboard_layout": "UK", "delivery_location": "Building B, floor 2"}
CHANGE = {"title": "Upgrade the mail gateway", "description": "Move the gateway to version 9.2.",
          "reason": "Version 8 is out of support in April.", "planned_start": "2026-03-10T20:00:00Z",
          "planned_end": "2026-03-10T22:00:00Z", "implementation_plan": "Drain, upgrade, re-enable.",
          "rollback_plan": "Restore the VM snapshot.", "test_plan": "Send and receive test mail.", "ci": "mailgw01"}


def fact(page: str, name: str) -> str:
    """The value of ``<dt>name</dt><dd>...</dd>`` on the page (its markup)."""
    match = re.search(rf"<dt>{re.escape(name)}</dt><dd[^>]*>(.*?)</dd>", page, re.S)
    assert match, f"no {name} on the page"
    return match.group(1)


def links_section(page: str) -> str:
    return page[page.index('id="links"'):page.index("</section>", page.index('id="links"'))]


def link_lines(page: str) -> list[str]:
    """Each link of the links section as text: "Caused by problem PRB-000001 title status"."""
    items = re.findall(r"<li>(.*?)</li>", links_section(page), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", item).split()) for item in items]


def resolved_incident(desk: Any, **investigate: Any) -> str:
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", TRIAGE)
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Patched the client",
                                                  "cause_category": "software_defect", **investigate})
    return number


# -- codes as labels -----------------------------------------------------------------------------------


def test_an_incidents_codes_show_as_the_labels_of_its_forms_with_the_code_kept(web, desk):
    number = resolved_incident(desk)
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert fact(page, "Cause") == '<data value="software_defect" title="software_defect">Software defect</data>'
    assert fact(page, "Category") == '<data value="software" title="software">Software</data>'
    assert fact(page, "Priority") == "P3"  # the head of "P3 - Normal": the code the desk speaks in
    assert "software_defect</" not in page and ">software<" not in page


def test_the_same_codes_in_chinese(web, desk):
    number = resolved_incident(desk)
    web.login("alex")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get(f"/tickets/{number}"))
    assert fact(page, "原因") == '<data value="software_defect" title="software_defect">软件缺陷</data>'
    assert fact(page, "类别") == '<data value="software" title="software">软件</data>'


def test_a_catalog_request_shows_its_item_cost_and_approval_in_words(web, desk, services):
    web.login("rita")
    assert web.post("/catalog/HW-LAPTOP", LAPTOP).status_code == 302
    rows, _total = services.records.list_tickets(services.users.get_by_username("rita"), {}, "-opened_at", 1, 5)
    ticket = rows[0]
    assert ticket.details["cost"] == 950.0 and ticket.category == "HW-LAPTOP"  # what is stored
    page = text_of(web.get(f"/tickets/{ticket.number}"))
    assert fact(page, "Cost") == '<data value="950.0" title="950.0">€950.00</data>'
    assert fact(page, "Catalog item") == '<data value="HW-LAPTOP" title="HW-LAPTOP">Standard laptop</data>'
    assert fact(page, "Category") == '<data value="HW-LAPTOP" title="HW-LAPTOP">Standard laptop</data>'
    assert fact(page, "Approval") == '<data value="line_manager" title="line_manager">Line manager</data>'
    assert fact(page, "Quantity") == "1"
    web.post("/language", {"lang": "zh_CN"})
    chinese = text_of(web.get(f"/tickets/{ticket.number}"))
    assert fact(chinese, "审批") == '<data value="line_manager" title="line_manager">直属经理</data>'
    assert "950.0<" not in chinese and "€950.00" in chinese


def test_a_changes_risk_type_and_times(web, desk):
    number = desk.start("alex", "change_enablement", {**CHANGE, "change_type": "standard"})["data"]["record_number"]
    record = desk.record(number)
    assert (record["priority"], record["category"]) == ("low", "standard")
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    assert fact(page, "Priority") == '<data value="low" title="low">Low</data>'
    assert fact(page, "Category") == '<data value="standard" title="Standard - pre-approved">Standard</data>'
    assert re.fullmatch(r'<time datetime="2026-03-10T20:00:00Z">3/10/26, 8:00\sPM</time>', fact(page, "Planned start"))
    assert '<span class="priority priority-low">Priority <data value="low" title="low">Low</data></span>' in page
    listing = text_of(web.get("/tickets?kind=change"))
    assert '<span class="priority priority-low"><data value="low" title="low">Low</data></span>' in listing
    assert '<option value="low">Low</option>' in listing
    web.post("/language", {"lang": "zh_CN"})
    chinese = text_of(web.get(f"/tickets/{number}"))
    assert fact(chinese, "类别") == '<data value="standard" title="标准 - 预先批准">标准</data>'
    assert fact(chinese, "优先级") == '<data value="low" title="low">低</data>'


def test_the_list_shows_priorities_by_their_head(web, desk):
    number = resolved_incident(desk)
    web.login("alex")
    listing = text_of(web.get("/tickets"))
    assert f'<a href="/tickets/{number}" class="number">{number}</a>' in listing
    assert '<span class="priority priority-P3">P3</span>' in listing


# -- the shapes of values, in both languages -------------------------------------------------------------


@pytest.mark.parametrize(("text", "english", "chinese"), [
    ("P3D", "3 days", "3 天"),
    ("PT2H30M", "2 hours 30 minutes", "2 小时 30 分钟"),
    ("P1W", "1 week", "1 周"),
    ("PT1H", "1 hour", "1 小时"),
    ("PT90S", "90 seconds", "90 秒"),
    ("P1DT1M", "1 day 1 minute", "1 天 1 分钟"),
])
def test_iso_durations_in_words(app, text, english, chinese):
    with app.test_request_context():
        with force_locale("en"):
            assert iso_duration(text) == english
            assert show(text) == Markup(f'<data value="{text}" title="{text}">{english}</data>')
        with force_locale("zh_CN"):
            assert iso_duration(text) == chinese


@pytest.mark.parametrize("text", ["P", "PT", "P3", "P1D2", "3 days", "P3DT", "PX"])
def test_what_is_not_a_duration_stays_as_written(app, text):
    with app.test_request_context(), force_locale("en"):
        assert iso_duration(text) is None
        assert show(text) == text


def test_numbers_money_flags_and_codes(app):
    with app.test_request_context(), force_locale("en"):
        assert number(950.0) == "950" and number(2.5) == "2.5" and number(12) == "12"
        assert show(950.0) == Markup('<data value="950.0" title="950.0">950</data>')
        assert show(0) == "0" and show(True) == Markup('<data value="true" title="true">Yes</data>')
        assert money(950.0) == "€950.00" and money(0) == "Free"
        assert show(2100.0, "details.cost") == Markup('<data value="2100.0" title="2100.0">€2,100.00</data>')
        assert show("rolling_back") == Markup('<data value="rolling_back" title="rolling_back">Rolling back</data>')
        assert show("verification_failed") == Markup(
            '<data value="verification_failed" title="verification_failed">Verification failed</data>')
        assert show("P3") == "P3" and show("Printer <b>") == "Printer &lt;b&gt;"
        assert show(["a_b", "c"]) == Markup('<data value="a_b" title="a_b">A b</data>, c')
        assert show("CHG-000004") == Markup('<a href="/tickets/CHG-000004" class="record-ref">CHG-000004</a>')
        assert show("2026-03-10") == Markup('<time datetime="2026-03-10">Mar 10, 2026</time>')
    with app.test_request_context(), force_locale("zh_CN"):
        assert show(True) == Markup('<data value="true" title="true">是</data>')
        assert show("high") == Markup('<data value="high" title="high">高</data>')
        assert money(0) == "免费"
        # a problem's fix change that failed (details.fix_change_status)
        assert show("failed", "details.fix_change_status") == Markup('<data value="failed" title="failed">失败</data>')


# -- links between records -----------------------------------------------------------------------------


def test_an_incident_that_raises_a_problem_is_caused_by_it_and_the_problem_causes_it(web, desk):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    desk.complete(number, "triage", "alex", TRIAGE)
    desk.complete(number, "investigate", "nina", {"outcome": "pending", "pending_on": "vendor",
                                                  "pending_reason": "Vendor analyses", "raise_problem": True})
    problem = "PRB-000001"
    web.login("alex")
    incident_page = text_of(web.get(f"/tickets/{number}"))
    [line] = link_lines(incident_page)
    assert line.startswith(f"Caused by problem {problem} Problem from {number}")
    assert "set on the other record" not in incident_page and "Related incident" not in links_section(incident_page)
    [line] = link_lines(text_of(web.get(f"/tickets/{problem}")))
    assert line.startswith(f"Causes incident {number} VPN down")
    web.post("/language", {"lang": "zh_CN"})
    [line] = link_lines(text_of(web.get(f"/tickets/{number}")))
    assert line.startswith(f"起因于 问题 {problem}")
    [line] = link_lines(text_of(web.get(f"/tickets/{problem}")))
    assert line.startswith(f"导致 事件 {number}")


def test_a_pair_of_records_may_hold_several_relations_each_once(web, desk):
    incident = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    problem = desk.start("alex", "problem_management", {"title": "Recurring VPN drops", "description": "Weekly"})
    problem_number = problem["data"]["record_number"]
    web.login("alex")
    for other, link_type in ((problem_number, "related"), (problem_number, "caused_by"),
                             (problem_number, "caused_by"), (problem_number, "related")):
        assert web.post(f"/tickets/{incident}/links", {"other": other, "link_type": link_type}).status_code == 302
    # the same relations from the problem's end: "related" either way, "causes" as related_incident
    for link_type in ("related", "related_incident"):
        assert web.post(f"/tickets/{problem_number}/links", {"other": incident, "link_type": link_type}).status_code == 302
    assert [line.split(" VPN")[0].split(" Recurring")[0] for line in link_lines(text_of(web.get(f"/tickets/{incident}")))] == [
        f"Related to problem {problem_number}", f"Caused by problem {problem_number}"]
    lines = link_lines(text_of(web.get(f"/tickets/{problem_number}")))
    assert [line.split(" VPN")[0] for line in lines] == [f"Related to incident {incident}", f"Causes incident {incident}"]
    record = desk.record(incident)
    assert [(link["link_type"], link["direction"]) for link in record["links"]] == [("related", "outgoing"),
                                                                                   ("caused_by", "outgoing")]


def test_the_link_form_offers_each_type_by_what_the_other_record_is(web, desk):
    incident = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    web.login("alex")
    page = text_of(web.get(f"/tickets/{incident}"))
    options = re.findall(r'<option value="([a-z_]+)"(?: selected)?>([^<]+)</option>',
                         page[page.index('id="link-type"'):])
    assert options == [("related", "Related to"), ("caused_by", "Caused by"), ("related_incident", "Causes"),
                       ("duplicate_of", "Duplicate of"), ("fix_change", "Fixed by"), ("parent", "Child of"),
                       ("child", "Parent of"), ("blocks", "Blocks"), ("known_error", "Known error documented in")]


# -- the labels stay in step with the forms -------------------------------------------------------------


def shipped_option_titles() -> set[str]:
    """The option titles of the shipped forms for the variables the shipped records copy."""
    titles = set()
    for mapping_file in sorted((ROOT / "processes").glob("*.record.json")):
        mapping = json.loads(mapping_file.read_text())
        variables = {v for k, v in mapping["fields"].items() if k in ("priority", "category", "service", "ci")}
        variables |= set(mapping.get("details", {}).values())
        process_id = mapping_file.name.removesuffix(".record.json")
        bpmn = (ROOT / "processes" / f"{process_id}.bpmn").read_text()
        forms = {f"{process_id}.start.json", *re.findall(r'name="formJsonSchemaFilename" value="([^"]+)"', bpmn)}
        for form in sorted(forms):
            path = ROOT / "forms" / form
            schema = json.loads(path.read_text()) if path.exists() else {}
            for name, node in schema.get("properties", {}).items():
                if name in variables:
                    node = node.get("items", node)
                    # dynamic choices (the people of a group) are a marker string: no fixed titles
                    lists = [node.get(key) for key in ("oneOf", "anyOf")]
                    titles |= {e["title"] for found in lists if isinstance(found, list) for e in found}
    return titles


def test_every_option_title_a_record_shows_is_marked_and_translated(app):
    titles = shipped_option_titles()
    assert {"Software defect", "P3 - Normal", "Standard - pre-approved", "4 - satisfied"} <= titles
    marked = {str(t._args[0]) for t in labels.FORM_OPTION_TITLES}  # the lazy strings' message ids
    assert titles == marked, (sorted(titles - marked), sorted(marked - titles))
    with (TRANSLATIONS_DIR / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        catalog = read_mo(handle)
    untranslated = sorted(t for t in titles if t not in catalog or not catalog[t].string)
    assert not untranslated, untranslated


def test_a_records_knowledge_articles_are_links_of_their_own(web, desk, services):
    number = resolved_incident(desk)
    article = services.knowledge.publish(None, title="VPN client drops", symptoms="Drops every hour",
                                         cause="Client bug", workaround="Reconnect", source=services.records.by_number(number))
    services.session.commit()
    web.login("alex")
    page = text_of(web.get(f"/tickets/{number}"))
    section = page[page.index('id="ticket-articles"'):]
    assert f'href="/knowledge/{article.number}">{article.number}</a>' in section[:section.index("</ul>")]
    details = page[page.index('id="ticket-details"'):page.index('id="ticket-articles"')]
    assert article.number not in details  # listed once, as a link, not also as a detail line
    web.post("/language", {"lang": "zh_CN"})
    assert "知识文章" in text_of(web.get(f"/tickets/{number}"))
