"""Someone whose roles may not use an endpoint at all is told 403 before their input is read: not
422 listing what the body lacks (which told a requester what a user or webhook takes, and that
only their input stood in the way). The refusal is audited as the service's own would be; someone
who may use the endpoint still gets 422 naming the field for the same bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from tests.http.desk import Desk

#: (method, path, a body or query the schema refuses, who may, the audited action)
GATED = [
    ("POST", "/api/v1/users", {"username": 5}, "ada", "create_user"),
    ("PATCH", "/api/v1/users/rita", {"roles": "admin"}, "ada", "update_user"),
    ("POST", "/api/v1/users/rita/password", {}, "ada", "reset_password"),
    ("GET", "/api/v1/users?active=perhaps", None, "aude", "list_users"),
    ("POST", "/api/v1/groups", {}, "ada", "create_group"),
    ("PATCH", "/api/v1/groups/ServiceDesk", {"manager": 7}, "ada", "update_group"),
    ("POST", "/api/v1/groups/ServiceDesk/members", {}, "ada", "add_group_member"),
    ("GET", "/api/v1/groups?q=" + "x" * 500, None, "aude", "list_groups"),
    ("POST", "/api/v1/catalog/items", {}, "olga", "catalog_create"),
    ("PATCH", "/api/v1/catalog/items/HW-LAPTOP", {"cost": "lots"}, "olga", "catalog_update"),
    ("POST", "/api/v1/knowledge", {}, "alex", "write_knowledge"),
    ("POST", "/api/v1/webhooks", {}, "ada", "webhook_create"),
    ("GET", "/api/v1/webhooks?page=0", None, "ada", "webhook_list"),
    ("PUT", "/api/v1/sla/policies", {}, "olga", "sla_policy_save"),
    ("GET", "/api/v1/reports/summary?from=yesterday", None, "alex", "read_reports"),
]


@pytest.fixture()
def desk(client: Any, services: Any) -> Desk:
    return Desk(client, services)


def send(desk: Desk, method: str, path: str, body: Any, who: str) -> Any:
    return desk.client.open(path, method=method, json=body, headers=desk.auth(who))


@pytest.mark.parametrize(("method", "path", "body", "allowed", "action"), GATED,
                         ids=[f"{m} {p.split('?')[0]}" for m, p, *_ in GATED])
def test_a_requester_is_refused_before_her_input_is_read(desk: Desk, services: Any, method: str, path: str,
                                                          body: Any, allowed: str, action: str):
    refused = send(desk, method, path, body, "rita")
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["error"] == "forbidden" and "fields" not in refused.get_json()["details"]
    services.session.expire_all()
    audited = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied",
                                                                AuditEvent.actor == "rita")).all()
    assert [e.payload["action"] for e in audited] == [action]
    # whoever may use it is told what is wrong with the input
    invalid = send(desk, method, path, body, allowed)
    assert invalid.status_code == 422, invalid.get_json()
    assert invalid.get_json()["details"]["fields"]

