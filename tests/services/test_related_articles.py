"""Self-help while an incident is written (``KnowledgeService.related``): the published articles
about what the requester's words describe, any word counting, the title's words most."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.services.knowledge import RELATED_WORDS, related_terms


def article(services: Any, title: str, *, symptoms: str = "", workaround: str = "", cause: str = "",
            status: str = "published") -> str:
    written = services.knowledge.publish(None, title=title, symptoms=symptoms, cause=cause, workaround=workaround,
                                         source=None)
    written.status = status
    services.session.flush()
    return str(written.number)


def related(services: Any, text: str) -> list[str]:
    return [a.number for a in services.knowledge.related(text)]


@pytest.mark.parametrize("text, terms", [
    ("Outlook keeps crashing when I open the calendar", ["outlook", "crash", "open", "calendar"]),
    # English endings that vary are left out: each is looked for as a part of a word
    ("dropping drops dropped minutes access boxes printing", ["drop", "minute", "access", "box", "print"]),
    # a word's own double letter, -eed, -us and -is stay
    ("calling missing speed files status analysis", ["call", "miss", "speed", "file", "status", "analysis"]),
    ("VPN vpn on_off a b", ["vpn"]),  # once each; "_" splits; short and common words are left out
    ("打印机卡纸 printer", ["打印", "印机", "机卡", "卡纸", "printer"]),  # Han text: pairs of characters
    ("", []),
])
def test_the_words_looked_for(text, terms):
    assert related_terms(text) == terms


def test_at_most_so_many_words_are_looked_for():
    text = " ".join(f"word{n:02d}" for n in range(20))
    assert related_terms(text) == [f"word{n:02d}" for n in range(RELATED_WORDS)]


def test_articles_are_ranked_by_the_words_they_share_title_first(services):
    vpn = article(services, "VPN drops every few minutes", workaround="Reconnect with the new VPN profile.")
    printer = article(services, "Printer on floor 3 jams", symptoms="Paper jams in tray 2.")
    body_only = article(services, "Remote access guide", symptoms="The vpn client drops the tunnel overnight.")
    retired = article(services, "VPN drops (old client)", status="retired")
    draft = article(services, "VPN drops draft", status="draft")

    assert related(services, "My VPN keeps dropping every minutes") == [vpn, body_only]
    # one word shared with an article's body alone is chance, not a match
    assert related(services, "tunnel") == []
    assert related(services, "tunnel overnight") == [body_only]
    assert related(services, "printer JAMS again") == [printer]
    assert related(services, "the and for") == []
    assert retired not in related(services, "vpn drops") and draft not in related(services, "vpn drops")


def test_like_characters_are_taken_literally_and_chinese_is_found(services):
    percent = article(services, "Quota 100% full on the shared drive")
    chinese = article(services, "打印机卡纸怎么办", workaround="打开纸盒取出卡住的纸。")
    article(services, "Quota report")
    assert related(services, "100%") == [percent]
    assert related(services, "打印机又卡纸了") == [chinese]
    # "_" parts words: both of "Quota report", one of the other
    assert related(services, "quota_report") == [numbers_of(services, "Quota report"), percent]


def numbers_of(services: Any, title: str) -> str:
    from app.models import KnowledgeArticle
    return str(services.session.scalar(select(KnowledgeArticle.number).where(KnowledgeArticle.title == title)))


def test_the_newest_of_equal_matches_comes_first_and_five_at_most(services):
    numbers = [article(services, f"Wi-Fi outage in building {n}") for n in range(7)]
    assert related(services, "wifi outage") == list(reversed(numbers))[:5]


def test_a_records_suggestions_are_for_the_staff_while_it_is_open_and_leave_out_what_it_lists(services):
    from datetime import datetime, timezone

    from app.models import Ticket
    users = services.users
    users.create_user("agent1", "password-1234", roles=["agent"])
    users.create_user("req1", "password-1234", roles=["requester"])
    vpn = article(services, "VPN drops every few minutes")
    tunnel = article(services, "VPN tunnel resets", symptoms="The vpn drops overnight.")
    ticket = Ticket(kind="incident", number="INC-900001", title="VPN drops", description="at home, every evening",
                    status="new", details={"knowledge_articles": [tunnel]})
    services.session.add(ticket)
    services.session.flush()
    agent, requester = users.get_by_username("agent1"), users.get_by_username("req1")
    assert [a.number for a in services.knowledge.suggested_for(agent, ticket)] == [vpn]
    assert services.knowledge.suggested_for(requester, ticket) == []
    ticket.closed_at = datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert services.knowledge.suggested_for(agent, ticket) == []
