"""Chinese pages say in Chinese what the platform words: the audit timeline's data labels, task
and process names by the process's deployed translation; durations a process variable puts in
a task's instructions in words; a form's pattern errors by the field's own message (or a
general one), never the regular expression."""

from __future__ import annotations

import html
import re

from tests.web.conftest import INCIDENT, text_of
from tests.web.test_audit import TRIAGE, triaged_incident


def _row(page: str, event_type: str) -> str:
    return page.split(f'data-event-type="{event_type}"')[1].split("</tr>")[0]


def test_the_audit_timeline_labels_submitted_data_by_the_processs_translation(web, desk):
    _number, instance_id = triaged_incident(desk)
    web.login("aude")
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.get(f"/audit/instances/{instance_id}"))
    completed = _row(page, "task_completed")
    for english, chinese in (("Assignment group", "处理组"), ("Category", "类别"), ("Priority", "优先级"),
                             ("Triage notes", "分派备注")):
        assert f"<dt>{chinese}</dt>" in completed and f"<dt>{english}</dt>" not in completed
    # a choice reads as the form titles it, in the page's language, beside what was submitted
    assert '<dd>网络 <span class="muted">(network)</span></dd>' in completed, completed
    assert "<dd>NetworkTeam</dd>" in completed  # a group (from the directory) by its name
    assert "分派事件" in completed and "Triage incident" not in completed  # the task's name
    assert "事件管理" in page.split('id="instance-facts"')[1].split("</dl>")[0]  # the process's name
    # a key the form has no title for is shown as stored
    assert "<dt>title</dt>" in _row(page, "instance_started")


def test_the_audit_timeline_in_english_keeps_the_forms_titles(web, desk):
    _number, instance_id = triaged_incident(desk)
    web.login("aude")
    page = text_of(web.get(f"/audit/instances/{instance_id}"))
    completed = _row(page, "task_completed")
    assert "<dt>Assignment group</dt>" in completed and "Triage incident" in completed
    assert "Incident management" in page.split('id="instance-facts"')[1].split("</dl>")[0]


# -- pattern errors --------------------------------------------------------------------------------

LAPTOP = {"justification": "My laptop of 2019 no longer holds a charge", "replacement": "true",
          "keyboard_layout": "UK", "delivery_location": "Building B, floor 2"}
PERFORMANCE = {"justification": "Local builds of the monorepo take an hour", "workload": "development",
               "keyboard_layout": "UK", "delivery_location": "Building B, floor 2"}


def _field_error(page: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="f-{name}-error">(.*?)</p>', page, re.S)
    assert match, f"no error beside {name}"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def test_a_wrong_asset_tag_is_refused_with_the_fields_own_words_not_its_pattern(web, desk):
    web.login("rita")
    response = web.post("/catalog/HW-LAPTOP", {**LAPTOP, "old_asset_tag": "12345"})
    assert response.status_code == 303  # sent back to the form (Post/Redirect/Get), shown once
    response = web.get(response.headers["Location"])
    page = text_of(response)
    assert _field_error(page, "old_asset_tag").endswith("must be AT- and six digits, e.g. AT-004211")
    assert "[0-9]{6}" not in page

    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.post("/catalog/HW-LAPTOP", {**LAPTOP, "old_asset_tag": "12345"}, follow_redirects=True))
    assert "[0-9]{6}" not in page and "必须符合格式" not in page
    assert _field_error(page, "old_asset_tag").endswith("必须是 AT- 加六位数字，例如 AT-004211")  # catalog.json's words


def test_a_pattern_without_words_of_its_own_says_the_format_is_off_without_the_regex(web, desk):
    web.login("rita")
    page = text_of(web.post("/catalog/HW-LAPTOP-PERF", {**PERFORMANCE, "cost_centre": "4711"}, follow_redirects=True))
    assert _field_error(page, "cost_centre").endswith("must match the expected format")
    assert "^CC-" not in page
    web.post("/language", {"lang": "zh_CN"})
    page = text_of(web.post("/catalog/HW-LAPTOP-PERF", {**PERFORMANCE, "cost_centre": "4711"}, follow_redirects=True))
    assert _field_error(page, "cost_centre").endswith("必须符合要求的格式") and "^CC-" not in page


def test_the_api_still_names_the_pattern(client, desk):
    response = client.post("/api/v1/catalog/HW-LAPTOP/requests", headers=desk.auth("rita"),
                           json={"data": {**LAPTOP, "replacement": True, "old_asset_tag": "12345"}})
    assert response.status_code == 422
    assert response.get_json()["details"]["fields"]["old_asset_tag"] == ["must match the pattern ^AT-[0-9]{6}$"]


def test_a_pattern_message_is_translated_like_the_forms_other_texts(app):
    from app.services.forms import FormMessage
    from app.web.forms import service_text

    message = FormMessage("must match the pattern ^AT-[0-9]{6}$", "pattern", pattern="^AT-[0-9]{6}$",
                          message="must be AT- and six digits")
    words = {"must be AT- and six digits": "必须是 AT- 加六位数字"}
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert service_text(message, lambda source: words.get(source, source)) == "必须是 AT- 加六位数字"
        listed = FormMessage(f"each item {message}", "each_item", item=message)
        assert service_text(listed, lambda source: words.get(source, source)) == "每一项必须是 AT- 加六位数字"


# -- durations in instructions -------------------------------------------------------------------


def _instructions(page: str) -> str:
    match = re.search(r'<section class="instructions"[^>]*>(.*?)</section>', page, re.S)
    assert match, "the task page shows no instructions"
    return match.group(1)


def _as_text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", markup)).split())


def _resolved_incident(desk, who: str = "rita", **start) -> str:
    number = desk.start(who, "incident_management", {**INCIDENT, **start})["data"]["record_number"]
    desk.complete(number, "triage", "alex", {**TRIAGE})
    desk.complete(number, "investigate", "nina", {"outcome": "resolve", "resolution_notes": "Added capacity",
                                                  "cause_category": "capacity"})
    return number


def test_the_auto_close_delay_in_the_confirmation_instructions_is_said_in_words(web, desk):
    number = _resolved_incident(desk)
    task_id = desk.task_id(number, "confirm_resolution", "rita")
    web.login("rita")
    shown = _instructions(text_of(web.get(f"/tasks/{task_id}")))
    assert "closed automatically after 3 days." in _as_text(shown) and "P3D" not in _as_text(shown)
    assert '<data value="P3D" title="P3D">3 days</data>' in shown  # the duration kept in the markup
    web.post("/language", {"lang": "zh_CN"})
    shown = _instructions(text_of(web.get(f"/tasks/{task_id}")))
    # the instructions in Chinese (the process's translation), the delay in Chinese words
    assert "事件将在 3 天 后自动关闭" in _as_text(shown) and "P3D" not in _as_text(shown)
    # the API keeps the instructions as rendered
    detail = web.get(f"/api/v1/tasks/{task_id}", headers=desk.auth("rita")).get_json()
    assert "closed automatically after P3D." in detail["instructions"]


def test_a_staff_set_delay_is_worded_whatever_its_units(web, desk):
    number = _resolved_incident(desk, "alex", auto_close_after="P1DT12H")  # staff may set it
    web.login("alex")
    shown = _as_text(_instructions(text_of(web.get(f"/tasks/{desk.task_id(number, 'confirm_resolution', 'alex')}"))))
    assert "closed automatically after 1 day 12 hours." in shown


def test_the_emergency_cab_is_told_its_window_in_words(web, desk):
    change = {"title": "Patch the mail gateway", "description": "CVE fix.", "reason": "Actively exploited.",
              "planned_start": "2026-01-05T20:00:00Z", "planned_end": "2026-01-05T22:00:00Z",
              "implementation_plan": "Patch.", "rollback_plan": "Restore the snapshot.", "test_plan": "Send mail.",
              "ci": "mailgw01", "change_type": "emergency"}
    number = desk.start("alex", "change_enablement", change)["data"]["record_number"]
    task_id = desk.task_id(number, "ecab_approve", "emma")
    web.login("emma")
    shown = _instructions(text_of(web.get(f"/tasks/{task_id}")))
    assert "Decide within 4 hours;" in _as_text(shown) and "PT4H" not in _as_text(shown)
    web.post("/language", {"lang": "zh_CN"})
    shown = _as_text(_instructions(text_of(web.get(f"/tasks/{task_id}"))))
    assert "请在 4 小时 内作出决定" in shown
    assert "（紧急变更，配置项 mailgw01）" in shown and "emergency" not in shown  # the type's value in words


def test_only_whole_durations_from_the_tasks_data_are_worded(app):
    from app.web.views import durations_in_words

    data = {"wait": "PT4H", "title": "Part XPT4H-2", "count": 3}
    rendered = ("<p>Wait PT4H, not P3D; see /docs/PT4H and XPT4H-2.</p><pre><code>timer = PT4H</code></pre>")
    with app.test_request_context("/"):
        shown = str(durations_in_words(rendered, data))
    assert shown.startswith('<p>Wait <data value="PT4H" title="PT4H">4 hours</data>, not P3D; see /docs/PT4H and XPT4H-2.</p>')
    assert shown.endswith("<pre><code>timer = PT4H</code></pre>")


def test_date_times_from_the_tasks_data_are_shown_as_the_record_page_shows_them(app):
    """A change's instructions said "Planned: 2026-12-05T10:00:00Z to ..." while the same page
    showed "12/5/26, 10:00 AM"; a date-time written into the text by hand stays as written."""
    from app.web.labels import show
    from app.web.views import durations_in_words

    data = {"planned_start": "2026-12-05T10:00:00Z", "planned_end": "2026-12-05T12:00:00Z", "day": "2026-12-05"}
    rendered = ("<p>Planned: 2026-12-05T10:00:00Z to 2026-12-05T12:00:00Z.</p>"
                "<p>Freeze from 2026-12-24T00:00:00Z; window day 2026-12-05.</p><pre><code>2026-12-05T10:00:00Z</code></pre>")
    with app.test_request_context("/"):
        shown = str(durations_in_words(rendered, data))
        start, end, day = (str(show(data[k])) for k in ("planned_start", "planned_end", "day"))
    assert start.startswith('<time datetime="2026-12-05T10:00:00Z">') and "2026-12-05T10" not in start.split(">", 1)[1]
    assert shown == (f"<p>Planned: {start} to {end}.</p><p>Freeze from 2026-12-24T00:00:00Z; window day {day}.</p>"
                     "<pre><code>2026-12-05T10:00:00Z</code></pre>")


def test_a_chinese_error_page_says_nothing_in_english(web, web_factory, desk):
    """A refusal's English reason (the API's and the audit log's) stays off a Chinese error page
    unless the page has it in Chinese; an English page still gives it."""
    web.login("alex")
    web.post("/language", {"lang": "zh_CN"})
    for path, status in (("/audit", 403), ("/admin/users", 403), ("/tickets?priority=%00", 400)):
        response = web.get(path)
        assert response.status_code == status
        shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text_of(response).split("<main")[1]))
        assert not re.search(r"[A-Za-z]{3,} [A-Za-z]{3,}", shown), (path, shown)
        assert "错误" in shown
    rita = web_factory()
    rita.login("rita")
    rita.post("/language", {"lang": "zh_CN"})
    refused = rita.get("/start/problem_management")
    assert refused.status_code == 403
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text_of(refused).split("<main")[1]))
    assert "您的角色不允许启动此流程" in shown and not re.search(r"[A-Za-z]{3,} [A-Za-z]{3,}", shown), shown

    web.post("/language", {"lang": "en"})
    assert "only auditors and administrators may read the audit history" in text_of(web.get("/audit"))


def test_a_date_time_kept_inside_an_object_of_the_data_is_shown_too(app):
    """A change's revise task shows its planned end from ``before_revision`` (the form's own field is
    left empty): "Planned: 12/7/26, 1:08 PM to 2026-12-07T15:08:28.700286+00:00" on one line."""
    from app.web.labels import show
    from app.web.views import durations_in_words

    end = "2026-12-07T15:08:28.700286+00:00"
    data = {"planned_start": "2026-12-07T13:08:00Z", "before_revision": {"planned_end": end, "plans": ["PT2H"]}}
    rendered = f"<p>Planned: 2026-12-07T13:08:00Z to {end}, about PT2H.</p>"
    with app.test_request_context("/"):
        shown = str(durations_in_words(rendered, data))
        worded = [str(show(value)) for value in ("2026-12-07T13:08:00Z", end, "PT2H")]
    assert shown == f"<p>Planned: {worded[0]} to {worded[1]}, about {worded[2]}.</p>"
    assert worded[1].startswith(f'<time datetime="{end}">')


def test_a_catalog_requests_auto_close_delay_is_said_in_the_readers_words(web, desk):
    """QA: the Chinese confirmation read "请求将在 5 days 后自动关闭" (the delay written in English
    by the process's script)."""
    from tests.services.test_catalog_request_rules import fulfilled

    number = fulfilled(desk)
    task_id = desk.task_id(number, "confirm_receipt", "rita")
    web.login("rita")
    shown = _instructions(text_of(web.get(f"/tasks/{task_id}")))
    assert "closed automatically after 5 days." in _as_text(shown)
    web.post("/language", {"lang": "zh_CN"})
    shown = _instructions(text_of(web.get(f"/tasks/{task_id}")))
    assert "请求将在 5 天 后自动关闭" in _as_text(shown) and "days" not in _as_text(shown)
