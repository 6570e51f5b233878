"""Saving a diagram nobody changed: the editor re-writes the XML in its own layout (indentation,
attribute order, the order of shapes), which is no change of the process. The latest version
stays, and the owner is told so instead of "Saved as version N+1". The change diagram is the one
bpmn-js used to break: it dropped the CAB vote's loopDataInputRef (a variable name, not an
element id) and every save of it was refused."""

from __future__ import annotations

from tests.browser.conftest import require_browser
from tests.http.desk import ROOT

require_browser()

from playwright.sync_api import expect  # noqa: E402

SHIPPED = ROOT / "processes" / "change_enablement.bpmn"


def versions(live, process_id: str) -> list[int]:
    services = live.desk.services
    services.session.rollback()  # see what the server committed meanwhile
    return [row.version for row in services.definitions.versions(process_id)]


def test_saving_an_unedited_diagram_keeps_the_latest_version(live, person):
    before = versions(live, "change_enablement")
    olga = person(1280)
    olga.sign_in("olga")
    olga.go("/processes/change_enablement")
    page = olga.page
    expect(page.locator("#process-diagram")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.locator("#modeler-message")).to_have_text(
        f"Nothing to save: the diagram is the same as version {before[-1]}.")
    assert versions(live, "change_enablement") == before
    # a real edit still makes a version: the same button, after one label changes
    page.evaluate("""() => {
        const modeler = window.processdeskModeler;
        const task = modeler.get('elementRegistry').filter(e => e.type === 'bpmn:UserTask')[0];
        modeler.get('modeling').updateLabel(task, task.businessObject.name + ' (edited)');
    }""")
    try:
        page.get_by_role("button", name="Save as new version").click()
        expect(page.locator("#modeler-message")).to_have_text(f"Saved as version {before[-1] + 1}.")
        assert versions(live, "change_enablement") == [*before, before[-1] + 1]
        # the CAB vote's collection and results (task data, not elements) were written back as read
        saved = live.desk.services.definitions.latest("change_enablement").bpmn_xml
        assert "<bpmn:loopDataInputRef>cab_members</bpmn:loopDataInputRef>" in saved
        assert "<bpmn:loopDataOutputRef>votes</bpmn:loopDataOutputRef>" in saved
    finally:
        # later tests expect the shipped labels: deploy the shipped file again
        services = live.desk.services
        services.session.rollback()
        services.definitions.deploy(services.users.get_by_username("olga"), [("change_enablement.bpmn", SHIPPED.read_bytes())])
        services.session.commit()
    assert olga.console == []
