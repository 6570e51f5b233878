"""The catalog pages: browsing and searching the tree, an item with its request form, ordering."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.services.catalog import CatalogService
from tests.web.conftest import text_of

LAPTOP = {"justification": "My laptop of 2019 no longer holds a charge", "replacement": "false",
          "keyboard_layout": "UK", "delivery_location": "Building B, floor 2"}
MAILBOX = {"mailbox_address": "payroll@example.com", "display_name": "Payroll", "mailbox_owner": "rita",
           "send_as": "true", "justification": "One address for payroll questions"}


def main(body: str) -> str:
    return body[body.index("<main"):body.index("</main>")]


def item_card(body: str, code: str) -> str:
    start = body.index(f'id="item-{code}"')
    return body[start:body.index("</li>", start)]


def requests_of(services: Any, username: str) -> list[Any]:
    rita = services.users.get_by_username(username)
    rows, _total = services.records.list_tickets(rita, {"requester": username}, "-opened_at", 1, 50)
    return rows


def retire(services: Any, code: str) -> None:
    services.catalog.update_item(services.users.get_by_username("olga"), code, {"status": "retired"})
    services.session.commit()


# -- browsing and searching -------------------------------------------------------------------------


def test_the_catalog_shows_the_category_tree_with_each_items_cost_time_and_approval(web, desk):
    web.login("rita")
    body = main(text_of(web.get("/catalog")))
    assert re.search(r'<h2 id="category-01"><a href="/catalog\?category=01">Hardware</a></h2>', body)
    assert re.search(r'<h3 id="category-01-02"><a href="/catalog\?category=01.02">Laptops</a></h3>', body)
    names = re.findall(r'<h4 id="item-[^"]+"><a href="/catalog/([^"]+)">', body)
    assert set(names) == {"HW-LAPTOP", "HW-LAPTOP-PERF", "HW-MONITOR", "SW-LICENCE", "ACC-APP", "NET-VPN",
                          "MSG-SHARED-MAILBOX", "FAC-DESK-MOVE"}
    # the tree keeps the catalog's order: Hardware before Software before Access ...
    assert body.index("Hardware") < body.index("Software") < body.index("Access") < body.index("Facilities")
    laptop = item_card(body, "HW-LAPTOP")
    assert "Standard laptop" in laptop and "€950.00" in laptop and "72 hours (3 days)" in laptop
    assert "Your line manager, mona, approves it first." in laptop
    assert "A budget owner approves it first." in item_card(body, "HW-LAPTOP-PERF")
    mailbox = item_card(body, "MSG-SHARED-MAILBOX")
    assert "Free" in mailbox and "24 hours" in mailbox and "No approval needed" in mailbox
    # the search form: labelled controls, every category in the choice, nothing filtered yet
    assert '<label for="catalog-q">Keywords</label>' in body and '<label for="catalog-category">Category</label>' in body
    assert '<option value="01.02">\u00a0\u00a0\u00a0Laptops</option>' in body
    assert 'id="catalog-result"' not in body and "Show the whole catalog" not in body


def test_searching_by_keyword_and_category(web, desk):
    web.login("rita")
    body = main(text_of(web.get("/catalog?q=laptop")))
    assert '<p id="catalog-result">2 items found.</p>' in body
    assert 'href="/catalog/HW-LAPTOP"' in body and 'href="/catalog/HW-LAPTOP-PERF"' in body
    assert 'href="/catalog/HW-MONITOR"' not in body and 'id="category-02"' not in body  # empty branches pruned
    assert 'value="laptop"' in body and 'href="/catalog">Show the whole catalog' in body

    body = main(text_of(web.get("/catalog?category=03")))  # a category with its subcategories
    assert re.findall(r'href="/catalog/([A-Z-]+)"', body) == ["ACC-APP", "NET-VPN"]
    assert '<option value="03" selected>' in body
    assert '<li aria-current="page">Access</li>' in body  # the breadcrumbs name the category

    body = main(text_of(web.get("/catalog?q=standard+laptop&category=01.02")))
    assert '<p id="catalog-result">1 item found.</p>' in body
    assert '<li><a href="/catalog?category=01">Hardware</a></li>' in body

    for url in ("/catalog?q=teleporter", "/catalog?category=99", "/catalog?q=laptop&category=03",
                "/catalog?q=%25", "/catalog?category=0_"):
        body = main(text_of(web.get(url)))
        assert "No item matches your search." in body and "/catalog/" not in body, url


def test_retired_items_leave_the_catalog_but_the_process_owner_still_sees_them(web_factory, desk, services):
    retire(services, "HW-MONITOR")
    rita, olga = web_factory(), web_factory()
    rita.login("rita")
    assert 'href="/catalog/HW-MONITOR"' not in text_of(rita.get("/catalog"))
    assert rita.get("/catalog/HW-MONITOR").status_code == 404
    assert rita.post("/catalog/HW-MONITOR", {"quantity": "1"}).status_code == 404
    olga.login("olga")
    card = item_card(text_of(olga.get("/catalog")), "HW-MONITOR")
    assert '<span class="muted">(Retired)</span>' in card
    page = main(text_of(olga.get("/catalog/HW-MONITOR")))
    assert "This item is not in the catalog (Retired): it cannot be requested." in page
    assert "<form method=\"post\"" not in page and "Send request" not in page


# -- one item ---------------------------------------------------------------------------------------


def test_the_item_page_shows_the_item_and_its_generated_request_form(web, desk):
    web.login("rita")
    response = web.get("/catalog/HW-LAPTOP")
    assert response.status_code == 200
    body = main(text_of(response))
    assert "<title>Standard laptop · processdesk</title>" in text_of(response)
    assert ('<li><a href="/catalog">Service catalog</a></li>\n    <li><a href="/catalog?category=01">Hardware</a></li>'
            '<li><a href="/catalog?category=01.02">Laptops</a></li>') in body
    assert "<h1>Standard laptop</h1>" in body and "14-inch business laptop" in body
    assert '<dd id="item-cost">€950.00</dd>' in body
    assert '<dd id="item-target">72 hours (3 days)</dd>' in body
    assert '<dd id="item-approval">Your line manager, mona, approves it first.</dd>' in body
    assert '<dd id="item-fulfilment">DesktopSupport</dd>' in body
    # the form follows the JSON Schema and the UI schema: order, widgets, choices, defaults, help
    assert 'action="/catalog/HW-LAPTOP"' in body and 'name="csrf_token"' in body
    order = [m for m in re.findall(r'name="([a-z_]+)"', body) if m not in ("csrf_token", "submission_token")]
    assert list(dict.fromkeys(order)) == ["justification", "replacement", "old_asset_tag", "keyboard_layout",
                                         "needed_by", "delivery_location"]
    assert re.search(r'<textarea id="f-justification" name="justification"[^>]*placeholder="New starter', body)
    assert '<input type="radio" id="f-replacement-1" name="replacement" value="false" checked>' in body
    assert '<option value="US" selected>US international</option>' in body
    assert '<input type="date" id="f-needed_by" name="needed_by"' in body
    assert "Where Desktop Support hands the laptop over." in body
    assert "Order a standard business laptop" in body  # the form's own description


@pytest.mark.parametrize(("who", "code", "words"), [
    ("rita", "HW-LAPTOP", "Your line manager, mona, approves it first."),    # rule manager
    ("rita", "HW-LAPTOP-PERF", "A budget owner approves it first."),         # rule budget
    ("rita", "FAC-DESK-MOVE", "No approval needed"),                         # rule none, free
    ("rita", "HW-MONITOR", "Your line manager, mona, approves it first."),   # rule none, but it costs money
    ("mona", "HW-LAPTOP", "A budget owner approves it first."),              # mona has no line manager
])
def test_the_approval_rule_in_plain_words(web, desk, who, code, words):
    web.login(who)
    assert re.search(rf'<dd id="item-approval">{re.escape(words)}', text_of(web.get(f"/catalog/{code}")))


def test_the_words_match_what_the_running_request_decides(web_factory, desk, services):
    for who, code, data, approval in [("rita", "HW-LAPTOP", LAPTOP, "line_manager"),
                                      ("mona", "HW-LAPTOP", LAPTOP, "budget_owner"),
                                      ("rita", "MSG-SHARED-MAILBOX", MAILBOX, "none")]:
        person = web_factory()
        person.login(who)
        assert person.post(f"/catalog/{code}", data).status_code == 302
        number = requests_of(services, who)[0].number
        assert desk.record(number)["details"]["approval"] == approval, (who, code)


def test_an_item_ordered_in_quantities_says_from_how_many_a_budget_owner_decides(web_factory, desk, services):
    """QA: SW-LICENCE (EUR 180 a licence) named the line manager, and ten licences went to the
    budget owners. The page says from which count on they do, and a request agrees."""
    person = web_factory()
    person.login("rita")
    body = text_of(person.get("/catalog/SW-LICENCE"))
    assert re.search(r'<dd id="item-approval">Your line manager, mona, approves it first\. '
                     r'From 6 on \(over €1,000\.00 in total\), a budget owner approves it\.</dd>', body), body
    licences = {"software": "visio", "licensed_users": "rita", "justification": "Diagrams for the network plan"}
    for count, approval in ((5, "line_manager"), (6, "budget_owner")):
        assert person.post("/catalog/SW-LICENCE", {**licences, "quantity": str(count)}).status_code == 302
        number = requests_of(services, "rita")[0].number
        assert desk.record(number)["details"]["approval"] == approval, count
        person.get("/catalog/SW-LICENCE")  # a fresh form (each request takes a one-time token)
    # an item without quantities, or one whose largest order stays under the threshold, says nothing of it
    laptop = text_of(person.get("/catalog/HW-LAPTOP"))
    assert '<dd id="item-approval">Your line manager, mona, approves it first.</dd>' in laptop


def test_expected_approval_follows_the_shipped_decision_table(desk, services):
    expected = CatalogService.expected_approval
    assert expected("budget", 0) == ("budget_owner", None)
    assert expected("manager", 1000.01)[0] == "budget_owner" and expected("none", 5000)[0] == "budget_owner"
    assert expected("manager", 0)[0] == "line_manager" and expected("manager", 1000)[0] == "line_manager"
    assert expected("none", 0) == ("none", None)
    assert expected("none", 0.5)[0] == "line_manager" and expected("unknown", 0)[0] == "line_manager"
    rita, mona = services.users.get_by_username("rita"), services.users.get_by_username("mona")
    assert expected("manager", 950, rita) == ("line_manager", "mona")
    assert expected("manager", 950, mona) == ("budget_owner", None)


def test_unknown_items_are_not_found(web, desk):
    web.login("rita")
    for url in ("/catalog/NOPE", "/catalog/" + "X" * 65):
        response = web.get(url)
        assert response.status_code == 404 and "Not found" in text_of(response)
    assert web.post("/catalog/NOPE", {"x": "1"}).status_code == 404


def test_an_item_address_in_lower_case_leads_to_the_item(web, desk):
    """Record and article numbers are found however they are cased; item codes too."""
    web.login("rita")
    moved = web.get("/catalog/hw-laptop")
    assert moved.status_code == 301 and moved.headers["Location"] == "/catalog/HW-LAPTOP"
    assert web.get("/catalog/nope").status_code == 404
    api = desk.client.get("/api/v1/catalog/items/net-vpn", headers=desk.auth("rita"))
    assert api.status_code == 200 and api.get_json()["code"] == "NET-VPN"


def test_the_catalog_needs_signing_in(web, desk):
    response = web.get("/catalog/HW-LAPTOP")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/catalog/HW-LAPTOP"
    assert web.get("/catalog?q=vpn").headers["Location"] == "/login?next=/catalog?q%3Dvpn"


# -- requesting -------------------------------------------------------------------------------------


def test_a_request_goes_to_its_record_page_when_there_is_one(web, desk, services, app):
    web.login("rita")
    response = web.post("/catalog/HW-LAPTOP", LAPTOP)
    assert response.status_code == 302
    [ticket] = requests_of(services, "rita")
    number = ticket.number
    if "web.ticket" in app.view_functions:
        assert response.headers["Location"] == f"/tickets/{number}"
    else:
        assert response.headers["Location"] == "/tasks"
    assert ticket.title == "Standard laptop for rita" and ticket.details["item"] == "HW-LAPTOP"
    record = desk.record(number)
    assert record["status"] == "submitted" and record["details"]["approval"] == "line_manager"
    # the form's values arrived typed: a boolean and the chosen layout
    data = desk.instance(record["instance_id"])["data"]
    assert data["replacement"] is False and data["keyboard_layout"] == "UK" and data["line_manager"] == "mona"
    assert desk.task_id(number, "approve_manager", "mona")


def test_without_a_record_page_the_request_lands_in_the_inbox_with_its_number(web, desk, services, monkeypatch):
    import app.web.catalog_pages as pages

    monkeypatch.setattr(pages, "optional_url", lambda endpoint, **values: None)
    web.login("rita")
    response = web.post("/catalog/HW-LAPTOP", LAPTOP)
    assert response.headers["Location"] == "/tasks"
    [ticket] = requests_of(services, "rita")
    inbox = text_of(web.get("/tasks"))
    assert (f"Your request {ticket.number} “Standard laptop for rita” was sent. "
            "It now waits for your line manager&#39;s approval.") in inbox


def test_a_free_item_without_approval_goes_straight_to_its_fulfilment_group(web, desk, services, monkeypatch):
    import app.web.catalog_pages as pages

    monkeypatch.setattr(pages, "optional_url", lambda endpoint, **values: None)
    web.login("rita")
    assert web.post("/catalog/MSG-SHARED-MAILBOX", MAILBOX).status_code == 302
    [ticket] = requests_of(services, "rita")
    assert "It goes straight to fulfilment." in text_of(web.get("/tasks"))
    assert desk.ready(ticket.number) == ["fulfil_request"]
    assert desk.task_id(ticket.number, "fulfil_request", "ivan")  # MessagingTeam


def test_a_refused_request_comes_back_with_errors_beside_each_field_and_the_input_kept(web, desk, services):
    web.login("rita")
    response = web.post("/catalog/HW-LAPTOP", {**LAPTOP, "justification": "broken", "old_asset_tag": "12345",
                                               "delivery_location": ""})
    assert response.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    response = web.get(response.headers["Location"])
    body = main(text_of(response))
    assert "The form has problems. Nothing was saved." in body
    assert '<a href="#f-justification">Business justification: must be at least 10 characters</a>' in body
    assert '<a href="#f-delivery_location">Delivery location: is required</a>' in body
    assert re.search(r'<p class="field-error" id="f-old_asset_tag-error">.*</p>', body)
    assert re.search(r'<textarea id="f-justification"[^>]*aria-describedby="f-justification-error" '
                     r'aria-invalid="true"[^>]*>broken</textarea>', body)
    assert 'value="12345"' in body and '<option value="UK" selected>' in body
    assert requests_of(services, "rita") == []


def test_a_request_without_the_forms_token_is_refused(web, desk, services):
    web.login("rita")
    response = web.post("/catalog/HW-LAPTOP", LAPTOP, csrf=False)
    assert response.status_code == 403 and "Form expired" in text_of(response)
    assert requests_of(services, "rita") == []


def test_an_auditor_reads_the_catalog_but_requests_nothing(web, desk, services):
    web.login("aude")
    page = main(text_of(web.get("/catalog/HW-LAPTOP")))
    assert "You may read the catalog but not request items." in page and "Send request" not in page
    response = web.post("/catalog/HW-LAPTOP", LAPTOP)
    assert response.status_code == 403
    assert requests_of(services, "aude") == []


def test_the_catalog_in_chinese(web, desk, monkeypatch):
    import app.web.catalog_pages as pages

    monkeypatch.setattr(pages, "optional_url", lambda endpoint, **values: None)
    web.post("/language", {"lang": "zh_CN"})
    web.login("rita")
    catalog = text_of(web.get("/catalog?q=laptop"))
    assert "服务目录" in catalog and "关键词" in catalog and "找到 2 个项目。" in catalog
    item = text_of(web.get("/catalog/HW-LAPTOP"))
    assert "72 小时（3 天）" in item and "由您的直属经理 mona 先审批。" in item and "提交申请" in item
    assert "免费" in text_of(web.get("/catalog/ACC-APP"))
    refused = text_of(web.post("/catalog/HW-LAPTOP", {**LAPTOP, "delivery_location": ""}, follow_redirects=True))
    assert "表单有问题，未保存任何内容。" in refused and "为必填项" in refused
    web.post("/catalog/HW-LAPTOP", LAPTOP)
    assert "已提交" in text_of(web.get("/tasks"))
