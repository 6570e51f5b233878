"""In real Chromium: the server error page's reference (app/request_log.py) stays inside a small
phone's window. A caller's own request id may be 64 characters of one word (a proxy's trace id),
which did not wrap and pushed the page sideways at 375 px."""

from __future__ import annotations

from tests.browser.conftest import require_browser

require_browser()

#: The longest id a caller's X-Request-Id may carry and have kept (app/request_log.py).
LONG_ID = "0123456789abcdef" * 4


def test_a_long_reference_wraps_inside_a_small_phone(live, person, monkeypatch):
    app = live.desk.client.application

    def boom() -> str:
        raise RuntimeError("the disk is on fire")

    # one page fails as in production: answered with the error page, not raised into the server
    monkeypatch.setitem(app.view_functions, "web.knowledge", boom)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    rita = person(375)
    rita.sign_in("rita")
    rita.page.set_extra_http_headers({"X-Request-Id": LONG_ID})
    answer = rita.go("/knowledge")
    assert answer.status == 500 and answer.headers["x-request-id"] == LONG_ID
    assert rita.page.locator("#error-reference").text_content() == LONG_ID
    reference = rita.page.locator("#error-reference").bounding_box()
    assert reference is not None and reference["x"] + reference["width"] <= 375
    assert rita.page.evaluate("document.documentElement.scrollWidth") <= 375
    rita.screenshot("error-reference-375")
