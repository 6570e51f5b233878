"""/notifications: the signed-in user's own in-app notifications (never another user's), newest
first and paged, all or unread only, marked read one by one or all at once by CSRF-checked forms;
a notification links to its record only for a user who may open that record. The header counts
the unread ones; the account page turns email notifications off and on again (audited)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from app.models import AuditEvent, Notification
from tests.web.conftest import INCIDENT, text_of


def notify(services: Any, username: str, subject: str, body: str = "", ticket: Any = None) -> int:
    """One in-app notification for ``username`` through the service the process steps use; its id."""
    user = services.users.get_by_username(username)
    services.notifications.notify([user], "process.notify", subject, body, ticket=ticket)
    services.session.commit()
    return int(services.session.scalar(select(Notification.id).where(Notification.user_id == user.id)
                                       .order_by(Notification.id.desc()).limit(1)))


def read_at(services: Any, note_id: int) -> Any:
    services.session.expire_all()
    return services.session.get(Notification, note_id).read_at


def subjects(page: str) -> list[str]:
    return re.findall(r'<h2 class="notice-subject">(?:<bdi>)?(.*?)(?:</bdi>)?</h2>', page)


def header_link(page: str) -> str:
    """The header's notifications link, whole."""
    match = re.search(r'<a class="notes-link".*?</a>', page, flags=re.S)
    assert match, "no notifications link in the header"
    return match.group(0)


def test_the_list_shows_my_notifications_newest_first_and_never_anothers(web, desk, services):
    notify(services, "rita", "First note")
    notify(services, "rita", "Second <b>note</b>", "Line one\nLine <script>two</script>")
    notify(services, "bob", "Bob's own note")
    web.login("rita")
    response = web.get("/notifications")
    assert response.status_code == 200
    page = text_of(response)
    assert subjects(page) == ["Second &lt;b&gt;note&lt;/b&gt;", "First note"]
    assert "Bob" not in page
    # the body is plain text: escaped, its line break kept for the stylesheet (pre-line)
    assert "Line one\nLine &lt;script&gt;two&lt;/script&gt;</p>" in page and "<script>two" not in page
    assert page.count('class="notice notice-unread"') == 2
    link = header_link(page)
    assert '<span class="visually-hidden">Notifications, 2 unread</span>' in link
    assert '<span class="badge notes-count" aria-hidden="true">2</span>' in link
    assert 'aria-current="page"' in link


def test_no_badge_without_unread_notifications(web, desk, services):
    web.login("rita")
    link = header_link(text_of(web.get("/")))
    assert '<span class="visually-hidden">Notifications</span>' in link and "notes-count" not in link
    assert "You have no notifications yet." in text_of(web.get("/notifications"))


def test_the_unread_filter_leaves_out_read_ones(web, desk, services):
    old = notify(services, "rita", "Already read")
    notify(services, "rita", "Still unread")
    web.login("rita")
    assert web.post(f"/notifications/{old}/read").status_code == 302
    unread = text_of(web.get("/notifications?unread=1"))
    assert subjects(unread) == ["Still unread"]
    assert re.search(r'id="tab-unread" aria-current="page">Unread <span class="badge">1</span>', unread)
    everything = text_of(web.get("/notifications"))
    assert subjects(everything) == ["Still unread", "Already read"]
    assert everything.count("notice-unread") == 1


def test_the_list_is_paged(web, desk, services, monkeypatch, app):
    monkeypatch.setitem(app.config, "PER_PAGE_DEFAULT", 2)
    for n in range(5):
        notify(services, "rita", f"Note {n}")
    web.login("rita")
    first = text_of(web.get("/notifications"))
    assert subjects(first) == ["Note 4", "Note 3"] and "Page 1 of 3" in first
    assert subjects(text_of(web.get("/notifications?page=3"))) == ["Note 0"]
    web.post(f"/notifications/{notify(services, 'rita', 'Note 5')}/read")
    assert 'href="/notifications?page=2&amp;unread=1"' in text_of(web.get("/notifications?unread=1"))


def test_mark_one_read_goes_back_and_only_for_my_own(web, desk, services):
    mine = notify(services, "rita", "Mine")
    other = notify(services, "rita", "Mine too")
    bobs = notify(services, "bob", "Bob's")
    web.login("rita")
    done = web.post(f"/notifications/{mine}/read", {"next": "/notifications?unread=1"})
    assert done.status_code == 302 and done.headers["Location"] == "/notifications?unread=1"
    assert read_at(services, mine) is not None and read_at(services, other) is None
    # another user's notification is "not found", and stays unread
    assert web.post(f"/notifications/{bobs}/read").status_code == 404
    assert read_at(services, bobs) is None
    # a form without its CSRF token changes nothing
    assert web.post(f"/notifications/{other}/read", csrf=False).status_code == 403
    assert read_at(services, other) is None
    # an address off the site is not followed
    assert web.post(f"/notifications/{other}/read", {"next": "//evil.example"}).headers["Location"] == "/notifications"


def test_mark_all_read_marks_mine_only(web, desk, services):
    ids = [notify(services, "rita", f"Note {n}") for n in range(3)]
    bobs = notify(services, "bob", "Bob's")
    web.login("rita")
    assert web.post("/notifications/read-all", csrf=False).status_code == 403
    assert all(read_at(services, i) is None for i in ids)
    done = web.post("/notifications/read-all", {"next": "/notifications"})
    assert done.status_code == 302 and done.headers["Location"] == "/notifications"
    assert all(read_at(services, i) is not None for i in ids)
    assert read_at(services, bobs) is None
    page = text_of(web.get("/notifications"))
    assert "All your notifications are marked as read." in page
    assert "notice-unread" not in page and "notes-count" not in header_link(page)


def test_a_record_is_linked_only_for_who_may_open_it(web_factory, desk, services):
    number = desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]
    ticket = services.records.by_number(number)
    notify(services, "rita", f"About {number}", ticket=ticket)
    notify(services, "bob", f"About {number}", ticket=ticket)
    rita, bob = web_factory(), web_factory()
    rita.login("rita")
    bob.login("bob")
    assert f'href="/tickets/{number}"' in text_of(rita.get("/notifications"))
    bobs = text_of(bob.get("/notifications"))
    assert f"About {number}" in bobs and f'href="/tickets/{number}"' not in bobs
    assert bob.get(f"/tickets/{number}").status_code == 404  # the page a link would have led to


def test_the_account_page_turns_email_notifications_off_and_on(web, desk, services):
    rita = services.users.get_by_username("rita")
    web.login("rita")
    page = text_of(web.get("/account"))
    assert re.search(r'name="email" value="on" checked', page)
    assert web.post("/account/notifications", {"email": "off"}, csrf=False).status_code == 403
    services.session.refresh(rita)
    assert rita.email_opt_out is False

    done = web.post("/account/notifications", {"email": "off"})
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    services.session.refresh(rita)
    assert rita.email_opt_out is True
    page = text_of(web.get("/account"))
    assert "You will no longer receive notifications by email." in page
    assert re.search(r'name="email" value="off" checked', page)
    events = services.session.scalars(select(AuditEvent).where(
        AuditEvent.event_type == "notification_preferences_changed")).all()
    assert [(e.actor, e.payload) for e in events] == [("rita", {"email_opt_out": True})]

    assert web.post("/account/notifications", {}).status_code == 422  # no choice: nothing changes
    services.session.refresh(rita)
    assert rita.email_opt_out is True
    web.post("/account/notifications", {"email": "on"})
    services.session.refresh(rita)
    assert rita.email_opt_out is False
    assert "You will receive notifications by email." in text_of(web.get("/account"))


def test_the_pages_in_chinese(web, desk, services):
    notify(services, "rita", "VPN 已恢复")
    web.login("rita")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get("/notifications"))
    assert "<h1>通知</h1>" in page and "标记为已读" in page and "全部标记为已读" in page
    assert '<span class="visually-hidden">通知，1 条未读</span>' in header_link(page)
    account = text_of(web.get("/account"))
    assert "电子邮件通知" in account and "同时通过电子邮件接收" in account
    web.post("/account/notifications", {"email": "off"})
    assert "您将不再通过电子邮件接收通知。" in text_of(web.get("/account"))


def test_marking_the_last_one_on_the_last_page_read_goes_to_the_page_before(web, desk, services, monkeypatch, app):
    """Unread, page 2 of 2, one notification: marked read, it leaves page 2 empty. The user lands
    on the last page there is (the unread she still has), not on an empty page that says she has
    none."""
    monkeypatch.setitem(app.config, "PER_PAGE_DEFAULT", 2)
    notes = [notify(services, "rita", f"Note {n}") for n in range(3)]
    web.login("rita")
    page_two = text_of(web.get("/notifications?unread=1&page=2"))
    assert subjects(page_two) == ["Note 0"]
    done = web.post(f"/notifications/{notes[0]}/read", {"next": "/notifications?unread=1&page=2"},
                    follow_redirects=True)
    shown = text_of(done)
    assert subjects(shown) == ["Note 2", "Note 1"]
    assert "You have no unread notifications." not in shown
    assert '<a href="/notifications?unread=1" id="tab-unread" aria-current="page">' in shown
    # past the end of every notification, the last page as well
    assert subjects(text_of(web.get("/notifications?page=9", follow_redirects=True))) == ["Note 0"]
