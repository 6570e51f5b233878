"""Small helpers for HTTP tests: upload files, start instances, find tasks, receive webhooks."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import fixture_files


def upload(client: Any, headers: dict[str, str], files: list[tuple[str, bytes]]) -> Any:
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/api/v1/definitions", data=data, headers=headers, content_type="multipart/form-data")


def deploy_all(client: Any, headers: dict[str, str]) -> Any:
    response = upload(client, headers, fixture_files())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def start(client: Any, headers: dict[str, str], process_id: str, data: dict | None = None) -> dict:
    response = client.post("/api/v1/instances", json={"process_id": process_id, "data": data or {}}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_task(instance: dict, bpmn_id: str) -> dict:
    matches = [t for t in instance["open_tasks"] if t["bpmn_id"] == bpmn_id]
    assert matches, f"no open task {bpmn_id} in {[t['bpmn_id'] for t in instance['open_tasks']]}"
    return matches[0]


def assert_error(response: Any, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}, body
    if code:
        assert body["error"] == code, body
    return body


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps each POST's headers (lower-case) and body, then calls
    ``on_request`` (if set), waits ``delay`` seconds and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.delay = 0.0
        self.on_request: Callable[[], None] | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.on_request is not None:
                    receiver.on_request()
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/processdesk"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def event_ids(self) -> list[str]:
        """The event id (``X-Processdesk-Delivery``) of each request, in order."""
        return [headers["x-processdesk-delivery"] for headers, _body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5.0)



def logged_attempts(services: Any) -> int:
    """How many delivery attempts the outbox's log holds."""
    from sqlalchemy import func, select

    from app.models import DeliveryAttempt

    count = services.session.scalar(select(func.count()).select_from(DeliveryAttempt))
    services.session.rollback()
    return int(count or 0)
