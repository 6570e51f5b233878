"""A choice field refused: the API names the values a client must send, a page the titles its user picks.

The message of a wrong choice is made once (app/services/forms.py ``_message_for``): its text, what
the API answers, lists the choices' values; its parts keep the titles, which app/web/forms.py says
in the page's language with its list separator ("、" in Chinese).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import ValidationFailed
from app.services.forms import FormMessage, validate_submission
from tests.web.conftest import INCIDENT, text_of
from tests.web.test_content_i18n import chinese, shown

SIZES: dict[str, Any] = {"type": "object", "properties": {
    "size": {"type": "string", "title": "Size", "oneOf": [{"const": "s", "title": "Small"},
                                                         {"const": "l", "title": "Large"}]},
    "count": {"type": "integer", "title": "Count", "enum": [1, 2]},
    "flag": {"title": "Flag", "oneOf": [{"const": True, "title": "On"}, {"const": None, "title": "Unset"}]},
    "tags": {"type": "array", "title": "Tags",
             "items": {"type": "string", "oneOf": [{"const": "a", "title": "Alpha"}]}},
}}


def refusal(data: dict[str, Any]) -> dict[str, list[Any]]:
    with pytest.raises(ValidationFailed) as refused:
        validate_submission(SIZES, None, data, {})
    return refused.value.details["fields"]  # type: ignore[no-any-return]


def test_the_message_lists_the_values_and_keeps_the_titles_for_pages():
    fields = refusal({"size": "Small", "count": 3, "flag": False, "tags": ["Alpha"]})
    size = fields["size"][0]
    assert size == "must be one of: s, l"
    assert isinstance(size, FormMessage) and size.kind == "one_of"
    assert size.parts == {"choices": ["Small", "Large"], "values": ["s", "l"]}
    assert fields["count"] == ["must be one of: 1, 2"]  # enum: value and title are one
    assert fields["flag"] == ["must be one of: true, null"]  # values in their JSON spelling
    assert fields["tags"] == ["each item must be one of: a"]
    assert fields["tags"][0].parts["item"].parts["choices"] == ["Alpha"]


def test_the_api_names_the_values_to_send(desk):
    answer = desk.client.post("/api/v1/instances", headers=desk.auth("rita"), json={
        "process_id": "incident_management", "data": {**INCIDENT, "category": "Hardware"}})
    assert answer.status_code == 422
    assert answer.get_json()["details"]["fields"]["category"] == [
        "must be one of: hardware, software, network, human, system"]
    # what it says is what it takes
    started = desk.client.post("/api/v1/instances", headers=desk.auth("rita"), json={
        "process_id": "incident_management", "data": {**INCIDENT, "category": "hardware"}})
    assert started.status_code == 201, started.get_json()


def test_a_page_names_the_titles_in_english_and_in_chinese(web, desk):
    form = {**INCIDENT, "category": "Hardware"}  # a tampered post: a page offers only the choices
    web.login("rita")
    refused = web.post("/start/incident_management", form)
    assert refused.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    refused = web.get(refused.headers["Location"])
    text = shown(text_of(refused))
    assert "must be one of: Hardware, Software, Network, Human error, System" in text
    assert "hardware, software" not in text
    web.logout()
    chinese(web, "rita")
    refused = web.post("/start/incident_management", form)
    assert refused.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    refused = web.get(refused.headers["Location"])
    text = shown(text_of(refused))
    assert "必须是以下之一：硬件、软件、网络、" in text, text
    assert "hardware" not in text.split("必须是以下之一：", 1)[1][:40]
