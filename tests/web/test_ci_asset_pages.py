"""Assets on the CMDB pages: the item form's asset part (dates as date fields, the cost as typed,
refused input beside its field and kept), the item's page with its warranty's state, and the
list's warranty and assignee filters; in Chinese too.

The desk's clock stands at Monday 2026-01-05 09:00 UTC (tests/conftest.py).
"""

from __future__ import annotations

import re

from tests.web.conftest import refused_to, text_of
from tests.web.test_cmdb_pages import GATEWAY

LAPTOP = {**GATEWAY, "name": "lt-0042", "class": "hardware", "asset_tag": "AT-0042", "assigned_to": "rita",
          "vendor": "Lenovo", "purchased_on": "2024-02-01", "warranty_until": "2026-01-25", "cost": "1299.5"}


def test_an_asset_is_entered_shown_and_found_by_its_warranty(web, desk):
    web.login("ada")
    form = text_of(web.get("/cmdb/new"))
    assert '<h2 class="form-part" id="ci-asset-title">Asset</h2>' in form
    assert 'type="text" id="ci-f-warranty_until" placeholder="YYYY-MM-DD" inputmode="numeric"' in form
    assert "Its owner and support group are told 30 days before." in form and 'id="ci-f-cost" name="cost" value="" maxlength="16" inputmode="decimal"' in form
    refused = web.post("/cmdb/new", {**LAPTOP, "warranty_until": "2024-01-01", "cost": "12,50", "assigned_to": "ghost"})
    page = refused_to(web, refused, "/cmdb/new")
    assert re.search(r'id="ci-f-warranty_until-error">.*must not end before the purchase date', page)
    assert re.search(r'id="ci-f-cost-error">.*must be an amount of at least 0, with at most two decimals', page)
    assert re.search(r'id="ci-f-assigned_to-error">.*ghost: no such active user', page)
    assert 'value="12,50"' in page and 'value="AT-0042"' in page  # kept as typed
    made = web.post("/cmdb/new", LAPTOP)
    assert made.status_code == 302 and made.headers["Location"] == "/cmdb/cis/lt-0042"
    item = text_of(web.get("/cmdb/cis/lt-0042"))
    assert '<dd id="ci-asset-tag">AT-0042</dd>' in item and '<dd id="ci-assigned-to">rita</dd>' in item
    assert re.search(r'<dd id="ci-warranty">2026-01-25\s*<span class="warranty-ending">\(ends in 20 days\)</span>', item)
    assert "<dt>Cost</dt><dd>1299.50</dd>" in item
    # the edit form holds what is stored, as typed
    edit = text_of(web.get("/cmdb/cis/lt-0042/edit"))
    assert 'name="purchased_on" value="2024-02-01"' in edit
    assert 'id="ci-f-cost" name="cost" value="1299.50"' in edit
    # an item that is no asset shows no asset part
    assert web.post("/cmdb/new", GATEWAY).status_code == 302
    assert 'id="ci-asset-tag"' not in text_of(web.get("/cmdb/cis/vpn-gw-01"))

    listing = text_of(web.get("/cmdb?warranty=30"))
    assert 'href="/cmdb/cis/lt-0042"' in listing and 'href="/cmdb/cis/vpn-gw-01"' not in listing
    assert '<option value="30" selected>Ends within 30 days</option>' in listing
    assert 'href="/cmdb/cis/lt-0042"' not in text_of(web.get("/cmdb?warranty=expired"))
    assert 'href="/cmdb/cis/lt-0042"' in text_of(web.get("/cmdb?assigned_to=rita"))
    assert 'href="/cmdb/cis/lt-0042"' not in text_of(web.get("/cmdb?assigned_to=alex"))
    web.post("/language", {"lang": "zh_CN"})
    chinese = text_of(web.get("/cmdb/cis/lt-0042"))
    assert "资产标签" in chinese and "（20 天后到期）" in chinese
    assert "30 天内到期" in text_of(web.get("/cmdb?warranty=30"))
