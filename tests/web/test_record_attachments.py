"""Files attached on the record page: the list, the upload form (CSRF-checked like every form),
its errors beside the field, and who is offered the form."""

from __future__ import annotations

import io
import re

from tests.web.conftest import INCIDENT, PASSWORD, refused_to, text_of

LOG = b"Tunnel lost at 09:12\nretrying...\n"


def open_incident(desk) -> str:
    return desk.start("rita", "incident_management", INCIDENT)["data"]["record_number"]


def send(web, number: str, data: bytes | None, filename: str = "vpn.log", *, csrf: bool = True):
    form = {} if data is None else {"file": (io.BytesIO(data), filename, "text/plain")}
    return web.post(f"/tickets/{number}/attachments", form, csrf=csrf, content_type="multipart/form-data")


def test_a_requester_attaches_a_log_through_the_form_and_downloads_it(web, desk):
    number = open_incident(desk)
    web.login("rita")
    page = text_of(web.get(f"/tickets/{number}"))
    form = re.search(r'<form method="post" action="/tickets/' + number + r'/attachments" '
                     r'enctype="multipart/form-data"[^>]*>(.*?)</form>', page, re.S)
    assert form and 'name="csrf_token"' in form.group(1) and 'type="file"' in form.group(1) and 'name="file"' in form.group(1)
    assert "No files attached." in page

    sent = send(web, number, LOG)
    assert sent.status_code == 302, text_of(sent)[-2000:]
    attachment_id = int(re.search(r"#attachment-(\d+)$", sent.headers["Location"]).group(1))
    page = text_of(web.get(f"/tickets/{number}"))
    assert "vpn.log is attached." in page
    item = re.search(rf'<li id="attachment-{attachment_id}">(.*?)</li>', page, re.S).group(1)
    assert f'href="/tickets/{number}/attachments/{attachment_id}"' in item
    assert "vpn.log" in item and f"{len(LOG)} bytes" in item and "rita" in item

    got = web.get(f"/tickets/{number}/attachments/{attachment_id}")
    assert got.status_code == 200 and got.data == LOG
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert got.headers["Content-Disposition"] == "attachment; filename=\"vpn.log\"; filename*=UTF-8''vpn.log"
    assert got.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in got.headers["Content-Security-Policy"]


def test_a_file_sent_without_the_forms_csrf_token_is_refused(web, desk, services):
    number = open_incident(desk)
    web.login("rita")
    refused = send(web, number, LOG, csrf=False)
    assert refused.status_code == 403 and "Form expired" in text_of(refused)
    assert services.attachments.attachments(services.users.get_by_username("rita"), number) == []


def test_the_forms_errors_are_said_beside_the_field_in_the_pages_language(web, desk):
    number = open_incident(desk)
    web.login("rita")
    nothing = web.post(f"/tickets/{number}/attachments", {"file": (io.BytesIO(b""), "")},
                       content_type="multipart/form-data")  # what a browser sends with no file chosen
    # Post/Redirect/Get: the record page the refusal leads to says it beside the form, once
    back = f"/tickets/{number}#attach-form"
    page = refused_to(web, nothing, back)
    assert re.search(r'id="attach-file-error"><span class="visually-hidden">Error: </span>Choose a file to attach\.</p>',
                     page)
    assert page.count('class="field-error"') == 1  # beside the attachment form alone
    assert 'id="attach-file-error"' not in text_of(web.get(f"/tickets/{number}"))
    assert "The file is empty." in refused_to(web, send(web, number, b""), back)
    web.post("/language", {"lang": "zh_CN", "next": f"/tickets/{number}"})
    assert "文件是空的。" in refused_to(web, send(web, number, b""), back)


def test_a_file_too_large_to_read_is_said_beside_the_form(web, desk, app):
    number = open_incident(desk)
    web.login("rita")
    refused = send(web, number, b"x" * (app.config["ATTACHMENT_MAX_BYTES"] + 128 * 1024))
    page = refused_to(web, refused, f"/tickets/{number}#attach-form")  # Post/Redirect/Get, as the others
    assert 'id="attach-file-error"' in page and "The file is larger than 10 MB." in page
    assert "No files attached." in page


def test_a_file_too_large_to_read_for_a_record_one_may_not_see_says_nothing_of_it(web, desk, app, services):
    number = open_incident(desk)
    services.users.create_user("rick", PASSWORD, roles=["requester"], groups=["Requesters"])
    services.session.commit()
    web.login("rick")
    refused = send(web, number, b"x" * (app.config["ATTACHMENT_MAX_BYTES"] + 128 * 1024))
    assert refused.status_code == 413 and "Too large" in text_of(refused)
    assert "VPN down" not in text_of(refused) and "Location" not in refused.headers


def test_an_auditor_reads_the_files_but_is_offered_no_form_and_may_not_post_one(web_factory, desk):
    number = open_incident(desk)
    rita = web_factory()
    rita.login("rita")
    send(rita, number, LOG)
    aude = web_factory()
    aude.login("aude")
    page = text_of(aude.get(f"/tickets/{number}"))
    assert "vpn.log" in page and f'action="/tickets/{number}/attachments"' not in page
    refused = send(aude, number, LOG, filename="audit.log")
    assert refused.status_code == 302
    assert "The file could not be attached: auditors read records but do not change them" in text_of(aude.get(f"/tickets/{number}"))
    assert "audit.log" not in text_of(aude.get(f"/tickets/{number}"))


def test_a_closed_record_offers_its_requester_no_upload(web, desk):
    number = open_incident(desk)
    svc = desk.services
    svc.instances.cancel(svc.users.get_by_username("alex"), svc.records.by_number(number).instance_id, "Raised twice")
    svc.session.commit()
    web.login("rita")
    assert f'action="/tickets/{number}/attachments"' not in text_of(web.get(f"/tickets/{number}"))
    assert send(web, number, LOG).status_code == 302
    page = text_of(web.get(f"/tickets/{number}"))
    assert "is closed: nobody works on it any more" in page and "No files attached." in page
