"""The SLA policy page: everyone signed in reads the terms in force; process owners and admins set
a policy's targets and warning threshold (percent of the target, 5-99) and delete one; a bad value
comes back beside its field (422), others get 403; the sweep warns at the threshold saved here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.models import SlaPolicy
from tests.web.conftest import text_of

START = {"title": "Printer offline", "description": "PR-204", "category": "hardware", "impact": "medium", "urgency": "medium"}
FORM = {"kind": "incident", "priority": "P3", "service": "", "response_minutes": "120", "resolution_minutes": "480",
        "warn_at_percent": "50"}


def stored(services: Any) -> list[SlaPolicy]:
    services.session.expire_all()
    return list(services.session.scalars(select(SlaPolicy)))


def test_the_page_lists_the_built_in_terms_and_a_process_owner_sets_the_warning_threshold(web, desk, services, clock):
    web.login("alex")
    page = text_of(web.get("/sla/policies"))
    assert "built-in" in page and "75 %" in page and 'id="policy-form"' not in page  # an agent reads only
    assert web.post("/sla/policies", FORM).status_code == 403
    assert stored(services) == []
    web.logout()

    saved = services.sla.save_policy(services.users.get_by_username("olga"), {**FORM, "response_seconds": 7200,
                                                                             "resolution_seconds": 28800, "warning_ratio": 0.5})
    services.session.commit()
    web.login("alex")
    assert web.post(f"/sla/policies/{saved.id}/delete").status_code == 403  # an agent deletes none either
    web.logout()
    services.sla.delete_policy(services.users.get_by_username("olga"), saved.id)
    services.session.commit()

    web.login("olga")
    filled = text_of(web.get("/sla/policies?kind=incident&priority=P3&service="))
    assert 'name="response_minutes" value="240"' in filled and 'name="warn_at_percent" value="75"' in filled
    response = web.post("/sla/policies", FORM)
    assert response.status_code == 302 and response.headers["Location"].endswith("/sla/policies")
    [policy] = stored(services)
    assert (policy.response_seconds, policy.resolution_seconds, policy.warning_ratio) == (7200, 28800, 0.5)
    assert policy.pause_statuses == ["pending"] and policy.calendar == {}  # kept: the built-in ones
    assert "50 %" in text_of(web.get("/sla/policies"))

    # what the form does not show is kept when the policy is saved again
    policy.calendar = {"timezone": "Asia/Shanghai", "hours": {"mon": [["09:00", "18:00"]]}}
    services.session.commit()
    again = web.post("/sla/policies", {**FORM, "warn_at_percent": "80"})
    assert again.status_code == 302 and again.headers["Location"].endswith("/sla/policies")
    [policy] = stored(services)
    assert policy.warning_ratio == 0.8 and policy.calendar["timezone"] == "Asia/Shanghai"

    assert web.post(f"/sla/policies/{policy.id}/delete").headers["Location"].endswith("/sla/policies")
    assert stored(services) == []


def test_the_sweep_warns_at_the_threshold_saved_on_the_page(web, desk, services, clock):
    web.login("olga")
    assert web.post("/sla/policies", FORM).status_code == 302
    # half of the response's 2 h, not 75 %
    desk.start("rita", "incident_management", START)
    clock.advance(timedelta(minutes=59))
    assert services.sla.sweep()["warnings"] == 0
    clock.advance(timedelta(minutes=2))
    assert services.sla.sweep()["warnings"] == 1



def refused(web, form):
    """Post the policy form, refused: answered with a redirect to the page (Post/Redirect/Get),
    whose next rendering shows the input and the problems (returned), once."""
    response = web.post("/sla/policies", form)
    assert response.status_code == 303 and response.headers["Location"] == "/sla/policies", response.status_code
    page = text_of(web.get("/sla/policies"))
    assert 'class="field-error"' not in text_of(web.get("/sla/policies"))
    return page


def test_bad_values_come_back_beside_their_fields(web, desk, services):
    web.login("olga")
    for field, value in (("warn_at_percent", "100"), ("warn_at_percent", "4"), ("warn_at_percent", "half"),
                         ("response_minutes", "0"), ("kind", "change")):
        page = refused(web, {**FORM, field: value})
        assert f'id="{field}-error"' in page, (field, value)
        if field != "kind":
            assert f'name="{field}" value="{value}"' in page, (field, value)  # the input, as sent
    page = refused(web, {**FORM, "response_minutes": "600", "resolution_minutes": "60"})
    assert 'id="response_minutes-error"' in page and "must not exceed the resolution target" in page
    # the service's own checks, by the form's field names
    page = refused(web, {**FORM, "service": "x" * 300})
    assert 'id="service-error"' in page and "x" * 300 in page
    assert stored(services) == []
    assert web.post("/sla/policies", FORM, csrf=False).status_code == 403  # no CSRF token


def test_the_page_in_chinese(web, desk):
    web.login("olga")
    page = text_of(web.get("/sla/policies", headers={"Accept-Language": "zh-CN"}))
    assert "SLA 策略" in page and "预警阈值" in page


def test_the_reports_page_leads_to_the_policies_and_the_header_stays_short(web, desk):
    """The header had no room for an SLA link next to the CMDB's (an admin's header wrapped at
    1280 px): the policies are reached from the reports' SLA section."""
    web.login("alex")
    page = text_of(web.get("/reports"))
    assert 'id="sla-policies-link" href="/sla/policies"' in page or 'href="/sla/policies" id="sla-policies-link"' in page
    header = page.split('class="main-nav"', 1)[1].split("</nav>", 1)[0]
    assert "/sla/policies" not in header
    assert 'aria-current="page">Reports<' in text_of(web.get("/sla/policies"))
