"""The process pages: the list, one process with its versions, download, upload and the editor's save."""

from __future__ import annotations

import io
import re
from typing import Any

from tests.http.desk import ROOT
from tests.web.conftest import INCIDENT, text_of

BPMN = ROOT / "processes" / "incident_management.bpmn"


def relabelled(old: str = "Triage incident", new: str = "Triage the incident") -> str:
    return BPMN.read_text().replace(f'name="{old}"', f'name="{new}"', 1)


def missing_form(xml: str) -> str:
    """The triage task names a form file that is not deployed: an error on element ``triage``."""
    return xml.replace('value="incident-triage.json"', 'value="no-such-form.json"', 1)


def start_incident(services: Any) -> Any:
    rita = services.users.get_by_username("rita")
    instance = services.instances.start_process(rita, "incident_management", dict(INCIDENT))
    services.session.commit()
    return instance


def test_the_list_shows_processes_with_versions_and_running_counts(web, desk, services):
    start_incident(services)
    web.login("alex")
    body = text_of(web.get("/processes"))
    assert 'href="/processes/incident_management"' in body
    row = re.search(r'href="/processes/incident_management\?version=1">v1</a></td>\s*<td><time [^>]*>[^<]*</time></td>\s*<td>(\d+)</td>', body)
    assert row and int(row.group(1)) >= 1


def test_the_process_page_shows_versions_viewer_and_download(web, desk):
    web.login("alex")
    response = web.get("/processes/incident_management")
    assert response.status_code == 200
    body = text_of(response)
    assert "v1" in body and 'data-xml-url="/processes/incident_management/diagram.xml?version=1"' in body
    assert "bpmn-viewer.production.min.js" in body and "data-save-url" not in body
    assert "Upload files" not in body  # agents may not deploy
    download = web.get("/processes/incident_management/bpmn?version=1")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == 'attachment; filename="incident_management.bpmn"'
    api = desk.client.get("/api/v1/definitions/incident_management/bpmn", headers=desk.auth("alex"))
    assert download.get_data() == api.get_data()
    assert web.get("/processes/nothing_here").status_code == 404
    assert web.get("/processes/incident_management?version=99").status_code == 404


def test_an_owner_uploads_a_new_version(web, desk, services):
    web.login("olga")
    body = text_of(web.get("/processes/incident_management"))
    assert "bpmn-modeler.production.min.js" in body and 'data-save-url="/processes/incident_management/save"' in body
    response = web.post("/processes/incident_management/deploy",
                        {"files": (io.BytesIO(relabelled().encode()), "incident_management.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 302
    page = text_of(web.get(response.headers["Location"]))
    assert "Deployed: incident_management v2." in page
    assert services.definitions.latest("incident_management").version == 2


def test_upload_errors_are_listed_with_file_element_and_line(web, desk, services):
    web.login("olga")
    broken = missing_form(BPMN.read_text())
    response = web.post("/processes/incident_management/deploy",
                        {"files": (io.BytesIO(broken.encode()), "incident_management.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 422
    body = text_of(response)
    assert "Nothing was deployed" in body and "<code>incident_management.bpmn</code>" in body
    assert "<code>triage</code>" in body and re.search(r"line \d+", body)
    assert services.definitions.latest("incident_management").version == 1
    empty = web.post("/processes/incident_management/deploy", {}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "Choose one or more files" in text_of(empty)


def test_agents_may_not_upload_or_save(web, desk):
    web.login("alex")
    response = web.post("/processes/incident_management/deploy",
                        {"files": (io.BytesIO(relabelled().encode()), "incident_management.bpmn")},
                        content_type="multipart/form-data")
    assert response.status_code == 403
    saved = web.post("/processes/incident_management/save", {"xml": relabelled()})
    assert saved.status_code == 403 and saved.get_json()["error"] == "forbidden"


def test_the_editor_saves_a_new_version_and_reports_errors_as_json(web, desk, services):
    web.login("olga")
    saved = web.post("/processes/incident_management/save", {"xml": relabelled()})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["ok"] is True and saved.get_json()["versions"] == [1, 2]
    again = web.post("/processes/incident_management/save", {"xml": relabelled()})
    assert again.get_json()["versions"] == [1, 2]  # same content, same version
    broken = missing_form(relabelled())
    refused = web.post("/processes/incident_management/save", {"xml": broken})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["error"] == "invalid_definition" and body["details"]["file"] == "incident_management.bpmn"
    assert body["details"]["element_id"] == "triage" and body["details"]["line"]
    assert web.post("/processes/incident_management/save", {"xml": relabelled()}, csrf=False).status_code == 403


def test_the_editor_saving_another_processs_diagram_is_told_so(web, desk, services):
    """The save stores the XML as the process's own file: another process's diagram there was
    refused as "Duplicate process ID: change_enablement", which said nothing useful."""
    web.login("olga")
    other = (ROOT / "processes" / "change_enablement.bpmn").read_text()
    refused = web.post("/processes/incident_management/save", {"xml": other})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["error"] == "invalid_definition"
    assert body["message"].startswith("incident_management.bpmn is the diagram of the process 'incident_management', "
                                      "but this one holds 'change_enablement'")
    assert body["details"] == {"file": "incident_management.bpmn", "process_id": "incident_management",
                               "holds": ["change_enablement"], "field": "files"}
    assert web.post("/processes/incident_management/save", {"xml": "<not-xml"}).get_json()["error"] == "invalid_definition"
    assert services.definitions.latest("incident_management").version == 1  # nothing deployed


def test_the_compare_page_shows_two_versions(web, desk, services):
    web.login("olga")
    assert web.post("/processes/incident_management/save", {"xml": relabelled()}).status_code == 200
    body = text_of(web.get("/processes/incident_management"))
    assert 'href="/processes/incident_management/compare?a=1&amp;b=2"' in body
    page = text_of(web.get("/processes/incident_management/compare?a=1&b=2"))
    assert 'data-xml-url="/processes/incident_management/diagram.xml?version=1"' in page
    assert 'data-xml-url="/processes/incident_management/diagram.xml?version=2"' in page
    assert "<label for=\"compare-a\">Older version</label>" in page
    # an unknown version falls back to the latest two
    assert web.get("/processes/incident_management/compare?a=9&b=x").status_code == 200


def test_the_compare_page_lists_changed_forms_and_decision_tables(web, desk, services):
    """QA: a version whose priority matrix and triage form changed read "The two versions have the
    same elements": the drawing is the same. The page lists what else changed, as each version
    was deployed."""
    import json
    dmn = (ROOT / "processes" / "priority_matrix.dmn").read_text()
    rule_9 = dmn.index('<rule id="rule_9">')
    changed_dmn = dmn[:rule_9] + dmn[rule_9:].replace('"P4"', '"P3"', 1)
    form = json.loads((ROOT / "forms" / "incident-triage.json").read_text())
    form["properties"]["escalate_to_vendor"] = {"type": "boolean", "title": "Escalate to the vendor"}
    form["required"] = [*form["required"], "escalate_to_vendor"]
    olga = services.users.get_by_username("olga")
    services.definitions.deploy(olga, [("priority_matrix.dmn", changed_dmn.encode()),
                                       ("incident-triage.json", json.dumps(form).encode())])
    services.session.commit()
    assert services.definitions.latest("incident_management").version == 2
    web.login("olga")
    page = text_of(web.get("/processes/incident_management/compare?a=1&b=2"))
    parts = page.split('id="compare-parts"')[1].split("</section>")[0]
    assert '<li data-kind="decision" data-state="changed"><strong>Decision table <code>prioritise</code></strong>: changed' in parts
    assert "rule 9: &#34;low&#34;, &#34;low&#34; -&gt; &#34;P4&#34;  =&gt;  &#34;low&#34;, &#34;low&#34; -&gt; &#34;P3&#34;" in parts
    assert '<strong>Form <code>incident-triage.json</code></strong>: changed' in parts
    assert "fields added: escalate_to_vendor" in parts and "now required: escalate_to_vendor" in parts
    assert parts.count("<li data-kind=") == 2  # nothing else differs
    same = text_of(web.get("/processes/incident_management/compare?a=2&b=2"))
    assert "v2 and v2 use the same forms, decision tables and record mapping." in same


CHANGE = ROOT / "processes" / "change_enablement.bpmn"
FIXTURES = ROOT / "tests" / "fixtures" / "processes"
#: a process not deployed yet (simple_request), with its forms
NEW_PROCESS = [(name, (FIXTURES / name).read_text())
               for name in ("simple_request.bpmn", "details-schema.json", "details-uischema.json", "approve-schema.json")]


def upload(web, url: str, *files: tuple[str, str]) -> Any:
    return web.post(url, {"files": [(io.BytesIO(text.encode()), name) for name, text in files]},
                    content_type="multipart/form-data")


def test_a_process_page_deploys_that_process_only(web, desk, services):
    web.login("olga")
    other = CHANGE.read_text().replace('name="Assess change"', 'name="Assess the change"', 1)
    refused = upload(web, "/processes/incident_management/deploy", ("change_enablement.bpmn", other))
    assert refused.status_code == 422
    body = text_of(refused)
    assert "Nothing was deployed" in body and "<code>change_enablement.bpmn</code>" in body
    assert "change_enablement.bpmn is not a file of the process &#39;incident_management&#39;" in body
    # with the incident's own file beside it, still nothing is deployed
    both = upload(web, "/processes/incident_management/deploy", ("incident_management.bpmn", relabelled()),
                  ("change_enablement.bpmn", other))
    assert both.status_code == 422
    # another process's start rights, start form or an unused form are not this page's either
    for name, text in (("change_enablement.access.json", '{"start_roles": ["requester"]}'),
                       ("change_enablement.start.json", (ROOT / "forms" / "change_enablement.start.json").read_text()),
                       ("spare-form.json", '{"type": "object", "properties": {}}')):
        sidecar = upload(web, "/processes/incident_management/deploy", (name, text))
        assert sidecar.status_code == 422, name
        assert f"{name} is not a file of the process &#39;incident_management&#39;" in text_of(sidecar)
    # a decision table only another process uses changes that process alone: refused
    dmn = (ROOT / "processes" / "priority_matrix.dmn").read_text()
    changed_dmn = dmn.replace('"P4"', '"P3"', 1)
    assert changed_dmn != dmn
    decided = upload(web, "/processes/change_enablement/deploy", ("priority_matrix.dmn", changed_dmn))
    assert decided.status_code == 422
    assert "would change the process &#39;incident_management&#39;, not &#39;change_enablement&#39;" in text_of(decided)
    # a new process is not this page's either
    created = upload(web, "/processes/incident_management/deploy", *NEW_PROCESS)
    assert created.status_code == 422
    assert "approve-schema.json is not a file of the process &#39;incident_management&#39;" in text_of(created)
    assert [v.version for v in services.definitions.versions("incident_management")] == [1]
    assert [v.version for v in services.definitions.versions("change_enablement")] == [1]
    assert services.definitions.latest("incident_management").files_used  # (still the shipped version)
    # the process's own files are deployed from its page, its start rights too
    own = upload(web, "/processes/incident_management/deploy", ("incident_management.bpmn", relabelled()),
                 ("incident_management.access.json", '{"start_roles": ["requester", "agent"]}'))
    assert own.status_code == 302
    assert "Deployed: incident_management v2." in text_of(web.get(own.headers["Location"]))
    # the editor's save is bound to its process the same way
    saved = web.post("/processes/incident_management/save", {"xml": relabelled("Triage the incident", "Triage it")})
    assert saved.status_code == 200 and saved.get_json()["changed"] is True


def test_the_process_list_deploys_files_of_any_process(web, desk, services):
    web.login("alex")
    assert "Upload files" not in text_of(web.get("/processes"))
    refused = upload(web, "/processes/deploy", ("incident_management.bpmn", relabelled()))
    assert refused.status_code == 403
    web.login("olga")
    page = text_of(web.get("/processes"))
    assert "Upload files" in page and 'action="/processes/deploy"' in page
    other = CHANGE.read_text().replace('name="Assess change"', 'name="Assess the change"', 1)
    done = upload(web, "/processes/deploy", *NEW_PROCESS, ("change_enablement.bpmn", other))
    assert done.status_code == 302 and done.headers["Location"].endswith("/processes")
    page = text_of(web.get(done.headers["Location"]))
    assert "change_enablement v2" in page and "simple_request v1" in page
    assert services.definitions.latest("simple_request").version == 1
    broken = upload(web, "/processes/deploy", ("incident_management.bpmn", missing_form(BPMN.read_text())))
    assert broken.status_code == 422
    body = text_of(broken)
    assert "Nothing was deployed" in body and "<code>triage</code>" in body and 'id="upload-errors"' in body
    assert services.definitions.latest("incident_management").version == 1
    empty = web.post("/processes/deploy", {}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "Choose one or more files" in text_of(empty)
    assert web.post("/processes/deploy", {}, content_type="multipart/form-data", csrf=False).status_code == 403


def test_saving_the_same_diagram_in_another_layout_makes_no_version(web, desk, services):
    web.login("olga")
    # what an editor writes for an unchanged diagram: other indentation and empty-element syntax
    rewritten = re.sub(r">\s+<", "><", BPMN.read_text()).replace('"/>', '" />')
    same = web.post("/processes/incident_management/save", {"xml": rewritten})
    assert same.status_code == 200
    assert same.get_json()["changed"] is False and same.get_json()["versions"] == [1]
    changed = web.post("/processes/incident_management/save", {"xml": relabelled()})
    assert changed.get_json()["changed"] is True and changed.get_json()["versions"] == [1, 2]


def test_requesters_and_approvers_are_kept_out_of_the_process_area(web, desk):
    """The process pages read definitions beyond their names: staff only, and the menu hides the
    area from everyone else (the start pages and the catalog are theirs)."""
    for who in ("rita", "cab1"):
        web.login(who)
        home = text_of(web.get("/"))
        assert 'href="/processes"' not in home and 'href="/tasks"' in home
        for path in ("/processes", "/processes/incident_management", "/processes/incident_management/bpmn",
                     "/processes/incident_management/diagram.xml", "/processes/incident_management/compare"):
            response = web.get(path)
            assert response.status_code == 403, (who, path, response.status_code)
            assert b"<bpmn:definitions" not in response.get_data()
        web.logout()
    web.login("aude")
    assert 'href="/processes"' in text_of(web.get("/"))
    assert web.get("/processes/incident_management/diagram.xml").status_code == 200


def test_uploading_another_processs_diagram_on_a_process_page_says_whose_it_is(web, desk, services):
    """A copy of the change diagram saved under a new name and uploaded on the incident page was
    refused as "Duplicate process ID: change_enablement"."""
    web.login("olga")
    copy = (ROOT / "processes" / "change_enablement.bpmn").read_bytes()
    refused = web.client.post("/processes/incident_management/deploy", data={
        "csrf_token": web.token(), "files": [(io.BytesIO(copy), "change_enablement_v3.bpmn")]},
        content_type="multipart/form-data")
    assert refused.status_code == 422
    page = text_of(refused)
    assert "change_enablement_v3.bpmn holds the process &#39;change_enablement&#39;, deployed from " \
           "change_enablement.bpmn" in page and "Duplicate process ID" not in page
    assert services.definitions.latest("change_enablement").version == 1


def test_an_upload_over_the_limit_says_how_large_an_upload_may_be(web, desk, app):
    """QA: two 4 MB files answered "The data value transmitted exceeds the capacity limit": no limit
    named, and nothing said that the files of one upload count together."""
    web.login("olga")
    big = "x" * (app.config["MAX_CONTENT_LENGTH"] // 2 + 1024)
    refused = upload(web, "/processes/deploy", ("one.bpmn", big), ("two.bpmn", big))
    assert refused.status_code == 413
    page = text_of(refused)
    assert "larger than 5 MB" in page and "The files of one upload count together" in page


def test_a_lane_that_names_no_group_is_flashed_after_the_deploy(web, desk):
    xml = (FIXTURES / "lane_ticket.bpmn").read_text()
    xml = xml.replace('id="lane_ticket" name="Lane ticket"', 'id="lane_ticket_qa" name="Lane ticket QA"')
    xml = xml.replace('name="Approvers"', 'name="NoSuchTeam"')
    web.login("olga")
    files = [("lane_ticket_qa.bpmn", xml)] + [(name, (FIXTURES / name).read_text())
                                             for name in ("triage-schema.json", "approve-schema.json", "ticket_priority.dmn")]
    sent = upload(web, "/processes/deploy", *files)
    assert sent.status_code == 302
    page = text_of(web.get(sent.headers["Location"]))
    assert "Deployed: lane_ticket_qa v1." in page
    assert 'class="flash flash-warning"' in page and "names no group: only admins can work its tasks" in page


def test_a_diagram_with_an_xhtml_script_runs_nothing_when_its_xml_is_opened(web, desk, services):
    """Security QA: a process owner deployed a diagram whose extension elements held an
    ``<h:script>`` in the XHTML namespace (the BPMN schema lets extensions hold any namespace). Its
    ``diagram.xml``, served inline as application/xml with no Content-Security-Policy, ran that
    script in the site's origin for any agent or admin who opened the link (Chromium runs XHTML
    scripts in XML documents): the owner's script then acted as the admin."""
    xml = BPMN.read_text().replace(
        '<bpmn:definitions ', '<bpmn:definitions xmlns:h="http://www.w3.org/1999/xhtml" ', 1).replace(
        '<bpmn:startEvent id="start" name="Incident reported">', '<bpmn:startEvent id="start" name="Incident '
        'reported"><bpmn:extensionElements><h:script>alert(document.domain)</h:script></bpmn:extensionElements>', 1)
    olga = services.users.get_by_username("olga")
    services.definitions.deploy(olga, [("incident_management.bpmn", xml.encode())])
    services.session.commit()
    web.login("alex")
    response = web.get("/processes/incident_management/diagram.xml?version=2")
    assert response.status_code == 200 and b"<h:script>" in response.get_data()
    csp = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'none'" in csp and "sandbox" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    api = desk.client.get("/api/v1/definitions/incident_management/bpmn?version=2", headers=desk.auth("alex"))
    assert "default-src 'none'" in api.headers.get("Content-Security-Policy", "")


def test_the_process_pages_write_deployment_times_as_the_other_pages_do(web, desk, services):
    """A version's deployment time reads like every other time on the pages (the record list's
    short date and time, in the page's language), not as an ISO timestamp only these pages use."""
    web.login("alex")
    deployed = services.definitions.latest("incident_management").deployed_at
    from flask_babel import format_datetime
    with web.client.application.test_request_context():
        expected = format_datetime(deployed, "short")
    for path in ("/processes", "/processes/incident_management"):
        body = text_of(web.get(path))
        assert f'<td><time datetime="{deployed.isoformat()}">{expected}</time></td>' in body, path
        assert deployed.strftime("%Y-%m-%d %H:%M") not in body, path


def test_an_earlier_version_is_deployed_again_as_the_next_one(web, web_factory, desk, services):
    """The way back from a version that went wrong: v1's diagram again as v3; v2's instances stay."""
    web.login("olga")
    assert web.post("/processes/incident_management/save", {"xml": relabelled()}).get_json()["latest"] == 2
    page = text_of(web.get("/processes/incident_management"))
    assert 'action="/processes/incident_management/versions/1/restore"' in page
    assert "/versions/2/restore" not in page  # the latest has none
    restored = web.post("/processes/incident_management/versions/1/restore", {"base_version": "2"})
    assert restored.status_code == 302 and restored.headers["Location"] == "/processes/incident_management?version=3"
    assert "Version 3 is version 1&#39;s diagram again" in text_of(web.get(restored.headers["Location"]))
    latest = services.definitions.latest("incident_management")
    assert latest.version == 3 and 'name="Triage incident"' in latest.bpmn_xml
    # a page that showed an older latest: refused as the editor's save is, nothing deployed
    stale = web.post("/processes/incident_management/versions/2/restore", {"base_version": "2"})
    assert stale.status_code == 302
    assert "could not be deployed again" in text_of(web.get("/processes/incident_management"))
    assert services.definitions.latest("incident_management").version == 3
    # the latest itself: nothing to do
    web.post("/processes/incident_management/versions/3/restore", {"base_version": "3"})
    assert "is the latest version already" in text_of(web.get("/processes/incident_management"))
    # agents may not; nor without the form's CSRF token; an unknown version is 404
    alex = web_factory()
    alex.login("alex")
    assert alex.post("/processes/incident_management/versions/1/restore", {"base_version": "3"}).status_code == 302
    assert services.definitions.latest("incident_management").version == 3
    assert "/restore" not in text_of(alex.get("/processes/incident_management"))
    assert web.post("/processes/incident_management/versions/1/restore", {"base_version": "3"},
                    csrf=False).status_code == 403
    assert web.post("/processes/incident_management/versions/99/restore", {"base_version": "3"}).status_code == 302
    assert services.definitions.latest("incident_management").version == 3


def test_a_diagram_with_a_step_no_flow_leads_to_is_refused_in_the_pages_language(web, desk, services):
    """QA: the modeler's refusal of an unreachable step was English on a Chinese page."""
    xml = BPMN.read_text()
    flow = re.search(r'<bpmn:sequenceFlow id="[^"]+" sourceRef="start" targetRef="([^"]+)"\s*/>', xml)
    assert flow, "the shipped incident diagram starts with a plain flow"
    broken = xml.replace(flow.group(0), "", 1)
    web.login("olga")
    refused = web.post("/processes/incident_management/save", {"xml": broken}, headers={"Accept-Language": "en"})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["details"]["element_id"] == flow.group(1) and body["details"]["error_type"] == "unreachable"
    assert body["message"].endswith("cannot be reached from the start event: no sequence flow leads to it.")
    web.post("/language", {"lang": "zh_CN"})
    chinese = web.post("/processes/incident_management/save", {"xml": broken}).get_json()
    assert chinese["message"].startswith("无法从开始事件到达“") and "cannot" not in chinese["message"]
    assert services.definitions.latest("incident_management").version == 1


def test_a_version_s_instances_move_to_the_latest_from_the_process_page(web, web_factory, desk, services):
    """A fix saved as version 2 reaches the incidents already running on version 1."""
    first = start_incident(services)
    web.login("olga")
    page = text_of(web.get("/processes/incident_management"))
    assert "/versions/1/migrate" not in page  # one version: nowhere to move to
    assert web.post("/processes/incident_management/save", {"xml": relabelled()}).get_json()["latest"] == 2
    second = start_incident(services)
    page = text_of(web.get("/processes/incident_management"))
    assert 'action="/processes/incident_management/versions/1/migrate"' in page
    assert "/versions/2/migrate" not in page and "Move the instances (1)" in page
    # agents may not (the button is not theirs either); nor without the form's CSRF token
    alex = web_factory()
    alex.login("alex")
    assert "/migrate" not in text_of(alex.get("/processes/incident_management"))
    refused = alex.post("/processes/incident_management/versions/1/migrate", {"latest_version": "2"})
    assert refused.status_code == 302
    assert "were not moved" in text_of(alex.get("/processes/incident_management"))
    assert web.post("/processes/incident_management/versions/1/migrate", {"latest_version": "2"},
                    csrf=False).status_code == 403
    assert desk.instance(first.id, "olga")["version"] == 1
    moved = web.post("/processes/incident_management/versions/1/migrate", {"latest_version": "2"})
    assert moved.status_code == 302 and moved.headers["Location"] == "/processes/incident_management"
    assert "Instances of version 1 moved to version 2: 1." in text_of(web.get("/processes/incident_management"))
    assert desk.instance(first.id, "olga")["version"] == 2 and desk.instance(second.id, "olga")["version"] == 2
    [triage] = desk.instance(first.id, "olga")["open_tasks"]
    assert triage["name"] == "Triage the incident"
    again = web.post("/processes/incident_management/versions/1/migrate", {"latest_version": "2"})
    assert again.status_code == 302
    assert "has no running or failed instances to move" in text_of(web.get("/processes/incident_management"))


def test_a_move_that_stops_part_way_goes_on_after_the_instances_that_stay(web, desk, monkeypatch):
    """The instance that cannot move (at the task version 2 drops) comes first; clicking again does
    not look at it again but moves the ones after it."""
    from app.services import migration
    from app.web import process_pages
    from tests.http.helpers import upload
    from tests.http.test_instance_migration import complete, flow, start_flow

    monkeypatch.setattr(migration, "MAX_BATCH", 1)
    monkeypatch.setattr(process_pages, "WEB_BATCHES", 1)
    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first", "second"))]).status_code == 201
    stays = complete(desk, start_flow(desk), "first")
    movers = [start_flow(desk) for _ in range(2)]
    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first"))]).status_code == 201
    web.login("olga")
    clicks = []
    form = {"latest_version": "2"}
    for _ in range(4):
        answer = web.post("/processes/mig_flow/versions/1/migrate", form)
        page = text_of(web.get(answer.headers["Location"]))
        clicks.append(answer.headers["Location"])
        after = re.search(r'name="after" value="(\d+)"', page)
        form = {"latest_version": "2", **({"after": after.group(1)} if after else {})}
        if not after:
            break
    assert clicks[0] == f"/processes/mig_flow?move_version=1&move_after={stays['id']}"
    assert [desk.instance(m["id"], "olga")["version"] for m in movers] == [2, 2]
    assert desk.instance(stays["id"], "olga")["version"] == 1
    assert clicks[-1] == "/processes/mig_flow" and len(clicks) == 3


def test_move_numbers_that_are_not_ascii_digits_are_ignored_not_a_server_error(web, desk):
    from tests.http.helpers import upload
    from tests.http.test_instance_migration import flow, start_flow

    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first"))]).status_code == 201
    start_flow(desk)
    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first", "second"))]).status_code == 201
    web.login("olga")
    for query in ("move_version=%C2%B2&move_after=1", "move_version=1&move_after=%C2%B2", "move_version=1&move_after=-4"):
        page = web.get(f"/processes/mig_flow?{query}")
        assert page.status_code == 200 and 'name="after"' not in text_of(page)
    for form in ({"latest_version": "¹"}, {"latest_version": "2", "after": "²"}, {"latest_version": "2", "after": "9" * 40}):
        answer = web.post("/processes/mig_flow/versions/1/migrate", form)
        assert answer.status_code == 302, form
    assert desk.instance(1, "olga")["version"] == 2


def test_why_an_instance_stays_is_said_in_the_page_s_language(web, desk):
    from tests.http.helpers import upload
    from tests.http.test_instance_migration import complete, flow, start_flow

    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first", "second"))]).status_code == 201
    stays = complete(desk, start_flow(desk), "first")
    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first"))]).status_code == 201
    web.login("olga")
    web.post("/language", {"lang": "zh_CN"})
    web.post("/processes/mig_flow/versions/1/migrate", {"latest_version": "2"})
    page = text_of(web.get("/processes/mig_flow"))
    assert f"#{stays['id']}（该版本缺少的未完成任务：second）" in page


def test_check_first_says_what_would_move_and_moves_nothing(web, desk):
    from tests.http.helpers import upload
    from tests.http.test_instance_migration import complete, flow, start_flow

    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first", "second"))]).status_code == 201
    stays = complete(desk, start_flow(desk), "first")
    moves = start_flow(desk)
    assert upload(desk.client, desk.auth("olga"), [("mig_flow.bpmn", flow("first"))]).status_code == 201
    web.login("olga")
    assert 'name="dry_run" value="1"' in text_of(web.get("/processes/mig_flow"))
    checked = web.post("/processes/mig_flow/versions/1/migrate", {"latest_version": "2", "dry_run": "1"})
    assert checked.status_code == 302 and checked.headers["Location"] == "/processes/mig_flow"
    page = text_of(web.get("/processes/mig_flow"))
    assert "Checked, nothing moved: instances of version 1 that would move to version 2: 1." in page
    assert f"Instances that would stay on version 1: 1. #{stays['id']} (open tasks the version lacks: second)" in page
    assert desk.instance(moves["id"], "olga")["version"] == 1 and desk.instance(stays["id"], "olga")["version"] == 1
