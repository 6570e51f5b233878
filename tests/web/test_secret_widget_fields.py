"""A form field drawn with the password widget is kept out of the session cookie whatever its name.

A refused form (app/web/refused_forms.py) and a form sent after its session ended
(app/web/unsent_forms.py) are kept in the signed, not encrypted, session cookie. Fields named like
passwords were always left out; a process owner's form may draw another field with the password
widget (a vendor PIN, a shared secret), and the form names those itself (one hidden
``refused_forms.SECRETS_FIELD`` per field), so they are left out too, while the form's answers
never see the list.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from app.web.refused_forms import KEY as REFUSED_KEY
from app.web.refused_forms import SECRETS_FIELD
from app.web.unsent_forms import KEY as UNSENT_KEY
from tests.http.desk import ROOT
from tests.web.conftest import WebClient, text_of
from tests.web.test_refused_form_secrets import cookie_session

PIN = "Vendor-PIN-80417"
PROBLEM = {"title": "VPN tunnels drop every morning", "description": "Between 08:30 and 09:00."}


def with_pin_field(services: Any) -> None:
    """problem_management's start form gains an optional ``vendor_pin`` drawn as a password."""
    schema = json.loads((ROOT / "forms" / "problem_management.start.json").read_text())
    schema["properties"]["vendor_pin"] = {"type": "string", "title": "Vendor PIN", "maxLength": 64}
    ui = json.loads((ROOT / "forms" / "problem_management.start.ui.json").read_text())
    ui["ui:order"] = [*ui["ui:order"], "vendor_pin"]
    ui["vendor_pin"] = {"ui:widget": "password"}
    services.definitions.deploy(services.users.get_by_username("olga"), [
        ("problem_management.start.json", json.dumps(schema).encode()),
        ("problem_management.start.ui.json", json.dumps(ui).encode())])
    services.session.commit()


def test_the_form_names_its_password_widget_fields(web: WebClient, desk: Any, services: Any) -> None:
    with_pin_field(services)
    web.login("alex")
    page = text_of(web.get("/start/problem_management"))
    assert 'type="password" id="f-vendor_pin" name="vendor_pin" value=""' in page
    assert f'<input type="hidden" name="{SECRETS_FIELD}" value="vendor_pin">' in page
    assert page.count(f'name="{SECRETS_FIELD}"') == 1  # the other fields are not secret


def test_a_refused_form_keeps_its_other_fields_but_not_the_pin(app: Any, web: WebClient, desk: Any,
                                                                 services: Any) -> None:
    with_pin_field(services)
    web.login("alex")
    answer = web.post("/start/problem_management", {"title": PROBLEM["title"], "description": "",
                                                     "vendor_pin": PIN, SECRETS_FIELD: "vendor_pin"})
    assert answer.status_code == 303
    held = cookie_session(app, web)
    kept = held[REFUSED_KEY]
    assert ["title", PROBLEM["title"]] in kept["values"] and "description" in kept["errors"]
    assert PIN not in repr(held)
    assert [name for name, _value in kept["values"] if name in ("vendor_pin", SECRETS_FIELD)] == []
    page = text_of(web.get("/start/problem_management"))
    assert PROBLEM["title"] in page and PIN not in page


def test_the_list_is_not_an_answer(web: WebClient, desk: Any, services: Any) -> None:
    """The process starts with the PIN as data, and without the form's list among its answers."""
    with_pin_field(services)
    web.login("alex")
    answer = web.post("/start/problem_management", {**PROBLEM, "vendor_pin": PIN, SECRETS_FIELD: "vendor_pin"})
    assert answer.status_code == 302, text_of(answer)
    number = answer.headers["Location"].rsplit("/", 1)[-1]
    record = desk.record(number)
    assert record["title"] == PROBLEM["title"]
    instance = services.instances.get(services.users.get_by_username("olga"), record["instance_id"])
    assert instance.data.get("vendor_pin") == PIN and SECRETS_FIELD not in instance.data


def test_a_form_sent_after_the_session_ended_is_kept_without_the_pin(app: Any, web: WebClient, desk: Any,
                                                                        services: Any, clock: Any) -> None:
    with_pin_field(services)
    web.login("alex")
    assert web.get("/start/problem_management").status_code == 200
    clock.advance(timedelta(minutes=31))  # past the idle timeout
    answer = web.post("/start/problem_management", {**PROBLEM, "vendor_pin": PIN, SECRETS_FIELD: "vendor_pin"},
                      headers={"Referer": "http://localhost/start/problem_management"})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    held = cookie_session(app, web)
    kept = held[UNSENT_KEY]
    assert ["title", PROBLEM["title"]] in kept["values"]
    assert PIN not in repr(held)
    assert [name for name, _value in kept["values"] if name in ("vendor_pin", SECRETS_FIELD)] == []
