"""Knowledge search words are literal text, as in ticket search: ``%`` and ``_`` match only
themselves, never any run of characters or any one character."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture()
def articles(services: Any, users: dict[str, Any]) -> None:
    for title, symptoms in [("queue_stuck", "messages wait in the outbound queue"),
                            ("Disk 100% full", "the backup volume is full"),
                            ("Printer offline", "PR-204 does not answer"),
                            (r"Path C:\temp missing", "the installer fails")]:
        services.knowledge.publish(users["olga"], title=title, symptoms=symptoms, cause="", workaround="", source=None)
    services.session.commit()


def titles(client: Any, auth: Any, q: str) -> set[str]:
    response = client.get("/api/v1/knowledge", query_string={"q": q}, headers=auth("rita"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["total"] == len(body["items"])
    return {item["title"] for item in body["items"]}


def test_percent_and_underscore_match_only_themselves(client, auth, articles):
    assert titles(client, auth, "_") == {"queue_stuck"}
    assert titles(client, auth, "%") == {"Disk 100% full"}
    assert titles(client, auth, "q_eue") == set()
    assert titles(client, auth, "queue_stuck") == {"queue_stuck"}
    assert titles(client, auth, "100%") == {"Disk 100% full"}
    assert titles(client, auth, "1%0") == set()
    assert titles(client, auth, "__") == set()
    assert titles(client, auth, "%%") == set()
    # ordinary words still match any field, every word must match
    assert titles(client, auth, "QUEUE") == {"queue_stuck"}
    assert titles(client, auth, "outbound") == {"queue_stuck"}
    assert titles(client, auth, "printer pr-204") == {"Printer offline"}
    assert titles(client, auth, "printer backup") == set()


def test_the_escape_character_is_literal_too(client, auth, articles):
    assert titles(client, auth, "\\") == {r"Path C:\temp missing"}
    assert titles(client, auth, r"c:\temp") == {r"Path C:\temp missing"}
    assert titles(client, auth, "\\_") == set()

