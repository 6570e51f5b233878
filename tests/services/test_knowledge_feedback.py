""""Was this article helpful?" (``KnowledgeService.rate``): one answer per reader, replaced when
given again, audited when it changes; counted for the staff; a tie-breaker of suggestions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.errors import Conflict, NotFound
from app.models import AuditEvent, KnowledgeFeedback


@pytest.fixture()
def people(services: Any) -> dict[str, Any]:
    users = services.users
    for name, role in (("ann", "requester"), ("ben", "requester"), ("cy", "agent")):
        users.create_user(name, "password-1234", roles=[role])
    services.session.flush()
    return {name: users.get_by_username(name) for name in ("ann", "ben", "cy")}


def publish(services: Any, title: str) -> str:
    return str(services.knowledge.publish(None, title=title, symptoms="", cause="", workaround="", source=None).number)


def rated_events(services: Any) -> list[dict[str, Any]]:
    services.session.commit()  # the audit's events are written as the unit of work commits
    return [e.payload for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "knowledge_rated").order_by(AuditEvent.seq))]


def test_one_answer_per_reader_replaced_when_given_again(services, people):
    number = publish(services, "Printer jams")
    knowledge = services.knowledge
    assert knowledge.rate(people["ann"], number, True) == {
        "number": number, "helpful_count": 1, "not_helpful_count": 0, "my_feedback": True}
    assert knowledge.rate(people["ben"], number, False) == {
        "number": number, "helpful_count": 1, "not_helpful_count": 1, "my_feedback": False}
    assert knowledge.rate(people["ann"], number, True)["helpful_count"] == 1  # the same answer again: no change
    assert knowledge.rate(people["ann"], number, False) == {
        "number": number, "helpful_count": 0, "not_helpful_count": 2, "my_feedback": False}
    assert len(services.session.scalars(select(KnowledgeFeedback)).all()) == 2
    assert rated_events(services) == [{"article": number, "helpful": True}, {"article": number, "helpful": False},
                                      {"article": number, "helpful": False}]
    # the article as the API and pages show it, to each reader
    article = knowledge.get(number)
    [as_ben] = knowledge.article_dicts([article], people["ben"])
    [as_cy] = knowledge.article_dicts([article], people["cy"])
    assert (as_ben["helpful_count"], as_ben["not_helpful_count"], as_ben["my_feedback"]) == (0, 2, False)
    assert as_cy["my_feedback"] is None


def test_only_a_published_article_a_reader_sees_is_rated(services, people):
    number = publish(services, "Old VPN client")
    services.knowledge.get(number).status = "retired"
    services.session.flush()
    with pytest.raises(NotFound):  # a requester does not read a retired article
        services.knowledge.rate(people["ann"], number, True)
    with pytest.raises(Conflict) as refused:  # staff read it, but nobody answers for it
        services.knowledge.rate(people["cy"], number, True)
    assert refused.value.code == "not_published"
    with pytest.raises(NotFound):
        services.knowledge.rate(people["ann"], "KB-999999", True)
    assert services.session.scalars(select(KnowledgeFeedback)).all() == []


def test_of_equally_matching_suggestions_the_more_helpful_comes_first(services, people):
    older = publish(services, "VPN drops at home")
    newer = publish(services, "VPN drops in the office")
    assert [a.number for a in services.knowledge.related("vpn drops")] == [newer, older]
    services.knowledge.rate(people["ann"], older, True)
    services.knowledge.rate(people["ben"], newer, False)
    assert [a.number for a in services.knowledge.related("vpn drops")] == [older, newer]
    # a better match still comes first whatever its answers
    services.knowledge.rate(people["cy"], newer, False)
    assert [a.number for a in services.knowledge.related("vpn drops office")] == [newer, older]


def test_the_staff_list_the_least_and_the_most_helpful_first(services, people):
    good, bad, unrated = (publish(services, title) for title in ("Good answer", "Bad answer", "Nobody asked"))
    knowledge = services.knowledge
    knowledge.rate(people["ann"], good, True)
    knowledge.rate(people["ben"], good, True)
    knowledge.rate(people["ann"], bad, False)

    def listed(sort: str) -> list[str]:
        rows, total = knowledge.search(None, 1, 10, user=people["cy"], sort=sort)
        assert total == 3
        return [a.number for a in rows]

    assert listed("newest") == [unrated, bad, good]
    assert listed("most_helpful") == [good, unrated, bad]
    assert listed("least_helpful") == [bad, unrated, good]
    rows, _total = knowledge.search(None, 1, 1, user=people["cy"], sort="least_helpful")
    assert [a.number for a in rows] == [bad]  # paged in that order


def test_an_auditor_reads_but_does_not_rate(services, people):
    number = publish(services, "Printer jams")
    services.users.create_user("audrey", "password-1234", roles=["auditor"])
    services.session.flush()
    from app.errors import PermissionDenied
    with pytest.raises(PermissionDenied):
        services.knowledge.rate(services.users.get_by_username("audrey"), number, True)
    assert services.session.scalars(select(KnowledgeFeedback)).all() == []
