"""A HEAD request is answered by its route's GET view, and the pages that show a form and take it
at one address (``methods=["GET", "POST"]``) tell the two apart by ``request.method == "GET"``:
a HEAD ran their POST branch, and the CSRF check, made for POST only, let it through. A HEAD, which
another site on the same site (SameSite=Lax sends the cookie) may make with fetch(), saved a group
with an empty description and no manager. It needs the form's token now, as a POST does."""

from __future__ import annotations

from tests.web.conftest import text_of


def test_a_head_request_without_the_token_changes_nothing(web, desk):
    web.login("ada")
    saved = web.post("/admin/groups/CAB", {"description": "Change advisory board", "manager": "cab1"})
    assert saved.status_code == 302, text_of(saved)[:500]
    page = text_of(web.get("/admin/groups/CAB"))
    assert 'value="Change advisory board"' in page and 'value="cab1"' in page

    head = web.client.open("/admin/groups/CAB", method="HEAD")
    assert head.status_code == 403
    page = text_of(web.get("/admin/groups/CAB"))
    assert 'value="Change advisory board"' in page and 'value="cab1"' in page


def test_head_still_answers_a_page_that_only_shows(web, desk):
    web.login("ada")
    assert web.client.open("/tasks", method="HEAD").status_code == 200
    assert web.client.open("/tickets", method="HEAD").status_code == 200
