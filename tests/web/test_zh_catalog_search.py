"""The catalog searched in Chinese finds items by the names the page shows (the catalog's
translation), as well as by the stored English and codes."""

from __future__ import annotations

import re

from tests.web.conftest import text_of


def found_codes(web, url: str) -> list[str]:
    body = text_of(web.get(url))
    return re.findall(r'href="/catalog/([A-Z-]+)"', body[body.index("<main"):])


def test_a_chinese_item_name_finds_the_item(web, desk):
    web.login("rita")
    web.post("/language", {"lang": "zh_CN"})
    assert found_codes(web, "/catalog?q=标准笔记本电脑") == ["HW-LAPTOP"]
    assert sorted(found_codes(web, "/catalog?q=笔记本")) == ["HW-LAPTOP", "HW-LAPTOP-PERF"]
    # several keywords: each must match; the category still narrows
    assert found_codes(web, "/catalog?q=笔记本+标准") == ["HW-LAPTOP"]
    assert found_codes(web, "/catalog?q=笔记本&category=03") == []
    # the stored English and the codes still find what they found
    assert sorted(found_codes(web, "/catalog?q=laptop")) == ["HW-LAPTOP", "HW-LAPTOP-PERF"]
    assert found_codes(web, "/catalog?q=net-vpn") == ["NET-VPN"]
    assert "1 项" in text_of(web.get("/catalog?q=标准笔记本电脑")) or "1" in text_of(web.get("/catalog?q=标准笔记本电脑"))


def test_in_english_a_chinese_name_finds_nothing(web, desk):
    web.login("rita")
    assert found_codes(web, "/catalog?q=标准笔记本电脑") == []
