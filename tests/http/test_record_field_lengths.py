"""A record's fields are written from its process's data through the declared mapping: text longer
than a field's column is cut to the column's length. PostgreSQL refuses a value longer than a
VARCHAR column (``value too long for type character varying(16)``: a 500 when a process was
started with a 20-character priority); SQLite kept it whole."""

from __future__ import annotations

import pytest

from app.services.records import FIELD_LIMITS
from tests.http.test_records import desk  # noqa: F401 - the fixture deploying mini_ticket

#: mini_ticket's start data variable -> (the record field it fills, its column's length)
MAPPED = {"title": ("title", 500), "description": ("description", 20_000), "priority": ("priority", 16),
          "work_group": ("assignment_group", 128)}


def test_the_limits_are_the_columns_lengths() -> None:
    assert {field: FIELD_LIMITS[field] for field, _ in MAPPED.values()} == dict(MAPPED.values())
    assert (FIELD_LIMITS["status"], FIELD_LIMITS["category"], FIELD_LIMITS["ci"]) == (64, 64, 255)


@pytest.mark.parametrize("variable", sorted(MAPPED))
def test_text_longer_than_its_record_column_is_cut_to_fit(client, auth, desk, variable):  # noqa: F811
    field, limit = MAPPED[variable]
    value = "x" * (limit + 100)
    response = client.post("/api/v1/instances", headers=auth("rita"), json={
        "process_id": "mini_ticket", "data": {"title": "Mail is down", "description": "since 9:00",
                                              "work_group": "ServiceDesk", variable: value}})
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    record = client.get(f"/api/v1/tickets/{response.get_json()['data']['record_number']}", headers=auth("rita"))
    assert record.get_json()[field] == "x" * limit
