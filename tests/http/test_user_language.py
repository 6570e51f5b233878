"""Each user's language (``User.locale``): chosen by the user (PATCH /api/v1/users/me, the account
page) or set by an admin (POST/PATCH /api/v1/users); only the languages the desk speaks, or null
(none chosen: the site's default), a bad one refused with 422 naming ``locale``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.errors import ValidationFailed
from app.models import AuditEvent
from tests.http.helpers import assert_error


def last_event(services, kind):
    return services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == kind)
                                    .order_by(AuditEvent.seq.desc())).first().payload


def test_an_admin_sets_and_clears_a_users_language(client, auth, services):
    set_ = client.patch("/api/v1/users/rita", json={"locale": "zh_CN"}, headers=auth("ada"))
    assert set_.status_code == 200, set_.get_json()
    assert set_.get_json()["locale"] == "zh_CN"
    services.session.expire_all()
    assert services.users.get_by_username("rita").locale == "zh_CN"
    assert last_event(services, "user_updated")["changes"]["locale"] == {"before": None, "after": "zh_CN"}
    cleared = client.patch("/api/v1/users/rita", json={"locale": None}, headers=auth("ada"))
    assert cleared.status_code == 200 and cleared.get_json()["locale"] is None
    other = client.patch("/api/v1/users/rita", json={"display_name": "Rita"}, headers=auth("ada"))
    assert other.get_json()["locale"] is None  # not named: stays


def test_an_admin_creates_a_user_with_a_language(client, auth):
    made = client.post("/api/v1/users", json={"username": "lin", "password": "a-long-password", "locale": "zh_CN"},
                       headers=auth("ada"))
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["locale"] == "zh_CN"


@pytest.mark.parametrize("bad", ["fr", "zh", "zh-CN", "", 7, ["en"]])
def test_a_language_the_desk_does_not_speak_is_refused_naming_the_field(client, auth, bad):
    body = assert_error(client.patch("/api/v1/users/rita", json={"locale": bad}, headers=auth("ada")), 422)
    assert set(body["details"]["fields"]) == {"locale"}
    body = assert_error(client.post("/api/v1/users", json={"username": "lin", "password": "a-long-password",
                                                           "locale": bad}, headers=auth("ada")), 422)
    assert set(body["details"]["fields"]) == {"locale"}
    body = assert_error(client.patch("/api/v1/users/me", json={"locale": bad}, headers=auth("rita")), 422)
    assert set(body["details"]["fields"]) == {"locale"}


def test_only_admins_set_another_users_language(client, auth, services):
    assert_error(client.patch("/api/v1/users/rita", json={"locale": "zh_CN"}, headers=auth("alex")), 403)
    assert_error(client.patch("/api/v1/users/rita", json={"locale": "zh_CN"}, headers=auth("aude")), 403)
    services.session.expire_all()
    assert services.users.get_by_username("rita").locale is None


@pytest.mark.parametrize("who", ["rita", "alex", "aude", "ada"])
def test_everyone_chooses_their_own_language(client, auth, services, who):
    answer = client.patch("/api/v1/users/me", json={"locale": "zh_CN"}, headers=auth(who))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["username"] == who and answer.get_json()["locale"] == "zh_CN"
    assert client.get("/api/v1/users/me", headers=auth(who)).get_json()["locale"] == "zh_CN"
    assert last_event(services, "user_locale_changed") == {"locale": "zh_CN"}
    assert client.patch("/api/v1/users/me", json={"locale": None}, headers=auth(who)).get_json()["locale"] is None
    body = assert_error(client.patch("/api/v1/users/me", json={}, headers=auth(who)), 422)
    assert set(body["details"]["fields"]) == {"locale"}
    body = assert_error(client.patch("/api/v1/users/me", json={"locale": "en", "roles": ["admin"]},
                                     headers=auth(who)), 422)  # nothing else of one's own profile
    assert set(body["details"]["fields"]) == {"roles"}


def test_the_service_refuses_a_language_it_does_not_speak(services, users):
    with pytest.raises(ValidationFailed) as refused:
        services.users.set_locale(users["rita"], "xx")
    assert set(refused.value.details["fields"]) == {"locale"}
    with pytest.raises(ValidationFailed) as refused:
        services.users.update_user(users["ada"], "rita", {"locale": "xx"})
    assert set(refused.value.details["fields"]) == {"locale"}
