"""GET /api/v1/reports/summary: who may read it, the field a bad query names, and the answer's
shape and figures (the scenario of tests/services/report_scenario.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.desk import Desk
from tests.http.helpers import assert_error
from tests.services.report_scenario import EXPECTED, NOW, PERIOD, build

URL = "/api/v1/reports/summary"


def test_without_a_token_it_is_401(client: Any) -> None:
    assert_error(client.get(URL), 401)
    assert_error(client.get(URL + "?from=nonsense"), 401)  # not 422: who asks comes first


@pytest.mark.parametrize("name", ["rita", "amy"])
def test_requesters_and_approvers_get_403(client: Any, auth: Any, name: str) -> None:
    body = assert_error(client.get(URL, headers=auth(name)), 403, "forbidden")
    assert "reports" in body["message"]


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-13-01", "from"),
    ("from=20260101", "from"),
    ("to=tomorrow", "to"),
    ("kind=outage", "kind"),
    ("from=2026-01-10&to=2026-01-09", "from"),
    ("from=2026-01-10&to=2026-01-10", "from"),  # QA: [from, to) of one day twice is empty: all zeros
    ("from=2025-01-01&to=2026-01-03", "to"),
    # QA: 500 (OverflowError) where the default 30 days run past year 9999 or before year 1
    ("from=9999-12-31", "from"),
    ("to=0001-01-20", "to"),
])
def test_a_bad_query_is_422_naming_the_field(client: Any, auth: Any, query: str, field: str) -> None:
    body = assert_error(client.get(f"{URL}?{query}", headers=auth("alex")), 422, "validation_failed")
    assert list(body["details"]["fields"]) == [field]


@pytest.mark.parametrize("name", ["alex", "olga", "ada", "aude"])
def test_the_staff_read_an_empty_desk(client: Any, auth: Any, name: str) -> None:
    response = client.get(f"{URL}?kind=incident", headers=auth(name))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["period"] == {"from": "2025-12-07", "to": "2026-01-06", "kind": "incident",
                              "generated_at": "2026-01-05T09:00:00+00:00"}
    assert body["volume"] == [{"kind": "incident", "opened": 0, "resolved": 0, "closed": 0}]
    assert body["changes"] == {"outcomes": [], "closed": 0, "implemented": 0, "successful": 0, "success_rate": None}


def test_the_summary_of_a_period(client: Any, services: Any, clock: Any) -> None:
    desk = Desk(client, services)
    build(desk, clock)
    response = client.get(f"{URL}?from={PERIOD[0]}&to={PERIOD[1]}&utm_source=mail", headers=desk.auth("mike"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body == {"period": {"from": PERIOD[0], "to": PERIOD[1], "kind": None, "generated_at": NOW.isoformat()},
                    **EXPECTED}


def test_it_is_documented(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/reports/summary"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"from", "to", "kind"}
    assert {"200", "403", "422"} <= set(operation["responses"])
    assert "ReportSummaryOut" in str(operation["responses"]["200"])


def test_an_empty_kind_is_every_kind_as_on_the_page(client: Any, auth: Any) -> None:
    response = client.get(f"{URL}?kind=", headers=auth("alex"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["period"]["kind"] is None
    assert [v["kind"] for v in response.get_json()["volume"]] == ["incident", "change", "problem", "request"]
