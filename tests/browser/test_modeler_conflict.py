"""Two owners in the modeler at once: ada saves first, olga's later save from her stale page is
refused (409) instead of silently undoing ada's change. olga keeps her diagram in the editor, may
download it and reload. After a save, the page shows the new version (heading, status, versions
table), and the next save is based on it."""

from __future__ import annotations

from tests.browser.conftest import require_browser
from tests.http.desk import ROOT

require_browser()

from playwright.sync_api import expect  # noqa: E402

PROCESS = "problem_management"
SHIPPED = ROOT / "processes" / f"{PROCESS}.bpmn"
SAVE_BUTTON = "Save as new version"


def latest(live):
    services = live.desk.services
    services.session.rollback()  # see what the server committed meanwhile
    return services.definitions.latest(PROCESS)


def rename(page, task_id: str, label: str) -> None:
    page.evaluate("""([id, label]) => {
        const modeler = window.processdeskModeler;
        modeler.get('modeling').updateLabel(modeler.get('elementRegistry').get(id), label);
    }""", [task_id, label])


def open_editor(someone):
    someone.go(f"/processes/{PROCESS}")
    expect(someone.page.locator("#process-diagram")).to_have_attribute("data-state", "ready")
    return someone.page


def test_a_save_from_a_stale_editor_is_refused_and_the_diagram_kept(live, person):
    start = latest(live).version
    ada, olga = person(1280), person(1280)
    ada.sign_in("ada")
    olga.sign_in("olga")
    ada_page, olga_page = open_editor(ada), open_editor(olga)
    try:
        # ada saves first: her page now shows the new version
        rename(ada_page, "triage", "Triage (ada)")
        ada_page.get_by_role("button", name=SAVE_BUTTON).click()
        expect(ada_page.locator("#modeler-message")).to_have_text(f"Saved as version {start + 1}.")
        expect(ada_page.locator("#diagram-title")).to_have_text(f"Diagram editor (version {start + 1})")
        expect(ada_page.locator("#process-status")).to_have_text(f"Version {start + 1} is shown.")
        expect(ada_page.locator("tr.current a[aria-current]")).to_have_text(f"v{start + 1}")
        assert ada_page.url.endswith(f"/processes/{PROCESS}?version={start + 1}")

        # olga, on her stale page, renames another task: refused, her diagram stays
        rename(olga_page, "analyse_root_cause", "Analyse (olga)")
        olga_page.get_by_role("button", name=SAVE_BUTTON).click()
        message = olga_page.locator("#modeler-message")
        expect(message).to_contain_text(f"Not saved: ada saved version {start + 1} at ")
        expect(message).to_contain_text(f"after you opened version {start}.")
        expect(olga_page.locator("#modeler-conflict")).to_be_visible()
        assert latest(live).version == start + 1
        assert "Triage (ada)" in latest(live).bpmn_xml and "Analyse (olga)" not in latest(live).bpmn_xml
        kept = olga_page.evaluate("() => window.processdeskModeler.get('elementRegistry')"
                                  ".get('analyse_root_cause').businessObject.name")
        assert kept == "Analyse (olga)"
        with olga_page.expect_download() as download:
            olga_page.get_by_role("link", name="Download your diagram").click()
        assert download.value.suggested_filename == f"{PROCESS}.bpmn"
        assert 'name="Analyse (olga)"' in open(download.value.path(), encoding="utf-8").read()
        olga.screenshot("modeler-conflict-1280")

        # ada edits again from her saved page: based on her new version, no conflict
        rename(ada_page, "verify_fix", "Verify (ada)")
        ada_page.get_by_role("button", name=SAVE_BUTTON).click()
        expect(ada_page.locator("#modeler-message")).to_have_text(f"Saved as version {start + 2}.")
        expect(ada_page.locator("#diagram-title")).to_have_text(f"Diagram editor (version {start + 2})")
        saved = latest(live)
        assert saved.version == start + 2 and "Triage (ada)" in saved.bpmn_xml and "Verify (ada)" in saved.bpmn_xml

        # olga reloads: the latest version, and her save goes through from there
        olga_page.get_by_role("link", name="Reload the latest version").click()
        expect(olga_page.locator("#process-diagram")).to_have_attribute("data-state", "ready")
        expect(olga_page.locator("#diagram-title")).to_have_text(f"Diagram editor (version {start + 2})")
        rename(olga_page, "analyse_root_cause", "Analyse (olga)")
        olga_page.get_by_role("button", name=SAVE_BUTTON).click()
        expect(olga_page.locator("#modeler-message")).to_have_text(f"Saved as version {start + 3}.")
        final = latest(live).bpmn_xml
        assert all(label in final for label in ("Triage (ada)", "Verify (ada)", "Analyse (olga)"))
    finally:
        # later tests expect the shipped labels: deploy the shipped file again
        services = live.desk.services
        services.session.rollback()
        services.definitions.deploy(services.users.get_by_username("olga"), [(SHIPPED.name, SHIPPED.read_bytes())])
        services.session.commit()
    assert ada.errors == []
    # the refused save is an answer the journey expects (and checks); every other error counts
    refused = [(text, url) for text, url in olga.console
               if text.startswith("Failed to load resource") and "409" in text and url.endswith("/save")]
    assert len(refused) == 1
    assert [text for text, url in olga.console if (text, url) not in refused] == []


def test_a_save_after_the_session_ended_says_so_and_offers_the_diagram(live, person):
    """The save used to say "the server did not answer. Try again.", which could never work."""
    start = latest(live).version
    olga = person(1280)
    olga.sign_in("olga")
    page = open_editor(olga)
    rename(page, "triage", "Triage (after a long lunch)")
    services = live.desk.services
    services.session.rollback()  # a fresh transaction: SQLite refuses a write on an old snapshot
    services.users.end_web_sessions(services.users.get_by_username("olga"), "expired")
    services.session.commit()
    page.get_by_role("button", name=SAVE_BUTTON).click()
    expect(page.locator("#modeler-message")).to_contain_text("Not saved: you are signed out (your session ended).")
    expect(page.locator("#modeler-conflict")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download your diagram").click()
    assert 'name="Triage (after a long lunch)"' in open(download.value.path(), encoding="utf-8").read()
    assert latest(live).version == start
