"""A robustness pass over every route of the JSON API, driven by its own OpenAPI document.

For each operation the document lists, signed in as an admin (and, for a sample, as a requester),
the test sends malformed input: each documented body field replaced by values of the wrong JSON
type, at its edges or its documented maxLength (``values_for``), a sample of fields inside bodies
(``NESTED``: form data, SLA calendars and escalations), bodies that are not JSON or not the
declared content type, unknown and out-of-range query parameters, path parameters that are no id
the route could hold, bad Authorization headers, other methods, odd upload names and definition
files holding what no database stores. Every answer must be below 500 and a JSON envelope; a
400/422 about a field names it; a value of the wrong JSON type is not taken; a refused request
writes nothing (row counts of every table but the audit trail, which records refusals).

Each request runs in a SAVEPOINT that is rolled back after it, so what one accepted request does
(deactivating a user, changing a password) cannot change what the next one meets. Generation is
deterministic: fixed lists of values, operations in the document's order.

A failure lists every offending (method, path, case, status, body start) at once; with
``FUZZ_LOG=<file>`` every answer is written there. Run it on PostgreSQL too (TEST_DATABASE_URL):
it refuses what SQLite stores (NUL in text, text longer than a VARCHAR, ``Infinity`` in jsonb).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models.base import Base
from tests.http.desk import LAPTOP, Desk

START = {"title": "VPN down", "description": "Cannot connect from home", "category": "network",
         "impact": "medium", "urgency": "medium", "service": "VPN", "ci": "vpn-gw-01"}
NOTICE = {"title": "E-mail is down", "level": "outage", "body": "Nobody can send mail.", "service": "E-mail"}
FREEZE = {"name": "Quarter close", "starts_at": "2026-03-10T18:00:00Z", "ends_at": "2026-03-11T06:00:00Z"}
#: A recurring request the admin makes (app/services/recurring.py).
RECURRING = {"name": "Weekly check", "process_id": "incident_management", "data": START, "days": ["mon"], "time": "07:00"}
ARTICLE = {"title": "Outlook asks for the password again", "symptoms": "A prompt every few minutes.",
           "cause": "A stale cached credential.", "workaround": "Remove the cached credential."}
PASSWORD = "password-1234"


class Raw:
    """A JSON literal json.dumps cannot write (``1e309``: Python reads it as infinity)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


#: One value of each JSON type: a field is sent those not of its documented type.
WRONG_TYPES: dict[str, Any] = {
    "null": None, "true": True, "zero": 0, "float": 1.5, "numeric_string": "12", "list": ["x"],
    "deep_object": _deep(50),
}
#: Values of a field's own type at or past its edges, by documented type.
EDGES: dict[str, dict[str, Any]] = {
    "string": {"empty_string": "", "nul": "a\x00b", "surrogate": "\ud800", "huge_string": "x" * (1 << 20)},
    "integer": {"negative": -1, "int64_overflow": 2**63, "float_overflow": Raw("1e309")},
    "number": {"negative": -1, "int64_overflow": 2**63, "float_overflow": Raw("1e309"),
               "negative_overflow": Raw("-1e309")},
    "boolean": {"zero_float": 0.0},
    "array": {"list_of_null": [None], "list_of_huge": ["x" * (1 << 20)], "list_of_nul": ["a\x00b"]},
    "object": {"nul_key": {"a\x00": 1}, "empty_object": {}},
}
#: Every value (the nested fields, whose types the document does not give, get them all).
VALUES: dict[str, Any] = {**WRONG_TYPES, **{case: v for edges in EDGES.values() for case, v in edges.items()}}


def values_for(described: dict[str, Any]) -> dict[str, Any]:
    """The values a body field ``described`` so in the document is sent: each JSON type but its
    own, and its own type's edges."""
    kind = described.get("type")
    if kind is None:
        return VALUES
    values = {**{case: v for case, v in WRONG_TYPES.items() if not takes(described, v)}, **EDGES.get(kind, {})}
    if kind == "string":
        # the longest text the document allows must fit where it is stored (PostgreSQL refuses
        # text longer than a VARCHAR column; SQLite keeps it); without a stated limit, some lengths
        # just past common column sizes
        for length in [described["maxLength"]] if "maxLength" in described else [17, 65, 129, 256, 501, 5000]:
            values[f"length_{length}"] = "x" * length
    return values


#: Bodies that are not a JSON object, sent as application/json.
NOT_JSON: dict[str, bytes] = {
    "empty": b"", "truncated": b'{"a": ', "null": b"null", "list": b"[]", "number": b"123", "string": b'"s"',
    "not_utf8": b"\xff\xfe{}", "nan": b'{"a": NaN}', "trailing": b"{} {}", "deep": b"[" * 2000 + b"]" * 2000,
    "bom": b"\xef\xbb\xbf{}",
}

#: Path parameter values no route holds: too large for any id column, negative, not a number, NUL.
BAD_PATH_VALUES = ["99999999999999999999999", str(2**63), str(2**31), "-1", "0", "abc", "%00", "a%00b",
                   "%ED%A0%80", "x" * 3000, "INC-99999999999999999999", "KB-99999999999999999999",
                   "INC-%00", "%20", "..%2F..%2Fetc"]

#: The ones also sent as a requester (refused earlier or otherwise than an admin).
REQUESTER_PATH_VALUES = {"99999999999999999999999", "a%00b", "INC-99999999999999999999", "KB-99999999999999999999"}

#: Query values every parameter is sent with; integer and boolean ones get more.
BAD_QUERY_VALUES = ["", "%00", "%ED%A0%80", "x" * 5000, "-1", "abc", "99999999999999999999999"]
BAD_INT_QUERY_VALUES = ["0", "-1", "1.5", str(10**9), str(2**63), "1e309", "NaN"]
BAD_BOOL_QUERY_VALUES = ["maybe", "2", "-1"]
BAD_DATE_QUERY_VALUES = ["2026-13-45", "99999-01-01", "0000-00-00", "2026-01-01T25:00", "1e309", "0001-01-01", "9999-12-31",
                         "9999-12-31T23:59:59", "2026-01-01T00:00:00+14:00", "2026-01-01T00:00:00-23:59"]

#: Routes whose success answer is not JSON (a file download).
NOT_JSON_ANSWERS = {"/api/v1/definitions/{process_id}/bpmn", "/api/v1/tickets/{number}/attachments/{attachment_id}",
                    "/api/v1/schedule.ics"}

#: Tables a refused request may write: the audit trail (a refusal is audited) and the sign-in
#: attempts (a failed sign-in counts towards the lockout).
MAY_CHANGE_ON_REFUSAL = {"audit_event", "audit_head", "login_failure"}


@dataclass
class World:
    desk: Desk
    connection: Any
    params: dict[str, str]
    bodies: dict[tuple[str, str], dict[str, Any]]
    spec: dict[str, Any]
    #: the row counts every request starts from (each is rolled back)
    baseline: dict[str, int]
    failures: list[str] = field(default_factory=list)
    sent: int = 0
    #: the refusals whose writes were looked at (``send``)
    checked: set[tuple[Any, ...]] = field(default_factory=set)

    def schema(self, ref_or_schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in ref_or_schema:
            return self.schema(self.spec["components"]["schemas"][ref_or_schema["$ref"].rsplit("/", 1)[-1]])
        return ref_or_schema


def _counts(connection: Any) -> dict[str, int]:
    tables = [t for name, t in Base.metadata.tables.items() if name not in MAY_CHANGE_ON_REFUSAL]
    row = connection.execute(select(*[select(func.count()).select_from(t).scalar_subquery() for t in tables])).one()
    return dict(zip([t.name for t in tables], row, strict=True))


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        shared = ops.get("parameters", [])
        for method, op in ops.items():
            if method == "parameters":
                continue
            yield method.upper(), path, {**op, "parameters": [*shared, *op.get("parameters", [])]}


@pytest.fixture()
def world(client: Any, services: Any, connection: Any) -> World:
    desk = Desk(client, services)
    incident = desk.start("rita", "incident_management", START)
    number = incident["data"]["record_number"]
    other = desk.start("rita", "incident_management", {**START, "title": "Second"})["data"]["record_number"]
    record = desk.record(number)
    task_id = record["open_tasks"][0]["id"]
    rita, ada, alex = desk.auth("rita"), desk.auth("ada"), desk.auth("alex")
    attached = client.post(f"/api/v1/tickets/{number}/attachments", headers=rita,
                           data={"file": (io.BytesIO(b"log line\n"), "vpn.log", "text/plain")},
                           content_type="multipart/form-data")
    assert attached.status_code == 201, attached.get_json()
    article = client.post("/api/v1/knowledge", json=ARTICLE, headers=alex)
    assert article.status_code == 201, article.get_json()
    hook = client.post("/api/v1/webhooks", headers=ada,
                       json={"url": "https://hooks.example.org/x", "secret": "s" * 32, "events": ["*"]})
    assert hook.status_code == 201, hook.get_json()
    policy = client.put("/api/v1/sla/policies", headers=ada, json={
        "kind": "incident", "priority": "P3", "response_seconds": 3600, "resolution_seconds": 7200})
    assert policy.status_code == 200, policy.get_json()
    for ci in ({"name": "fuzz-mail-01", "class": "hardware"}, {"name": "fuzz-mail-svc", "class": "service"}):
        made = client.post("/api/v1/cis", headers=ada, json=ci)
        assert made.status_code == 201, made.get_json()
    related = client.post("/api/v1/cis/fuzz-mail-svc/relationships", headers=ada,
                          json={"target": "fuzz-mail-01", "kind": "runs_on"})
    assert related.status_code == 201, related.get_json()
    window = client.post("/api/v1/cis/fuzz-mail-svc/windows", headers=ada,
                         json={"days": ["sun"], "start": "02:00", "end": "06:00", "timezone": "Europe/Berlin"})
    assert window.status_code == 201, window.get_json()
    freeze = client.post("/api/v1/schedule/freezes", headers=ada, json=FREEZE)
    assert freeze.status_code == 201, freeze.get_json()
    notice = client.post("/api/v1/status", headers=ada, json=NOTICE)
    assert notice.status_code == 201, notice.get_json()
    template = client.post("/api/v1/response-templates", headers=ada,
                           json={"name": "On it", "body": "{{agent}} works on {{number}}.", "shared": True})
    assert template.status_code == 201, template.get_json()
    view = client.post("/api/v1/users/me/views", headers=ada, json={"name": "Mine", "query": "open=1"})
    assert view.status_code == 201, view.get_json()
    recurring = client.post("/api/v1/recurring-requests", headers=ada, json=RECURRING)
    assert recurring.status_code == 201, recurring.get_json()
    entry = client.post(f"/api/v1/tickets/{number}/time-worked", headers=ada, json={"minutes": 10})
    assert entry.status_code == 201, entry.get_json()
    tokens = client.get("/api/v1/users/rita/tokens", headers=ada).get_json()
    notes = client.get("/api/v1/notifications", headers=ada).get_json()["items"] or desk.notifications("rita")
    item = client.get("/api/v1/catalog/items/HW-LAPTOP", headers=ada).get_json()
    new_item = {k: item[k] for k in ("name", "description", "owner_group", "fulfilment_group", "form",
                                     "target_hours") if item.get(k) is not None}
    new_item.update(category_code=item["category"], approval_rule=item["approval"])
    params = {
        "process_id": "incident_management", "instance_id": str(incident["id"]), "task_id": str(task_id),
        "number": number, "attachment_id": str(attached.get_json()["id"]), "code": "HW-LAPTOP",
        "webhook_id": str(hook.get_json()["id"]), "policy_id": str(policy.get_json()["id"]),
        "notification_id": str(notes[0]["id"]) if notes else "1", "username": "rita", "name": "ServiceDesk",
        "article": article.get_json()["number"], "ci": "fuzz-mail-svc",
        "relationship_id": str(related.get_json()["id"]), "token_id": str(tokens["items"][0]["id"]),
        "freeze_id": str(freeze.get_json()["id"]), "window_id": str(window.get_json()["id"]),
        "notice_id": str(notice.get_json()["id"]), "template_id": str(template.get_json()["id"]),
        "entry_id": str(entry.get_json()["id"]), "view_id": str(view.get_json()["id"]),
        "request_id": str(recurring.get_json()["id"]),
    }
    kb = params["article"]
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/v1/auth/token"): {"username": "rita", "password": PASSWORD},
        ("POST", "/api/v1/instances"): {"process_id": "incident_management", "data": START},
        ("POST", "/api/v1/instances/{instance_id}/messages"): {"name": "customer_reply", "payload": {}},
        ("POST", "/api/v1/instances/{instance_id}/cancel"): {"reason": "A duplicate."},
        ("POST", "/api/v1/instances/{instance_id}/retry"): {"data": {}},
        ("POST", "/api/v1/instances/{instance_id}/migrate"): {"version": 1},
        ("POST", "/api/v1/definitions/{process_id}/migrate"): {"from_version": 1, "dry_run": True},
        ("POST", "/api/v1/tasks/{task_id}/reassign"): {"username": "alex"},
        ("POST", "/api/v1/tasks/bulk"): {"action": "claim", "task_ids": [task_id]},
        ("POST", "/api/v1/tasks/{task_id}/complete"): {"data": {"priority": "P3"}},
        ("POST", "/api/v1/tickets/{number}/comments"): {"body": "Any news?"},
        ("POST", "/api/v1/tickets/{number}/links"): {"number": other, "link_type": "related"},
        ("POST", "/api/v1/tickets/{number}/close-as-duplicate"): {"number": other, "note": "Same outage"},
        ("POST", "/api/v1/tickets/close-as-duplicate"): {"numbers": [number], "of": other, "note": "Same outage"},
        ("POST", "/api/v1/tickets/{number}/articles"): {"number": kb},
        ("POST", "/api/v1/catalog/items"): {**new_item, "code": "HW-FUZZ", "cost": 10},
        ("PATCH", "/api/v1/catalog/items/{code}"): {"name": "Laptop"},
        ("POST", "/api/v1/catalog/{code}/requests"): {"data": LAPTOP},
        ("POST", "/api/v1/knowledge"): ARTICLE,
        ("PATCH", "/api/v1/knowledge/{number}"): {"version": 1, "title": "Outlook prompts"},
        ("POST", "/api/v1/knowledge/{number}/publish"): {"version": 1},
        ("POST", "/api/v1/knowledge/{number}/retire"): {"version": 1},
        ("POST", "/api/v1/knowledge/{number}/feedback"): {"helpful": True},
        ("PUT", "/api/v1/users/me/preferences"): {"email_opt_out": True},
        ("POST", "/api/v1/webhooks"): {"url": "https://hooks.example.org/y", "secret": "t" * 32, "events": ["*"]},
        ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"active": False},
        ("PUT", "/api/v1/sla/policies"): {"kind": "incident", "priority": "P2", "response_seconds": 3600,
                                          "resolution_seconds": 7200},
        ("POST", "/api/v1/users"): {"username": "nora", "password": "a-long-password"},
        ("PATCH", "/api/v1/users/me"): {"locale": "en"},
        ("POST", "/api/v1/users/me/password"): {"current_password": PASSWORD, "new_password": "another-long-pw"},
        ("PATCH", "/api/v1/users/{username}"): {"display_name": "Rita"},
        ("POST", "/api/v1/users/{username}/password"): {"password": "a-long-password-2"},
        ("POST", "/api/v1/users/me/two-step/confirm"): {"code": "123456", "current_password": "x"},
        ("POST", "/api/v1/users/me/two-step/recovery-codes"): {"current_password": PASSWORD, "code": "123456"},
        ("POST", "/api/v1/users/me/two-step/disable"): {"current_password": PASSWORD, "code": "123456"},
        ("PUT", "/api/v1/users/{username}/away"): {"delegate": "alex", "until": "2026-01-12T09:00:00Z"},
        ("POST", "/api/v1/groups"): {"name": "FuzzGroup"},
        ("PATCH", "/api/v1/groups/{name}"): {"description": "The desk"},
        ("POST", "/api/v1/groups/{name}/members"): {"username": "alex"},
        ("POST", "/api/v1/cis"): {"name": "fuzz-switch-01", "class": "network"},
        ("PATCH", "/api/v1/cis/{name}"): {"location": "Room 2"},
        ("POST", "/api/v1/cis/{name}/relationships"): {"target": "fuzz-mail-01", "kind": "depends_on"},
        ("POST", "/api/v1/cis/{name}/windows"): {"days": ["sat"], "start": "22:00", "end": "02:00", "name": "Nightly"},
        ("PATCH", "/api/v1/cis/{name}/windows/{window_id}"): {"end": "05:00"},
        ("POST", "/api/v1/schedule/freezes"): {**FREEZE, "name": "Second freeze"},
        ("PATCH", "/api/v1/schedule/freezes/{freeze_id}"): {"reason": "Finance closes the quarter."},
        ("POST", "/api/v1/status"): {**NOTICE, "title": "Printing is slow", "level": "degraded"},
        ("POST", "/api/v1/status/{notice_id}/updates"): {"version": 1, "body": "Mail flows again, slowly."},
        ("POST", "/api/v1/status/{notice_id}/resolve"): {"version": 1, "body": "Fixed."},
        ("PUT", "/api/v1/status/{notice_id}/affected"): {"affected": True},
        ("POST", "/api/v1/response-templates"): {"name": "Closing", "body": "{{number}} is closed.", "kind": "incident"},
        ("PATCH", "/api/v1/response-templates/{template_id}"): {"version": 1, "body": "{{agent}} is on {{number}}."},
        ("POST", "/api/v1/tickets/{number}/time-worked"): {"minutes": 25, "note": "Read the logs."},
        ("POST", "/api/v1/users/me/views"): {"name": "Open incidents", "query": "kind=incident&open=1"},
        ("POST", "/api/v1/recurring-requests"): {**RECURRING, "name": "Daily check"},
        ("PATCH", "/api/v1/recurring-requests/{request_id}"): {"time": "08:00"},
    }
    spec = client.get("/api/v1/openapi.json").get_json()
    services.session.commit()
    return World(desk, connection, params, bodies, spec, _counts(connection))


def encode(body: Any) -> bytes:
    raws: dict[str, str] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            key = f"__raw_{len(raws)}__"
            raws[key] = value.literal
            return key
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    text = json.dumps(swap(body))
    for key, literal in raws.items():
        text = text.replace(f'"{key}"', literal)
    return text.encode()


def fill(path: str, params: dict[str, str], **override: str) -> str:
    """``path`` with its parameters the objects in ``params`` (``number`` is an article's under
    /knowledge, a record's elsewhere), those in ``override`` over them."""
    if path.startswith("/api/v1/knowledge/"):
        params = {**params, "number": params["article"]}
    if path.startswith("/api/v1/cis/"):
        params = {**params, "name": params["ci"]}
    for name, value in {**params, **override}.items():
        path = path.replace("{" + name + "}", value)
    return path


def send(world: World, who: str, method: str, path: str, case: str, *, field_name: str | None = None,
         data: bytes | dict[str, Any] | None = None, content_type: str | None = None,
         query: str = "", json_answer: bool = True, kind: str | None = None) -> Any:
    """Send one request in a SAVEPOINT rolled back after it; note what breaks the rules.

    Whether a refused request wrote anything is looked at for the first refusal of each kind
    (who, method, path or ``kind``, field, status) of a request that may write (not GET): counting
    every table's rows takes longer than most requests, on PostgreSQL the more so the more
    rolled-back rows the test leaves behind."""
    client = world.desk.client
    savepoint = world.connection.begin_nested()
    try:
        url = path + (f"?{query}" if query else "")
        try:
            response = client.open(url, method=method, headers=world.desk.auth(who), data=data,
                                   content_type=content_type)
        except Exception as exc:  # the test app propagates a view's exception: a 500 in production
            world.failures.append(f"{who} {method} {path[:80]} {case}: raised {exc!r:.300}")
            return None
        world.sent += 1
        status = response.status_code
        if os.environ.get("FUZZ_LOG"):  # every answer, to read what the routes do with the input
            with open(os.environ["FUZZ_LOG"], "a") as log:
                log.write(f"{status} {who} {method} {path[:80]} {case} {response.get_data()[:200]!r}\n")
        where = f"{who} {method} {path[:80]} {case}: {status} {response.get_data()[:160]!r}"
        if status >= 500:
            world.failures.append(where)
        elif (status >= 400 or json_answer) and status != 204 and response.mimetype != "application/json":
            world.failures.append(f"{where} (not JSON: {response.mimetype})")
        elif status >= 400:
            body = response.get_json()
            if set(body) != {"error", "message", "details"}:
                world.failures.append(f"{where} (not the error envelope)")
            elif field_name is not None and status in (400, 422) and field_name not in json.dumps(body):
                world.failures.append(f"{where} (does not name {field_name})")
            elif method != "GET" and (written := _written(world, (who, method, kind or path, field_name, status))):
                world.failures.append(f"{where} (refused, yet wrote {written})")
        return response
    finally:
        if savepoint.is_active:
            savepoint.rollback()
        world.desk.services.session.expire_all()


def _written(world: World, key: tuple[Any, ...]) -> dict[str, tuple[int, int]]:
    """The tables whose row count differs from the baseline, {table: (before, now)}, for the first
    request of its ``key``; {} for the others."""
    if key in world.checked:
        return {}
    world.checked.add(key)
    now = _counts(world.connection)
    return {table: (world.baseline[table], now[table]) for table in now if now[table] != world.baseline[table]}


def report(world: World) -> None:
    assert not world.failures, f"{len(world.failures)} of {world.sent} requests broke the rules:\n" + "\n".join(
        world.failures)


def json_fields(world: World, op: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return dict(world.schema(content["application/json"]["schema"]).get("properties", {}))


def json_type(value: Any) -> str:
    """``value``'s JSON type, as OpenAPI names it."""
    if isinstance(value, Raw):
        return "number"
    for kind, name in ((type(None), "null"), (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    raise TypeError(value)


def takes(described: dict[str, Any], value: Any) -> bool:
    """Whether a field ``described`` so in the document may take ``value``'s JSON type."""
    kind, sent = described.get("type"), json_type(value)
    if kind is None or sent == kind or (kind, sent) == ("number", "integer"):
        return True
    return sent == "null" and bool(described.get("nullable"))


def test_every_route_under_api_is_in_the_document_and_every_body_has_a_valid_base(app: Any, world: World) -> None:
    documented = {(m, p) for m, p, _ in operations(world.spec)}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint == "api-docs.openapi_json":
            continue
        path = rule.rule
        for converter in ("int:", "string:"):
            path = path.replace("<" + converter, "{")
        path = path.replace(">", "}")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            assert (method, path) in documented, (method, path)
    for method, path, op in operations(world.spec):
        if json_fields(world, op) is not None:
            assert (method, path) in world.bodies, f"give {method} {path} a valid body in world()"


def _field_cases(world: World, who: str, only: set[str] | None = None) -> None:
    for method, path, op in operations(world.spec):
        fields = json_fields(world, op)
        if fields is None:
            continue
        url = fill(path, world.params)
        base = world.bodies[(method, path)]
        for name, described in fields.items():
            described = world.schema(described)
            for case, value in values_for(described).items():
                if only is not None and case not in only:
                    continue
                response = send(world, who, method, url, f"{name}={case}", field_name=name,
                                data=encode({**base, name: value}), content_type="application/json")
                if response is None:
                    continue
                if case == "int64_overflow" and described.get("type") == "integer" and response.status_code not in (
                        400, 403, 404, 422):
                    # an integer beyond any column it goes to is invalid, not a stale version (409)
                    world.failures.append(f"{who} {method} {path} {name}={case}: {response.status_code}, not 422")
                if response.status_code < 300 and not takes(described, value):
                    world.failures.append(f"{who} {method} {path} {name}={case}: {response.status_code}, a "
                                          f"{json_type(value)} taken for a {described.get('type')}")


def test_each_body_field_of_the_wrong_type_or_size_is_refused_naming_it(world: World) -> None:
    _field_cases(world, "ada")
    report(world)


#: Fields inside a body's objects: (method, path, dotted field, the body around it); the task's
#: form is sent by an agent of its lane (an admin is refused before the form is read).
CALENDAR = {"timezone": "Europe/Berlin", "hours": {"mon": [["08:00", "18:00"]]}, "holidays": ["2026-12-25"]}
NESTED: list[tuple[str, str, str, dict[str, Any]]] = [
    ("PUT", "/api/v1/sla/policies", "calendar.timezone", {"calendar": CALENDAR}),
    ("PUT", "/api/v1/sla/policies", "calendar.hours", {"calendar": CALENDAR}),
    ("PUT", "/api/v1/sla/policies", "calendar.hours.mon", {"calendar": CALENDAR}),
    ("PUT", "/api/v1/sla/policies", "calendar.holidays", {"calendar": CALENDAR}),
    ("PUT", "/api/v1/sla/policies", "escalation.breach.raise_priority", {"escalation": {"breach": {}}}),
    ("PUT", "/api/v1/sla/policies", "escalation.breach.reassign_group", {"escalation": {"breach": {}}}),
    ("PUT", "/api/v1/sla/policies", "escalation.warning.notify", {"escalation": {"warning": {}}}),
    ("POST", "/api/v1/instances", "data.title", {}),
    ("POST", "/api/v1/instances", "data.impact", {}),
    ("POST", "/api/v1/tasks/{task_id}/complete", "data.priority", {}),
    ("POST", "/api/v1/catalog/{code}/requests", "data.justification", {}),
    ("POST", "/api/v1/instances/{instance_id}/messages", "payload.reply", {}),
]


def _set(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the field at ``dotted`` set to ``value``."""
    copy = json.loads(json.dumps(body))
    *outer, last = dotted.split(".")
    where = copy
    for key in outer:
        where = where.setdefault(key, {})
    where[last] = value
    return copy


def test_each_nested_field_of_the_wrong_type_or_size_is_refused_naming_it(world: World) -> None:
    for method, path, dotted, around in NESTED:
        base = {**world.bodies[(method, path)], **json.loads(json.dumps(around))}
        url = fill(path, world.params)
        for case, value in {**VALUES, "length_129": "x" * 129, "length_256": "x" * 256}.items():
            who = "alex" if "/tasks/" in path else "ada"
            send(world, who, method, url, f"{dotted}={case}", field_name=dotted.rsplit(".", 1)[-1],
                 data=encode(_set(base, dotted, value)), content_type="application/json")
    report(world)


def test_a_requester_sending_wrong_field_types_gets_no_server_error(world: World) -> None:
    _field_cases(world, "rita", only={"null", "int64_overflow", "huge_string", "list"})
    report(world)


def test_bodies_that_are_not_json_or_not_the_declared_type_are_refused(world: World) -> None:
    for method, path, op in operations(world.spec):
        content = op.get("requestBody", {}).get("content", {})
        if not content:
            continue
        url = fill(path, world.params)
        base = world.bodies.get((method, path), {})
        for case, raw in NOT_JSON.items():
            send(world, "ada", method, url, f"body={case}", data=raw, content_type="application/json")
        send(world, "rita", method, url, "body=truncated", data=NOT_JSON["truncated"], content_type="application/json")
        for who in ("ada", "rita"):
            send(world, who, method, url, "text/plain", data=encode(base), content_type="text/plain")
        send(world, "ada", method, url, "form", data={"x": "1"}, content_type="application/x-www-form-urlencoded")
        send(world, "ada", method, url, "multipart", data={"file": (io.BytesIO(b"x"), "x.txt")},
             content_type="multipart/form-data")
        send(world, "ada", method, url, "no content type", data=encode(base))
    report(world)


def test_uploads_with_odd_names_or_no_file_are_refused(world: World) -> None:
    for url, part in ((fill("/api/v1/tickets/{number}/attachments", world.params), "file"),
                      ("/api/v1/definitions", "files")):
        for case, filename in (("nul name", b"a\x00b.log"), ("not utf-8 name", b"\xed\xa0\x80.log"),
                               ("long name", b"x" * 5000), ("empty name", b""), ("slashes", b"../../etc/passwd"),
                               ("control", b"a\x1b[2J.bpmn"), ("quote", b'a"b.log')):
            raw = (b"--fz\r\nContent-Disposition: form-data; name=\"" + part.encode() + b"\"; filename=\"" + filename
                   + b"\"\r\nContent-Type: text/plain\r\n\r\n<x/>\r\n--fz--\r\n")
            send(world, "ada", "POST", url, case, field_name="file", data=raw,
                 content_type="multipart/form-data; boundary=fz")
        send(world, "ada", "POST", url, "other part", data={"zzz": (io.BytesIO(b"x"), "x.log")},
             content_type="multipart/form-data")
        send(world, "ada", "POST", url, "text part", data={part: "just text"}, content_type="multipart/form-data")
        send(world, "ada", "POST", url, "broken multipart", data=b"--x\r\nno end", content_type="multipart/form-data")
        send(world, "ada", "POST", url, "no boundary", data=b"abc", content_type="multipart/form-data; boundary=")
    report(world)


#: The parameters a query must hold to be read at all, sent with each bad one (a bad value of
#: another parameter was answered 422 naming the missing ones, not it).
BASE_QUERIES = {"/api/v1/schedule/clashes": {"from": "2026-03-10T20:00:00Z", "to": "2026-03-10T22:00:00Z"},
                "/api/v1/instances/callers": {"process_id": "incident_management"}}


def test_bad_query_parameters_are_refused_or_ignored(world: World) -> None:
    for method, path, op in operations(world.spec):
        if method != "GET":
            continue
        url = fill(path, world.params)
        json_answer = path not in NOT_JSON_ANSWERS
        base = BASE_QUERIES.get(path, {})
        send(world, "ada", method, url, "unknown", query="&".join([*(f"{k}={v}" for k, v in base.items()), "zzz=1"]),
             json_answer=json_answer)
        for parameter in op["parameters"]:
            if parameter["in"] != "query":
                continue
            name = parameter["name"]
            rest = "".join(f"{k}={v}&" for k, v in base.items() if k != name)
            kind = parameter.get("schema", {}).get("type")
            values = list(BAD_QUERY_VALUES)
            if kind == "integer":
                values += BAD_INT_QUERY_VALUES
            if kind == "boolean":
                values += BAD_BOOL_QUERY_VALUES
            if name in ("from", "to"):
                values += BAD_DATE_QUERY_VALUES
            for value in values:
                send(world, "ada", method, url, f"{name}={value[:20]}", field_name=name, query=f"{rest}{name}={value}",
                     json_answer=json_answer)
            send(world, "ada", method, url, f"{name} twice", query=f"{rest}{name}=1&{name}=2", json_answer=json_answer)
    report(world)


def test_path_parameters_no_route_holds_are_not_found_or_refused(world: World) -> None:
    for method, path, op in operations(world.spec):
        names = [p["name"] for p in op["parameters"] if p["in"] == "path"]
        base = world.bodies.get((method, path))
        for name in names:
            for value in BAD_PATH_VALUES:
                url = fill(path, world.params, **{name: value})
                for who in ("ada", "rita") if value in REQUESTER_PATH_VALUES else ("ada",):
                    send(world, who, method, url, f"{name}={value[:30]}", kind=f"{path} {name}",
                         data=encode(base) if base is not None else None,
                         content_type="application/json" if base is not None else None,
                         json_answer=path not in NOT_JSON_ANSWERS)
    report(world)


#: Authorization headers that hold no token the desk issued.
BAD_AUTHORIZATION = ["", "Bearer", "Bearer ", "Basic cml0YTp4", "Bearer " + "x" * 10000, "Bearer a b",
                     "Bearer \u00e9\u00e8", "bearer\tx", "Bearer %00", "Bearer ../../etc"]


def test_bad_authorization_headers_and_other_methods_are_refused(world: World) -> None:
    client = world.desk.client
    for method, path, _op in operations(world.spec):
        url = fill(path, world.params)
        for header in BAD_AUTHORIZATION:
            response = client.open(url, method=method, headers={"Authorization": header})
            if response.status_code >= 500 or response.mimetype != "application/json":
                world.failures.append(f"{method} {path} Authorization={header[:20]!r}: {response.status_code} "
                                      f"{response.get_data()[:160]!r}")
    for path in world.spec["paths"]:
        url = fill(path, world.params)
        for other in ("HEAD", "OPTIONS", "TRACE", "PROPFIND"):
            response = client.open(url, method=other, headers=world.desk.auth("ada"))
            if response.status_code >= 500 or (other != "HEAD" and response.status_code >= 400
                                               and response.mimetype != "application/json"):
                world.failures.append(f"{other} {path}: {response.status_code} {response.get_data()[:160]!r}")
    report(world)


def _files_with(folder: str, name: str, old: bytes, new: bytes) -> bytes:
    """A multipart body of every fixture file of ``folder`` with ``old`` replaced by ``new`` in ``name``."""
    from tests.conftest import FIXTURES

    body = b""
    for path in sorted((FIXTURES / folder).iterdir()):
        content = path.read_bytes()
        if path.name == name:
            assert old in content, (name, old)
            content = content.replace(old, new)
        body += (b"--fz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + path.name.encode()
                 + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + content + b"\r\n")
    return body + b"--fz--\r\n"


@pytest.mark.parametrize(("folder", "name", "old", "new"), [
    ("processes", "details-schema.json", b'"Order details"', b'"Order\\u0000details"'),
    ("processes", "details-schema.json", b'"Order details"', b'"Order \\ud800"'),
    ("processes", "details-schema.json", b'"notes"', b'"no\\u0000tes"'),
    ("records", "mini_ticket.record.json", b'"workaround": "workaround"', b'"work\\u0000around": "workaround"'),
    ("processes", "details-schema.json", b'"maximum": 100', b'"maximum": 100, "default": 1e309'),
    ("processes", "details-schema.json", b'"title": "Notes"', b'"title": "Notes", "examples": [-1e309]'),
])
def test_definition_files_with_values_no_database_stores_are_refused_naming_the_file(
        world: World, folder: str, name: str, old: bytes, new: bytes) -> None:
    """QA: PostgreSQL's jsonb refuses ``\\u0000`` and ``Infinity`` (what ``1e309`` is read as), and no
    UTF-8 spells a lone surrogate: a form file holding one was a 500 when deployed."""
    response = send(world, "ada", "POST", "/api/v1/definitions", name, field_name=name,
                    data=_files_with(folder, name, old, new), content_type="multipart/form-data; boundary=fz")
    report(world)
    body = response.get_json()
    assert response.status_code == 422 and body["details"]["file"] == name, body
    assert "NUL character or an unpaired surrogate" in body["message"] or "beyond the range of a 64-bit float" in body[
        "message"], body
