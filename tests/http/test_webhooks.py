"""The webhook API (admin): list, create, read, update, delete, delivery log, and the SSRF guard.

Webhooks may not reach loopback, private, link-local or other non-public addresses unless
WEBHOOK_ALLOW_PRIVATE_NETWORKS is set: refused with 422 when saved, and again before every delivery
(DNS may answer differently by then). Names are resolved by a stand-in for ``socket.getaddrinfo``
(made-up names only; no test asks real DNS); receivers listen on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.models import AuditEvent, DeliveryAttempt, OutboxMessage, Webhook
from tests.http.helpers import assert_error

SECRET = "a-webhook-secret-of-some-length"
PUBLIC = "93.184.216.34"


class FakeDns:
    """Stands in for ``socket.getaddrinfo``: names in ``answers`` resolve to their addresses, IP literals
    as usual, any other name not at all."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.answers: dict[str, list[str]] = {}

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower() in self.answers:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                    else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in self.answers[name.lower()]]
        try:
            ipaddress.ip_address(name)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return self.real(host, port, *args, **kwargs)


@pytest.fixture()
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    fake.answers["hooks.example.com"] = [PUBLIC]
    fake.answers["other.example.com"] = [PUBLIC]
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture()
def config(app: Any) -> dict[str, Any]:
    """The configuration the services read (tests change it in place)."""
    return app.extensions["processdesk"].runtime.config  # type: ignore[no-any-return]


def create(client: Any, headers: dict[str, str], **fields: Any) -> Any:
    body = {"url": "https://hooks.example.com/processdesk", "secret": SECRET, "events": ["task.assigned"], **fields}
    return client.post("/api/v1/webhooks", headers=headers, json=body)


def made(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = create(client, headers, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def audit_events(services: Any, event_type: str) -> list[AuditEvent]:
    return list(services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                                         .order_by(AuditEvent.seq)))


def queue_event(services: Any, event_type: str = "task.assigned") -> None:
    services.notifications.publish(event_type, {"subject": "Mail is down", "record": "INC-000001"})
    services.session.commit()


# -- the API -----------------------------------------------------------------------------------------------


def test_admins_list_read_update_and_delete_webhooks(client, auth, services, dns):
    ada = auth("ada")
    first = made(client, ada)
    second = made(client, ada, url="https://other.example.com/hook", events=["*"])
    assert set(first) == {"id", "url", "events", "active", "created_at"}

    listing = client.get("/api/v1/webhooks", headers=ada)
    assert listing.status_code == 200
    body = listing.get_json()
    assert (body["page"], body["total"], body["total_exact"]) == (1, 2, True)
    assert [h["id"] for h in body["items"]] == [second["id"], first["id"]]  # newest first
    paged = client.get("/api/v1/webhooks?page=2&per_page=1", headers=ada).get_json()
    assert (paged["page"], paged["per_page"], paged["total"]) == (2, 1, 2)
    assert [h["id"] for h in paged["items"]] == [first["id"]]
    assert_error(client.get("/api/v1/webhooks?per_page=0", headers=ada), 422, "validation_failed")

    read = client.get(f"/api/v1/webhooks/{first['id']}", headers=ada)
    assert read.status_code == 200 and read.get_json() == first

    patched = client.patch(f"/api/v1/webhooks/{first['id']}", headers=ada, json={
        "url": "https://other.example.com/v2", "events": ["sla.breach", "record.resolved"], "active": False,
        "secret": "another-secret-of-16-plus"})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json() == {**first, "url": "https://other.example.com/v2",
                                  "events": ["sla.breach", "record.resolved"], "active": False}
    row = services.session.get(Webhook, first["id"], populate_existing=True)
    assert row.secret == "another-secret-of-16-plus"
    # Each field is optional; absent ones stay.
    again = client.patch(f"/api/v1/webhooks/{first['id']}", headers=ada, json={"active": True}).get_json()
    assert again["active"] is True and again["url"] == "https://other.example.com/v2"

    deleted = client.delete(f"/api/v1/webhooks/{first['id']}", headers=ada)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert_error(client.get(f"/api/v1/webhooks/{first['id']}", headers=ada), 404, "not_found")
    assert_error(client.patch(f"/api/v1/webhooks/{first['id']}", headers=ada, json={"active": True}), 404, "not_found")
    assert_error(client.delete(f"/api/v1/webhooks/{first['id']}", headers=ada), 404, "not_found")
    assert_error(client.get(f"/api/v1/webhooks/{first['id']}/deliveries", headers=ada), 404, "not_found")
    remaining = client.get("/api/v1/webhooks", headers=ada).get_json()
    assert remaining["total"] == 1 and [h["id"] for h in remaining["items"]] == [second["id"]]
    # The row stays for the delivery log, without its secret.
    row = services.session.get(Webhook, first["id"], populate_existing=True)
    assert row.deleted_at is not None and row.active is False and row.secret == ""


def test_every_change_is_audited_without_the_secret(client, auth, services, dns):
    ada = auth("ada")
    hook = made(client, ada)
    client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"events": ["*"], "secret": "rotated-secret-0123456"})
    client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"events": ["*"]})  # no change: no event
    client.delete(f"/api/v1/webhooks/{hook['id']}", headers=ada)

    updated = audit_events(services, "webhook_updated")
    assert [e.payload for e in updated] == [{"id": hook["id"], "changed": ["events", "secret"], "events": ["*"]}]
    assert updated[0].actor == "ada"
    deleted = audit_events(services, "webhook_deleted")
    assert [e.payload for e in deleted] == [{"id": hook["id"], "url": hook["url"], "cancelled": 0}]
    everything = json.dumps([e.payload for e in audit_events(services, "webhook_created") + updated + deleted])
    assert SECRET not in everything and "rotated-secret" not in everything


def test_the_secret_is_never_in_a_response(client, auth, dns):
    ada = auth("ada")
    hook = made(client, ada)
    responses = [
        create(client, ada, url="https://other.example.com/x"),
        client.get("/api/v1/webhooks", headers=ada),
        client.get(f"/api/v1/webhooks/{hook['id']}", headers=ada),
        client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"secret": "rotated-secret-0123456"}),
        client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"secret": "short"}),
        client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=ada),
        client.get("/api/v1/openapi.json"),
    ]
    for response in responses[:-1]:
        text = response.get_data(as_text=True)
        assert SECRET not in text and "rotated-secret" not in text and '"secret": "' not in text, text
    schemas = responses[-1].get_json()["components"]["schemas"]
    assert "secret" not in schemas["WebhookOut"]["properties"]


def test_a_webhook_subscribes_to_each_event_once(client, auth, dns):
    ada = auth("ada")
    hook = made(client, ada, events=["record.resolved", "task.assigned", "record.resolved"])
    assert hook["events"] == ["record.resolved", "task.assigned"]
    assert made(client, ada, events=["*", "task.assigned", "*"])["events"] == ["*"]
    patched = client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"events": ["sla.breach"] * 20})
    assert patched.status_code == 200 and patched.get_json()["events"] == ["sla.breach"]


def test_unknown_webhooks_are_404(client, auth):
    ada = auth("ada")
    for method, path, body in (("GET", "/api/v1/webhooks/999", None), ("PATCH", "/api/v1/webhooks/999", {"active": False}),
                               ("DELETE", "/api/v1/webhooks/999", None), ("GET", "/api/v1/webhooks/999/deliveries", None)):
        response = client.open(path, method=method, headers=ada, json=body)
        error = assert_error(response, 404, "not_found")
        assert "999" in error["message"], (method, path, error)


@pytest.mark.parametrize("who", ["rita", "alex", "olga", "aude"])
def test_only_admins_manage_webhooks_and_refusals_are_audited(client, auth, services, dns, who):
    hook = made(client, auth("ada"))
    calls = [("GET", "/api/v1/webhooks", None, "webhook_list"),
             ("POST", "/api/v1/webhooks", {"url": "https://hooks.example.com/x", "secret": SECRET, "events": ["*"]},
              "webhook_create"),
             ("GET", f"/api/v1/webhooks/{hook['id']}", None, "webhook_read"),
             ("PATCH", f"/api/v1/webhooks/{hook['id']}", {"active": False}, "webhook_update"),
             ("DELETE", f"/api/v1/webhooks/{hook['id']}", None, "webhook_delete"),
             ("GET", f"/api/v1/webhooks/{hook['id']}/deliveries", None, "webhook_deliveries")]
    for method, path, body, _action in calls:
        assert_error(client.open(path, method=method, headers=auth(who), json=body), 403, "forbidden")
    refused = [e for e in audit_events(services, "access_denied") if e.actor == who]
    assert [e.payload["action"] for e in refused] == [action for *_, action in calls]
    assert all(e.payload["reason"] == "admin only" for e in refused)
    # Nothing changed.
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=auth("ada")).get_json() == hook


def test_without_a_token_it_is_401(client):
    assert_error(client.get("/api/v1/webhooks"), 401, "unauthorized")
    assert_error(client.delete("/api/v1/webhooks/1"), 401, "unauthorized")


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://hooks.example.com/x"}, "url"),
    ({"url": "hooks.example.com/no-scheme"}, "url"),
    ({"url": "https://user:pw@hooks.example.com/"}, "url"),
    ({"url": "http://"}, "url"),  # too short
    ({"url": "https:///path"}, "url"),  # no host
    ({"url": None}, "url"),
    ({"url": "https://hooks.example.com/" + "x" * 1000}, "url"),
    ({"secret": "short"}, "secret"),
    ({"secret": None}, "secret"),
    ({"events": []}, "events"),
    ({"events": ["nope"]}, "events"),
    ({"events": "task.assigned"}, "events"),
    ({"active": "maybe"}, "active"),
])
def test_invalid_changes_are_422_naming_the_field(client, auth, services, dns, body, field):
    ada = auth("ada")
    hook = made(client, ada)
    response = client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json=body)
    error = assert_error(response, 422, "validation_failed")
    assert list(error["details"]["fields"]) == [field], error
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=ada).get_json() == hook
    assert audit_events(services, "webhook_updated") == []
    if field != "active":  # creation knows no "active"
        created = create(client, ada, **{"url": "https://hooks.example.com/x", **body})
        assert field in assert_error(created, 422, "validation_failed")["details"]["fields"]


def test_allowed_hosts_are_checked_when_saving(client, auth, config, dns):
    ada = auth("ada")
    config["WEBHOOK_ALLOWED_HOSTS"] = "hooks.example.com, Partner.Example.com"
    dns.answers["partner.example.com"] = [PUBLIC]
    assert create(client, ada).status_code == 201
    assert create(client, ada, url="https://partner.example.com/x").status_code == 201
    refused = assert_error(create(client, ada, url="https://other.example.com/x"), 422, "validation_failed")
    assert refused["details"]["fields"] == {"url": ["host other.example.com is not allowed"]}


# -- server-side request forgery -------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1:5432/", "http://127.0.0.1/", "https://127.8.9.10/hook", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/", "http://[::1]:6379/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/", "http://0x7f000001/", "http://0x7F.0.0.1/", "http://2130706433/",
    "http://127.1/", "http://0177.0.0.1/", "http://0/", "http://0.0.0.0:8080/", "http://[::]/",
    "http://localhost/", "http://LocalHost:8080/", "http://localhost./", "http://admin.localhost/",
    "http://localhost.localdomain/", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.0.1:8443/",
    "http://100.64.0.1/", "http://[fd00::1]/", "http://[fc00::1]/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/",
    "http://224.0.0.1/", "http://[ff02::1]/", "http://240.0.0.1/", "http://255.255.255.255/",
    "http://db.internal.example/", "http://metadata.example.test/", "http://split.example.test/",
]


@pytest.fixture()
def internal_names(dns: FakeDns) -> FakeDns:
    dns.answers["db.internal.example"] = ["10.1.2.3"]
    dns.answers["metadata.example.test"] = ["fe80::a9fe:a9fe"]
    dns.answers["split.example.test"] = [PUBLIC, "127.0.0.1"]  # every address is checked
    return dns


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_webhooks_to_private_networks_are_refused_when_created(client, auth, services, internal_names, url):
    response = create(client, auth("ada"), url=url)
    error = assert_error(response, 422, "validation_failed")
    assert list(error["details"]["fields"]) == ["url"], error
    (reason,) = error["details"]["fields"]["url"]
    assert reason.startswith("host ") and reason.endswith("webhooks may not reach private networks"), reason
    assert services.session.scalars(select(Webhook)).all() == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:5432/", "http://[::1]/", "http://0x7f000001/", "http://localhost/",
                                 "http://169.254.169.254/", "http://db.internal.example/"])
def test_webhooks_cannot_be_moved_to_private_networks(client, auth, internal_names, url):
    ada = auth("ada")
    hook = made(client, ada)
    error = assert_error(client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"url": url}), 422)
    assert "private networks" in error["details"]["fields"]["url"][0]
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=ada).get_json()["url"] == hook["url"]


def test_the_switch_allows_private_networks(client, auth, config, internal_names):
    config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    for url in ("http://127.0.0.1:5432/", "http://[::1]/", "http://localhost:8080/", "http://db.internal.example/"):
        assert create(client, auth("ada"), url=url).status_code == 201, url


def test_public_and_not_yet_resolvable_names_are_accepted(client, auth, dns):
    assert create(client, auth("ada"), url=f"http://{PUBLIC}:8080/hook").status_code == 201
    assert create(client, auth("ada"), url="https://[2606:2800:220:1::1]/hook").status_code == 201
    # DNS may be down, or the receiver not set up yet: every delivery resolves and checks again.
    assert create(client, auth("ada"), url="https://not-yet.example.com/hook").status_code == 201


def test_delivery_is_refused_when_the_name_resolves_privately_by_then(client, auth, services, receiver, dns, clock):
    ada = auth("ada")
    dns.answers["flip.example.com"] = [PUBLIC]
    hook = made(client, ada, url=f"http://flip.example.com:{receiver.port}/hook")
    dns.answers["flip.example.com"] = ["127.0.0.1"]  # DNS rebinding: now the receiver on loopback
    queue_event(services)

    report = services.notifications.sweep("test")

    assert (report.claimed, report.dead, report.sent) == (1, 1, 0)
    assert receiver.requests == []
    (message,) = services.session.scalars(select(OutboxMessage).where(OutboxMessage.webhook_id == hook["id"])).all()
    assert message.status == "dead" and message.attempts == 1
    assert "resolves to 127.0.0.1, a loopback address" in message.last_error
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=ada).get_json()["items"]
    assert log[0]["status"] == "dead" and log[0]["next_attempt_at"] is None
    (attempt,) = log[0]["log"]
    assert attempt["ok"] is False and attempt["status"] is None
    assert attempt["detail"].startswith("not sent: host flip.example.com resolves to 127.0.0.1, a loopback address")
    # Refused for good: not retried.
    clock.advance(timedelta(hours=12))
    assert services.notifications.sweep("test").claimed == 0
    assert receiver.requests == []


def test_a_webhook_saved_while_private_networks_were_allowed_is_refused_once_they_are_not(
        client, auth, services, config, receiver):
    config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    hook = made(client, auth("ada"), url=receiver.url)
    queue_event(services)
    assert services.notifications.sweep("test").sent == 1
    config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = False
    queue_event(services)

    assert services.notifications.sweep("test").dead == 1
    assert len(receiver.requests) == 1
    newest = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth("ada")).get_json()["items"][0]
    assert "host 127.0.0.1 is a loopback address" in newest["log"][0]["detail"]


def test_deleting_a_webhook_cancels_its_pending_messages_and_keeps_the_log(client, auth, services, config, receiver, clock):
    config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    ada = auth("ada")
    hook = made(client, ada, url=receiver.url)
    kept = made(client, ada, url=receiver.url.replace("/hooks/", "/kept/"))
    receiver.status = 500
    queue_event(services)
    assert services.notifications.sweep("test").retried == 2  # one attempt each, logged
    queue_event(services)  # and a second message each, never tried

    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=ada).status_code == 204

    mine = services.session.scalars(select(OutboxMessage).where(OutboxMessage.webhook_id == hook["id"])
                                    .order_by(OutboxMessage.id).execution_options(populate_existing=True)).all()
    assert [(m.status, m.attempts, m.last_error) for m in mine] == [("cancelled", 1, "webhook deleted"),
                                                                     ("cancelled", 0, "webhook deleted")]
    attempts = services.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id.in_([m.id for m in mine]))).all()
    assert len(attempts) == 1  # the log stays
    assert audit_events(services, "webhook_deleted")[0].payload["cancelled"] == 2
    receiver.status = 200
    receiver.requests.clear()
    clock.advance(timedelta(minutes=10))
    report = services.notifications.sweep("test")
    assert report.sent == 2  # only the other webhook's two messages
    assert {headers["host"] for headers, _ in receiver.requests} == {f"127.0.0.1:{receiver.port}"}
    assert len(receiver.requests) == 2
    assert all(json.loads(body)["record"] == "INC-000001" for _, body in receiver.requests)
    assert client.get(f"/api/v1/webhooks/{kept['id']}/deliveries", headers=ada).get_json()["items"][0]["status"] == "sent"
    # Nothing is queued for a deleted webhook any more.
    queue_event(services)
    assert services.session.scalars(select(OutboxMessage).where(OutboxMessage.webhook_id == hook["id"],
                                                                OutboxMessage.status == "pending")).all() == []


def test_a_message_claimed_before_its_webhook_was_deleted_is_not_sent(client, auth, services, config, receiver):
    config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    ada = auth("ada")
    hook = made(client, ada, url=receiver.url)
    queue_event(services)
    (claimed,) = services.notifications.claim_due("sweeper-1")
    # Deleted between the sweeper's claim and its delivery.
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=ada).status_code == 204

    assert services.notifications.deliver(claimed, "sweeper-1") == "skipped"
    assert receiver.requests == []
    message = services.session.get(OutboxMessage, claimed, populate_existing=True)
    assert message.status == "cancelled"


def test_a_turned_off_webhook_keeps_its_pending_deliveries_for_when_it_is_on_again(
        client, auth, services, config, receiver, clock):
    """QA: turning a webhook off for maintenance killed its pending retries ("dead", an attempt
    counted though nothing was sent); only deleting it should cancel them."""
    config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    ada = auth("ada")
    hook = made(client, ada, url=receiver.url)
    receiver.status = 500
    queue_event(services)
    assert services.notifications.sweep("test").retried == 1  # one real attempt, failed
    assert client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"active": False}).status_code == 200
    clock.advance(timedelta(hours=1))
    services.notifications.sweep("test")
    (message,) = services.session.scalars(select(OutboxMessage).where(OutboxMessage.webhook_id == hook["id"])
                                          .execution_options(populate_existing=True)).all()
    assert (message.status, message.attempts) == ("pending", 1) and "disabled" in message.last_error
    assert len(receiver.requests) == 1
    receiver.status = 200
    assert client.patch(f"/api/v1/webhooks/{hook['id']}", headers=ada, json={"active": True}).status_code == 200
    clock.advance(timedelta(hours=1))
    assert services.notifications.sweep("test").sent == 1
    assert len(receiver.requests) == 2
