from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import text

from app import create_app
from tests.conftest import TEST_CONFIG, TEST_PASSWORD
from tests.http.helpers import assert_error


def test_health_needs_no_token(client, app):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["problems"] == []
    assert re.fullmatch(r"\d{4}", body["schema"]) and body["schema"] == body["expected_schema"]


def test_health_is_503_while_the_schema_is_behind_the_code(client, connection):
    expected = client.get("/api/v1/health").get_json()["expected_schema"]
    connection.execute(text("UPDATE alembic_version SET version_num = '0028'"))
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["schema"]) == ("unavailable", "0028")
    assert body["problems"] == [f"the database schema is 0028, this code expects {expected}: run flask db upgrade"]


def test_health_is_503_without_the_database_and_names_no_connection_detail(tmp_path):
    unreachable = create_app({**TEST_CONFIG, "DATABASE_URL": "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/gone"})
    response = unreachable.test_client().get("/api/v1/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["problems"] == ["the database cannot be reached or has no schema"] and body["schema"] is None
    assert "s3cret" not in response.get_data(as_text=True) and ":1/" not in response.get_data(as_text=True)


def test_health_is_503_when_the_scheduler_of_the_process_stopped(client, app):
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    app.extensions["processdesk_scheduler"] = scheduler
    stopped = client.get("/api/v1/health")
    assert stopped.status_code == 503 and stopped.get_json()["scheduler"] == "stopped"
    scheduler.start()
    try:
        running = client.get("/api/v1/health")
        assert running.status_code == 200 and running.get_json()["scheduler"] == "running"
    finally:
        scheduler.shutdown(wait=False)


def test_token_roundtrip(client, users):
    response = client.post("/api/v1/auth/token", json={"username": "alex", "password": TEST_PASSWORD})
    assert response.status_code == 200
    token = response.get_json()["token"]
    listing = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 200


def test_wrong_password_is_401_and_audited(client, users, services):
    body = assert_error(client.post("/api/v1/auth/token", json={"username": "alex", "password": "nope-nope"}), 401, "unauthorized")
    assert "password" in body["message"]
    assert_error(client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"}), 401)
    from sqlalchemy import select

    from app.models import AuditEvent

    events = services.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "access_denied")).all()
    assert [e.payload["username"] for e in events] == ["alex", "nobody"]
    assert all(e.payload["action"] == "login" for e in events)


def sign_in(client, username, password=TEST_PASSWORD, address="127.0.0.1"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def test_five_wrong_passwords_lock_the_name_even_for_the_right_one(client, users, clock):
    for _ in range(5):
        assert_error(sign_in(client, "alex", "wrong-password"), 401, "unauthorized")
    locked = sign_in(client, "alex")
    body = assert_error(locked, 429, "too_many_requests")
    assert locked.headers["Retry-After"] == "300" and body["details"] == {"retry_after": 300}
    assert "try again" in body["message"]
    assert_error(sign_in(client, "ALEX ", "wrong-password"), 429)  # the same name, however spelled
    assert sign_in(client, "amy").status_code == 200  # other names are not locked
    clock.advance(timedelta(minutes=4))
    assert_error(sign_in(client, "alex"), 429)
    clock.advance(timedelta(minutes=1, seconds=1))
    assert sign_in(client, "alex").status_code == 200


def test_a_success_clears_the_name_s_count(client, users):
    for _ in range(4):
        assert_error(sign_in(client, "alex", "wrong-password"), 401)
    assert sign_in(client, "alex").status_code == 200
    for _ in range(4):
        assert_error(sign_in(client, "alex", "wrong-password"), 401)
    assert sign_in(client, "alex").status_code == 200


def test_failures_from_one_address_lock_every_name_from_it(client, users, app):
    app.extensions["processdesk_login_throttle"].by_address.max_failures = 6
    for name in ("alex", "amy", "abe", "olga", "aude", "nobody"):
        assert_error(sign_in(client, name, "wrong-password", address="10.0.0.7"), 401)
    locked = sign_in(client, "rita", address="10.0.0.7")
    assert_error(locked, 429, "too_many_requests")
    assert int(locked.headers["Retry-After"]) > 0
    assert sign_in(client, "rita", address="10.0.0.8").status_code == 200


def test_missing_fields_name_the_field(client):
    body = assert_error(client.post("/api/v1/auth/token", json={"username": "alex"}), 422, "validation_failed")
    assert "password" in body["details"]["fields"]


def test_calls_without_or_with_bad_token_are_401(client, users):
    for path in ("/api/v1/tasks", "/api/v1/instances", "/api/v1/definitions"):
        assert_error(client.get(path), 401, "unauthorized")
        assert_error(client.get(path, headers={"Authorization": "Bearer forged.token.value"}), 401)
        assert_error(client.get(path, headers={"Authorization": "Basic abc"}), 401)


def test_token_is_revoked_when_the_password_changes(client, users, services, auth):
    headers = auth("alex")
    assert client.get("/api/v1/tasks", headers=headers).status_code == 200
    services.users.reset_password(None, "alex", "another-password-1")
    services.session.commit()
    assert_error(client.get("/api/v1/tasks", headers=headers), 401)


def test_expired_token_is_refused(client, users, app, auth):
    headers = auth("alex")
    app.extensions["processdesk"].runtime.config["TOKEN_TTL_SECONDS"] = -1
    from flask import g  # noqa: F401 - a fresh request builds services from the changed config

    body = assert_error(client.get("/api/v1/tasks", headers=headers), 401)
    assert body["error"] in ("token_expired", "unauthorized")


def test_openapi_document_lists_the_contract_paths(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/auth/token", "/api/v1/health", "/api/v1/definitions", "/api/v1/definitions/{process_id}",
                 "/api/v1/definitions/{process_id}/bpmn", "/api/v1/instances", "/api/v1/instances/{instance_id}",
                 "/api/v1/instances/{instance_id}/history", "/api/v1/instances/{instance_id}/messages",
                 "/api/v1/instances/{instance_id}/cancel", "/api/v1/instances/{instance_id}/retry", "/api/v1/tasks",
                 "/api/v1/tasks/{task_id}", "/api/v1/tasks/{task_id}/claim", "/api/v1/tasks/{task_id}/unclaim",
                 "/api/v1/tasks/{task_id}/complete"):
        assert path in doc["paths"], path
    assert "InstanceIn" in doc["components"]["schemas"]
    assert "429" in doc["paths"]["/api/v1/auth/token"]["post"]["responses"]


def test_health_logs_an_unreachable_database_once_and_its_return_once(tmp_path, caplog):
    """A load balancer probes every few seconds: an outage is one traceback, not one per probe."""
    url = f"sqlite:///{tmp_path / 'later.db'}"
    probed = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    client = probed.test_client()
    caplog.set_level("WARNING", logger="app.api.auth")
    for _ in range(3):  # the file has no schema yet: no alembic_version table
        assert client.get("/api/v1/health").status_code == 503
    down = [r for r in caplog.records if r.getMessage() == "health: the database did not answer"]
    assert len(down) == 1 and down[0].exc_info is not None
    with probed.extensions["processdesk"].db_engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
    for _ in range(2):
        assert client.get("/api/v1/health").get_json()["schema"] == "0001"
    assert [r.getMessage() for r in caplog.records].count("health: the database answers again") == 1
    caplog.clear()
    with probed.extensions["processdesk"].db_engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    assert client.get("/api/v1/health").status_code == 503
    assert [r.getMessage() for r in caplog.records] == ["health: the database did not answer"]
