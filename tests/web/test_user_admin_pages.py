"""The user administration pages: an admin finds, creates, edits, deactivates users and manages
groups through the forms (each with the CSRF token); auditors read; others get 403 and no link."""

from __future__ import annotations

import html
import os
import re
from typing import Any

from sqlalchemy import select

from app.models import AuditEvent
from tests.web.conftest import PASSWORD, text_of


def refused(web: Any, url: str, form: dict[str, Any], page: str | None = None, **kwargs: Any) -> str:
    """Post a form that is refused: answered with a redirect (303) to its page (``url`` unless
    given), whose next rendering is returned; the one after shows the refusal no more."""
    answer = web.post(url, form, **kwargs)
    assert answer.status_code == 303, (answer.status_code, text_of(answer)[:300])
    # to the page, at the refused form (its fragment: the page is long)
    assert answer.headers["Location"].split("#")[0] == (page or url)
    shown = text_of(web.get(page or url, **kwargs))
    assert 'class="field has-error"' not in text_of(web.get(page or url, **kwargs))  # once
    return shown


def csrf_fields(page: str) -> list[str]:
    forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", page, flags=re.S)
    return [form for form in forms if 'name="csrf_token"' not in form]


def test_an_admin_creates_a_user_then_deactivates_them(web, web_factory, desk, services):
    web.login("ada")
    home = text_of(web.get("/"))
    assert 'href="/admin/users"' in home  # the nav link

    listing = text_of(web.get("/admin/users?q=rita"))
    assert "rita" in listing and "Users found: 1" in listing and "nina" not in listing
    by_role = text_of(web.get("/admin/users?role=auditor"))
    assert "aude" in by_role and "Users found: 1" in by_role

    form = text_of(web.get("/admin/users/new"))
    assert not csrf_fields(form) and 'name="password_again"' in form
    taken = refused(web, "/admin/users/new", {"username": "Rita", "password": "long-password-1",
                                               "password_again": "long-password-1"})
    assert "exists already" in taken and 'value="Rita"' in taken
    differ = refused(web, "/admin/users/new", {"username": "nora", "password": "long-password-1",
                                               "password_again": "other-password-1", "roles": ["agent"]})
    assert "The two passwords differ." in differ and 'value="nora"' in differ
    assert re.search(r'value="agent" checked', differ) and not re.search(r'value="requester" checked', differ)
    assert "long-password-1" not in differ and "other-password-1" not in differ
    bad = refused(web, "/admin/users/new", {"username": "nora", "password": "short", "password_again": "short",
                                            "email": "nope"})
    assert "Use at least 8 characters." in bad and "This is not an email address." in bad

    made = web.post("/admin/users/new", {"username": "nora", "display_name": "Nora New", "email": "nora@example.test",
                                         "password": "long-password-1", "password_again": "long-password-1",
                                         "roles": ["agent", "requester"], "groups": ["ServiceDesk"], "manager": "mona"})
    assert made.status_code == 302 and made.headers["Location"] == "/admin/users/nora"
    page = text_of(web.get("/admin/users/nora"))
    assert "User nora was created." in page and "Nora New" in page and not csrf_fields(page)
    assert re.search(r'value="agent" checked', page) and re.search(r'value="ServiceDesk" checked', page)

    nora = web_factory()
    nora.login("NORA", "long-password-1")  # any letter case
    assert "Nora New" in text_of(nora.get("/"))
    assert 'href="/admin/users"' not in text_of(nora.get("/"))

    saved = web.post("/admin/users/nora", {"display_name": "Nora New", "email": "nora@example.test",
                                           "roles": ["agent", "requester"], "groups": ["ServiceDesk"],
                                           "manager": "mona"})  # "active" unticked
    assert saved.status_code == 302
    assert "is deactivated" in text_of(web.get("/admin/users/nora"))
    assert nora.get("/").status_code == 302  # signed out: the session ended
    assert nora.post("/login", {"username": "nora", "password": "long-password-1"}).status_code == 401
    assert "nora" in text_of(web.get("/admin/users?active=0"))
    kinds = [e.event_type for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type.like("user_%")).order_by(AuditEvent.seq))]
    assert kinds[-2:] == ["user_created", "user_deactivated"]


def test_an_admin_cannot_deactivate_themselves_or_drop_the_last_admin_role(web, desk):
    web.login("ada")
    own = web.post("/admin/users/ada", {"display_name": "ada", "roles": ["admin"]})
    assert own.status_code == 303 and "You cannot deactivate your own account." in text_of(web.get("/admin/users/ada"))
    last = web.post("/admin/users/ada", {"display_name": "ada", "roles": ["agent"], "active": "1"})
    assert last.status_code == 303
    page = text_of(web.get("/admin/users/ada"))
    assert "no active administrator" in page
    assert re.search(r'value="agent" checked', page) and not re.search(r'value="admin" checked', page)  # as sent
    assert re.search(r'value="admin" checked', text_of(web.get("/admin/users/ada")))  # once: then as she is
    assert 'href="/admin/users"' in text_of(web.get("/"))  # still an admin


def test_an_admin_resets_a_password_and_manages_a_group(web, web_factory, desk):
    web.login("ada")
    rita = web_factory()
    rita.login("rita")
    differ = refused(web, "/admin/users/rita/password", {"password": "new-password-1", "password_again": "x"},
                     page="/admin/users/rita")
    assert "The two passwords differ." in differ and "new-password-1" not in differ
    short = refused(web, "/admin/users/rita/password", {"password": "short", "password_again": "short"},
                    page="/admin/users/rita")
    assert "Use at least 8 characters." in short
    assert web.post("/admin/users/ghost/password", {"password": "new-password-1", "password_again": "x"}).status_code == 404
    reset = web.post("/admin/users/rita/password", {"password": "new-password-1", "password_again": "new-password-1"})
    assert reset.status_code == 302
    assert rita.get("/").status_code == 302  # her session ended
    rita.login("rita", "new-password-1")

    groups = text_of(web.get("/admin/groups"))
    assert "ServiceDesk" in groups and not csrf_fields(groups)
    taken = refused(web, "/admin/groups", {"name": "servicedesk", "description": "Again"})
    assert "exists already" in taken and 'value="servicedesk"' in taken and 'value="Again"' in taken
    made = web.post("/admin/groups", {"name": "Payroll", "description": "Pay questions", "manager": "mona"})
    assert made.status_code == 302 and made.headers["Location"] == "/admin/groups/Payroll"
    ghost = refused(web, "/admin/groups/Payroll/members", {"username": "ghost"}, page="/admin/groups/Payroll")
    assert "There is no user ghost." in ghost and 'value="ghost"' in ghost
    bad_manager = refused(web, "/admin/groups/Payroll", {"description": "Kept words", "manager": "ghost"})
    assert "There is no user ghost." in bad_manager and 'value="Kept words"' in bad_manager
    assert web.post("/admin/groups/Payroll/members", {"username": "Rita"}).status_code == 302
    page = text_of(web.get("/admin/groups/Payroll"))
    assert "rita is now a member of Payroll." in page  # her name as it is spelled, not as typed
    assert "rita" in page and "Pay questions" in page and not csrf_fields(page)
    # adding her again changes nothing, and the page says so
    assert web.post("/admin/groups/payroll/members", {"username": "RITA"}).status_code == 302
    again = text_of(web.get("/admin/groups/Payroll"))
    assert "rita is a member of Payroll already." in again and "is now a member" not in again
    assert web.post("/admin/groups/Payroll", {"description": "Salaries", "manager": ""}).status_code == 302
    assert web.post("/admin/groups/Payroll/members/remove", {"username": "rita"}).status_code == 302
    page = text_of(web.get("/admin/groups/Payroll"))
    assert "Salaries" in page and "The group has no members." in page and "rita was removed from Payroll." in page
    assert web.post("/admin/groups/Payroll/members/remove", {"username": "rita"}).status_code == 302
    assert "rita was not a member of Payroll." in text_of(web.get("/admin/groups/Payroll"))


def test_others_get_403_and_no_link_and_auditors_read_without_forms(web, web_factory, desk, services):
    web.login("rita")
    assert 'href="/admin/users"' not in text_of(web.get("/"))
    for path in ("/admin/users", "/admin/users/new", "/admin/users/alex", "/admin/groups", "/admin/groups/CAB"):
        assert web.get(path).status_code == 403, path
    assert web.post("/admin/users/alex", {"display_name": "x"}).status_code == 403
    assert web.post("/admin/groups", {"name": "Sneaky"}).status_code == 403
    refused = [e.payload["action"] for e in services.session.scalars(
        select(AuditEvent).where(AuditEvent.event_type == "access_denied", AuditEvent.actor == "rita"))]
    assert {"list_users", "create_user", "read_user", "update_user", "create_group"} <= set(refused)

    aude = web_factory()
    aude.login("aude")
    page = text_of(aude.get("/admin/users/alex"))
    assert aude.get("/admin/users").status_code == 200 and "ServiceDesk" in page
    assert 'href="/admin/users"' in text_of(aude.get("/"))  # the auditor's nav leads there too
    assert 'id="user-form"' not in page and 'id="password-form"' not in page
    assert aude.post("/admin/users/alex/password", {"password": PASSWORD, "password_again": PASSWORD}).status_code == 403
    # a form the page itself refuses (two passwords that differ, an unticking not confirmed) is
    # theirs no more than one the service refuses: 403, and nothing kept for the page
    assert aude.post("/admin/users/alex/password", {"password": PASSWORD, "password_again": "x"}).status_code == 403
    assert aude.post("/admin/users/alex", {"was_sent": "1", "was_active": "1", "display_name": "alex"}).status_code == 403
    assert aude.post("/admin/users/new", {"username": "x", "password": PASSWORD, "password_again": "y"}).status_code == 403
    assert 'class="field has-error"' not in text_of(aude.get("/admin/users/alex"))
    assert aude.get("/admin/users/new").status_code == 403


def test_a_form_without_the_csrf_token_changes_nothing(web, desk, services):
    web.login("ada")
    forged = web.post("/admin/users/alex", {"display_name": "Forged", "active": "1"}, csrf=False)
    assert forged.status_code == 403
    services.session.expire_all()
    assert services.users.get_by_username("alex").display_name == "alex"


def form_as_sent(page: str, form_id: str) -> dict[str, list[str]]:
    """The fields a browser sends for the form ``form_id`` as the page shows it (hidden fields,
    text inputs, ticked boxes), without the CSRF token (the client adds its own)."""
    form = re.search(rf'<form[^>]*id="{form_id}"[^>]*>(.*?)</form>', page, flags=re.S)
    assert form, form_id
    sent: dict[str, list[str]] = {}
    for tag in re.findall(r"<input[^>]*>", form.group(1)):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if not name or name.group(1) == "csrf_token":
            continue
        if kind and kind.group(1) in ("checkbox", "radio") and " checked" not in tag:
            continue
        sent.setdefault(name.group(1), []).append(html.unescape(value.group(1)) if value else "")
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form.group(1), flags=re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*\sselected', options)
        sent[name] = [html.unescape(chosen.group(1)) if chosen else ""]
    return sent


def test_a_form_opened_before_someone_elses_change_saves_only_what_was_changed_on_it(web, desk, services):
    """A page opened while alex was active, saved after he was deactivated elsewhere (the command
    line), with only his display name changed: alex stays deactivated and keeps the roles and
    groups changed meanwhile. Before, the stale form re-activated the leaver."""
    web.login("ada")
    sent = form_as_sent(text_of(web.get("/admin/users/alex")), "user-form")
    assert sent["active"] == ["1"] and sent["was_active"] == ["1"]
    ada = services.users.get_by_username("ada")
    services.users.update_user(ada, "alex", {"groups": ["ServiceDesk", "CAB"]})  # another admin adds a group
    services.users.deactivate_user(ada, "alex")  # (a leaver joins no group: before, not after)
    services.session.commit()

    sent["display_name"] = ["Alex A."]
    sent["roles"] = [*sent["roles"], "approver"]  # ticked on this page
    saved = web.post("/admin/users/alex", sent)
    assert saved.status_code == 302, text_of(saved)[:500]
    services.session.expire_all()
    alex = services.users.get_by_username("alex")
    assert alex.display_name == "Alex A." and alex.active is False  # still a leaver
    assert "CAB" in alex.group_names and "approver" in alex.roles and "agent" in alex.roles
    # saved again as shown, nothing changed: nothing to do, nothing audited
    before = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type.like("user_%"))).all()
    again = web.post("/admin/users/alex", form_as_sent(text_of(web.get("/admin/users/alex")), "user-form"))
    assert again.status_code == 302
    services.session.expire_all()
    assert len(services.session.scalars(select(AuditEvent).where(AuditEvent.event_type.like("user_%"))).all()) == len(before)


def test_unticking_active_asks_to_confirm_before_deactivating(web, desk, services):
    web.login("ada")
    form = {"was_sent": "1", "was_active": "1", "was_display_name": "rita", "display_name": "rita",
            "roles": ["requester"], "was_roles": ["requester"]}
    page = refused(web, "/admin/users/rita", form, headers={"Accept-Language": "zh-CN"})
    assert 'name="confirm_deactivate" value="yes" required' in page and "是，停用 rita" in page
    assert services.users.get_by_username("rita").active  # nothing saved
    done = web.post("/admin/users/rita", {**form, "confirm_deactivate": "yes"})
    assert done.status_code == 302
    services.session.expire_all()
    assert not services.users.get_by_username("rita").active


def test_an_admin_sets_a_users_language_and_a_stale_form_keeps_the_one_chosen_meanwhile(web, desk, services):
    web.login("ada")
    sent = form_as_sent(text_of(web.get("/admin/users/rita")), "user-form")
    assert sent["locale"] == [""] and sent["was_locale"] == [""]  # none chosen yet
    page = refused(web, "/admin/users/rita", {**sent, "locale": "xx"})
    assert 'class="field has-error"' in page and 'id="field-locale"' in page
    services.session.expire_all()
    assert services.users.get_by_username("rita").locale is None  # nothing saved

    saved = web.post("/admin/users/rita", {**sent, "locale": "zh_CN"})
    assert saved.status_code == 302
    services.session.expire_all()
    assert services.users.get_by_username("rita").locale == "zh_CN"
    assert '<option value="zh_CN" lang="zh-CN" selected>' in text_of(web.get("/admin/users/rita"))

    # a page opened now, saved after English was chosen for her elsewhere, with only her name changed
    stale = form_as_sent(text_of(web.get("/admin/users/rita")), "user-form")
    services.users.update_user(services.users.get_by_username("ada"), "rita", {"locale": "en"})  # another page
    services.session.commit()
    stale["display_name"] = ["Rita R."]
    assert web.post("/admin/users/rita", stale).status_code == 302
    services.session.expire_all()
    rita = services.users.get_by_username("rita")
    assert rita.display_name == "Rita R." and rita.locale == "en"


def test_a_refused_form_too_large_for_the_session_cookie_is_answered_in_place(web, desk):
    """Text that does not compress (random letters) past the cookie's room: nothing is kept, the
    page answers itself (422) with the input, as before the redirect."""
    web.login("ada")
    long_text = os.urandom(3000).hex()  # 6,000 characters
    new = web.post("/admin/users/new", {"username": "nora", "display_name": long_text, "roles": ["agent"],
                                        "password": "long-password-1", "password_again": "long-password-1"})
    assert new.status_code == 422 and long_text in text_of(new) and 'value="nora"' in text_of(new)
    assert re.search(r'value="agent" checked', text_of(new))
    edit = web.post("/admin/users/rita", {"display_name": long_text, "roles": ["requester"], "active": "1"})
    assert edit.status_code == 422 and long_text in text_of(edit)
    group = web.post("/admin/groups/CAB", {"description": long_text, "manager": "ghost"})
    assert group.status_code == 422 and long_text in text_of(group)
    assert 'class="field has-error"' not in text_of(web.get("/admin/users/new"))  # nothing was kept for later
