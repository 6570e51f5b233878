"""Deleting an attached file on the record page: a Delete link for who may delete it only, a page
that asks first (its CSRF-checked POST form deletes), the flash afterwards, a second press, and
refusals in the page's language."""

from __future__ import annotations

import re

from tests.http.test_e2e_incident import triage
from tests.web.conftest import INCIDENT, text_of
from tests.web.test_record_attachments import LOG, send


def open_incident(desk) -> str:
    return desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]


def attached(web, number: str, filename: str = "vpn.log") -> int:
    sent = send(web, number, LOG, filename)
    assert sent.status_code == 302, text_of(sent)[-2000:]
    return int(re.search(r"#attachment-(\d+)$", sent.headers["Location"]).group(1))


def delete_form(page: str, number: str, attachment_id: int) -> str | None:
    """The record page's Delete link for the file (None without one)."""
    found = re.search(rf'<a href="/tickets/{number}/attachments/{attachment_id}/delete"[^>]*>(.*?)</a>', page, re.S)
    return found.group(1) if found else None


def confirm_form(page: str, number: str, attachment_id: int) -> str | None:
    found = re.search(rf'<form method="post" action="/tickets/{number}/attachments/{attachment_id}/delete"[^>]*>'
                      r"(.*?)</form>", page, re.S)
    return found.group(1) if found else None


def test_the_uploader_deletes_a_file_with_the_pages_button(web, desk, services):
    number = open_incident(desk)
    web.login("rita")
    attachment_id = attached(web, number)
    link = delete_form(text_of(web.get(f"/tickets/{number}")), number, attachment_id)
    assert link and link.startswith("Delete<") and "vpn.log" in link
    asked = web.get(f"/tickets/{number}/attachments/{attachment_id}/delete")  # the link asks first
    assert asked.status_code == 200
    form = confirm_form(text_of(asked), number, attachment_id)
    assert form and 'name="csrf_token"' in form and ">Delete<" in form and "vpn.log" in form
    assert "<h1 id=\"delete-title\">Delete <bdi>vpn.log</bdi>?</h1>" in text_of(asked) or "Delete vpn.log?" in text_of(asked)
    assert f'href="/tickets/{number}#attachments">Keep it</a>' in text_of(asked)
    rita = services.users.get_by_username("rita")
    assert [a.id for a in services.attachments.attachments(rita, number)] == [attachment_id]  # asking deletes nothing

    done = web.post(f"/tickets/{number}/attachments/{attachment_id}/delete")
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/tickets/{number}#attachments")
    page = text_of(web.get(f"/tickets/{number}"))
    assert "vpn.log was deleted." in page and "No files attached." in page
    assert web.get(f"/tickets/{number}/attachments/{attachment_id}").status_code == 404

    again = web.post(f"/tickets/{number}/attachments/{attachment_id}/delete")  # the button pressed twice
    assert again.status_code == 302
    assert "This file is no longer attached." in text_of(web.get(f"/tickets/{number}"))


def test_a_delete_without_the_forms_csrf_token_is_refused(web, desk, services):
    number = open_incident(desk)
    web.login("rita")
    attachment_id = attached(web, number)
    refused = web.post(f"/tickets/{number}/attachments/{attachment_id}/delete", csrf=False)
    assert refused.status_code == 403 and "Form expired" in text_of(refused)
    rita = services.users.get_by_username("rita")
    assert [a.id for a in services.attachments.attachments(rita, number)] == [attachment_id]


def test_only_who_may_delete_is_offered_the_button_and_others_are_told_why(web_factory, desk):
    number = open_incident(desk)
    triage(desk, number)  # NetworkTeam: nina's group
    rita, alex, nina, mona = web_factory(), web_factory(), web_factory(), web_factory()
    for client, name in ((rita, "rita"), (alex, "alex"), (nina, "nina"), (mona, "mona")):
        client.login(name)
    attachment_id = attached(rita, number)

    assert delete_form(text_of(alex.get(f"/tickets/{number}")), number, attachment_id) is None
    assert alex.get(f"/tickets/{number}/attachments/{attachment_id}/delete").status_code == 403  # nor the question
    refused = alex.post(f"/tickets/{number}/attachments/{attachment_id}/delete")
    assert refused.status_code == 302
    assert ("The file could not be deleted: only who attached a file, the agents of the record&#39;s group and "
            "admins may delete it") in text_of(alex.get(f"/tickets/{number}"))
    alex.post("/language", {"lang": "zh_CN"})
    alex.post(f"/tickets/{number}/attachments/{attachment_id}/delete")
    assert "无法删除附件：只有上传者、记录所在组的处理人员和管理员可以删除附件" in text_of(alex.get(f"/tickets/{number}"))

    # who may not see the record: not found, as the page itself
    assert mona.post(f"/tickets/{number}/attachments/{attachment_id}/delete").status_code == 404
    assert mona.get(f"/tickets/{number}/attachments/{attachment_id}/delete").status_code == 404

    assert delete_form(text_of(nina.get(f"/tickets/{number}")), number, attachment_id) is not None
    nina.post("/language", {"lang": "zh_CN"})
    nina.post(f"/tickets/{number}/attachments/{attachment_id}/delete")
    assert "已删除附件 vpn.log。" in text_of(nina.get(f"/tickets/{number}"))


def test_a_closed_record_offers_its_requester_no_delete_button(web, desk):
    number = open_incident(desk)
    web.login("rita")
    attachment_id = attached(web, number)
    svc = desk.services
    svc.instances.cancel(svc.users.get_by_username("alex"), svc.records.by_number(number).instance_id, "Raised twice")
    svc.session.commit()
    page = text_of(web.get(f"/tickets/{number}"))
    assert "vpn.log" in page and delete_form(page, number, attachment_id) is None
