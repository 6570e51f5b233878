"""A version number no version can have (past the column's range, past SQLite's 64-bit integers)
names no version: the pages answer 404 and the API 422 naming ``version``, never 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.web.conftest import WebClient

HUGE = ("99999999999999999999", "9223372036854775808", "9223372036854775807", "2147483648")


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


@pytest.fixture()
def web(app: Any, desk: Desk) -> WebClient:
    browser = WebClient(app.test_client())
    browser.login("alex")
    return browser


@pytest.mark.parametrize("version", HUGE)
@pytest.mark.parametrize("page", ["/processes/incident_management", "/processes/incident_management/bpmn",
                                  "/processes/incident_management/diagram.xml"])
def test_pages_answer_404_for_a_version_too_large_to_exist(web, page, version):
    assert web.get(f"{page}?version={version}").status_code == 404
    assert web.get(f"{page}?version=1").status_code == 200


@pytest.mark.parametrize("version", HUGE)
def test_the_api_refuses_a_version_too_large_to_exist(client, desk, version):
    response = client.get(f"/api/v1/definitions/incident_management/bpmn?version={version}", headers=desk.auth("alex"))
    body = assert_error(response, 422)
    assert "version" in str(body["details"]), body
    assert client.get("/api/v1/definitions/incident_management/bpmn?version=1", headers=desk.auth("alex")).status_code == 200
    missing = client.get("/api/v1/definitions/incident_management/bpmn?version=2147483647", headers=desk.auth("alex"))
    assert_error(missing, 404, "not_found")


def test_the_service_finds_no_version_past_the_range(services, desk):
    from app.errors import NotFound

    for version in (2**31, 2**63, 10**20, 0, -1):
        with pytest.raises(NotFound):
            services.definitions.version("incident_management", version)
    assert services.definitions.version("incident_management", 1).version == 1
