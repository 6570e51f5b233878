"""Form hardening on the pages: the refusal is shown beside the field, in English and in Chinese.

Text holding a bidirectional formatting control (U+202E ...), a person the requester may not name
(the same words as for nobody, with their own name offered for a typo of it) and a time that
has not happened yet are each said next to the control that holds them.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from app.services.forms import FormMessage
from app.web.forms import service_text
from tests.web.conftest import INCIDENT, text_of

RLO = "\u202e"
VPN = {"profile": "employee", "justification": "Working from home on Fridays."}


def field_error(page: str, control_id: str) -> str:
    """The error paragraph shown beside control ``control_id`` (its text, unescaped)."""
    match = re.search(rf'<p class="field-error" id="{control_id}-error">(.*?)</p>', page, re.S)
    assert match, f"no error beside {control_id}"
    shown = re.sub(r'<span class="visually-hidden">.*?</span>', "", match.group(1), flags=re.S)  # "Error:"
    return html.unescape(re.sub(r"<[^>]+>", "", shown)).strip()


def incident_form(**changes: str) -> dict[str, str]:
    return {**{key: INCIDENT[key] for key in ("title", "description", "category", "impact", "urgency")}, **changes}


@pytest.mark.parametrize(("lang", "said"), [
    ("en", "must not contain bidirectional control characters (U+202E)"),
    ("zh_CN", "不能包含双向文本控制字符（U+202E）"),
])
def test_a_start_form_says_the_control_beside_the_field(web, desk, lang, said):
    web.post("/language", {"lang": lang})
    web.login("rita")
    response = web.post("/start/incident_management", incident_form(title=f"invoice{RLO}fdp.exe"))
    assert response.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    response = web.get(response.headers["Location"])
    page = text_of(response)
    assert field_error(page, "f-title") == said
    assert 'id="f-description-error"' not in page


@pytest.mark.parametrize(("lang", "stranger", "typo"), [
    ("en", "zed is not a user you can name here", "rtia is not a user you can name here; did you mean rita?"),
    ("zh_CN", "zed 不是您在此可以填写的用户", "rtia 不是您在此可以填写的用户；您是想填写 rita 吗？"),
])
def test_the_vpn_page_does_not_tell_who_exists(web, desk, services, lang, stranger, typo):
    services.users.create_user("zed", "password-1234", roles=["requester"], groups=["Finance"])
    services.session.commit()
    web.post("/language", {"lang": lang})
    web.login("rita")
    for name, said in (("zed", stranger), ("zee", stranger.replace("zed", "zee")), ("rtia", typo)):
        response = web.post("/catalog/NET-VPN", {**VPN, "for_user": name})
        assert response.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
        response = web.get(response.headers["Location"])
        assert field_error(text_of(response), "f-for_user") == said


@pytest.mark.parametrize(("lang", "said"), [("en", "cannot be in the future"), ("zh_CN", "不能是将来的时间")])
def test_a_time_in_the_future_is_said_in_the_pages_language(app: Any, lang, said):
    message = FormMessage("cannot be in the future", "in_future", value="2026-01-05T09:05:00Z")
    with app.test_request_context("/", headers={"Accept-Language": lang.replace("_", "-")}):
        assert service_text(message) == said
