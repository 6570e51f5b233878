"""A requester writing an incident's title in Chromium is offered the knowledge articles about it
(js/as-you-type.js): a link that opens the article in a new tab, the form left as it was."""

from __future__ import annotations

import re
import uuid

from tests.browser.conftest import require_browser
from tests.browser.test_double_submit import fill_incident

require_browser()

from playwright.sync_api import expect  # noqa: E402


def test_a_requester_is_offered_an_article_while_typing_the_title(live, person):
    word = f"zeta{uuid.uuid4().hex[:6]}"  # a word only this test's article holds
    services = live.desk.services
    article = services.knowledge.publish(None, title=f"Projector {word} shows no picture",
                                         symptoms="The screen stays blue.", cause="",
                                         workaround="Press the source button twice.", source=None)
    number = article.number
    services.session.commit()

    rita = person(1280)
    rita.sign_in("rita")
    rita.go("/start/incident_management")
    page = rita.page
    panel = page.locator("#f-title-articles")
    expect(panel).to_be_hidden()
    page.get_by_label("Title").press_sequentially(f"The {word} projector is blank", delay=20)
    link = panel.get_by_role("link", name=f"Projector {word} shows no picture")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"/knowledge/{number}")
    expect(link).to_have_attribute("target", "_blank")
    expect(panel).to_contain_text(number)

    with page.context.expect_page() as opened:
        link.click()
    article_tab = opened.value
    article_tab.wait_for_load_state()
    expect(article_tab.locator("body")).to_contain_text("Press the source button twice.")
    # it answered her question: she says so, which the desk counts
    article_tab.get_by_role("button", name="Yes, it helped").click()
    expect(article_tab.locator("#kb-my-feedback")).to_have_text("You said it helped. Thank you.")
    expect(article_tab.get_by_role("button", name="Yes, it helped")).to_have_attribute("aria-pressed", "true")
    article_tab.close()

    # the form is as it was; words nothing matches hide the panel again
    expect(page.get_by_label("Title")).to_have_value(f"The {word} projector is blank")
    page.get_by_label("Title").fill("")
    page.get_by_label("Title").press_sequentially("qqq xyzzy", delay=20)
    expect(panel).to_be_hidden()
    fill_incident(page, f"The {word} projector is blank")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/tickets/INC-\d+$"))
    assert rita.errors == [], rita.console
