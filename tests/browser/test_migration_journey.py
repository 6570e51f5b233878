"""A process owner moves the instances of an older version to the latest, in real Chromium: the
version's move is folded away until asked for, "Check first" says what would move and what would
stay, and the move then moves them."""

from __future__ import annotations

import pytest

from tests.browser.conftest import require_browser
from tools.bpmn_builder import Diagram, pretty

require_browser()

from playwright.sync_api import expect  # noqa: E402

WIDTHS = [1280, 390]


def flow(process_id: str, *steps: str) -> bytes:
    d = Diagram(process_id, "Moving flow")
    d.node("start", "start", col=0)
    for i, step in enumerate(steps, start=1):
        d.node(step, "user", step.title(), col=i)
    d.node("end", "end", col=len(steps) + 1)
    d.chain("start", *steps, "end")
    return pretty(d.to_xml()).encode()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_process_owner_checks_then_moves_a_version_s_instances(live, person, width):
    process_id = f"moving_{width}"
    desk = live.desk
    services = desk.services
    services.session.rollback()
    services.definitions.deploy(services.users.get_by_username("olga"), [(f"{process_id}.bpmn", flow(process_id, "first", "second"))])
    services.session.commit()

    def start() -> dict:
        answer = desk.client.post("/api/v1/instances", headers=desk.auth("olga"), json={"process_id": process_id, "data": {}})
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    stays = start()
    [first] = stays["open_tasks"]
    assert desk.client.post(f"/api/v1/tasks/{first['id']}/complete", headers=desk.auth("olga"),
                            json={"data": {}}).status_code == 200
    moves = start()
    services.session.rollback()
    services.definitions.deploy(services.users.get_by_username("olga"), [(f"{process_id}.bpmn", flow(process_id, "first"))])
    services.session.commit()

    olga = person(width)
    olga.sign_in("olga")
    olga.go(f"/processes/{process_id}")
    page = olga.page
    move = page.get_by_role("button", name="Move the instances (2)")
    expect(move).to_be_hidden()  # folded until asked for
    page.get_by_text("Move its instances to v2").click()
    expect(move).to_be_visible()
    page.get_by_role("button", name="Check first").click()
    expect(page.locator(".flashes")).to_contain_text("Checked, nothing moved: instances of version 1 that would "
                                                     "move to version 2: 1.")
    expect(page.locator(".flashes")).to_contain_text(f"#{stays['id']} (open tasks the version lacks: second)")
    olga.screenshot(f"migration-checked-{width}")
    assert desk.instance(moves["id"], "olga")["version"] == 1

    page.get_by_text("Move its instances to v2").click()
    page.get_by_role("button", name="Move the instances (2)").click()
    expect(page.locator(".flashes")).to_contain_text("Instances of version 1 moved to version 2: 1.")
    expect(page.locator(".flashes")).to_contain_text("Instances that stay on version 1: 1.")
    olga.screenshot(f"migration-moved-{width}")
    assert desk.instance(moves["id"], "olga")["version"] == 2
    assert desk.instance(stays["id"], "olga")["version"] == 1
    assert olga.errors == []
