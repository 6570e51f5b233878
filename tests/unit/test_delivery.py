"""Delivery against real servers on 127.0.0.1: aiosmtpd for SMTP, http.server for webhooks.

Every server is started by a fixture and stopped in its teardown; an autouse fixture checks that no
thread outlives its test. Timeouts are short so the module runs in a few seconds.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import ipaddress
import json
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from app.services.delivery import (
    MAX_ATTEMPTS,
    RESOLVER_THREADS,
    DeliveryResult,
    EmailMessage,
    SmtpSettings,
    address_refusal,
    canonical_json,
    literal_address,
    next_attempt_delay,
    post_webhook,
    resolve_host,
    send_email,
    should_retry,
    sign_webhook,
    verify_webhook_signature,
    webhook_target_problem,
)

SENDER = "ProcessDesk <desk@example.test>"
USER, PASSWORD = "relay-user", "s3cret-relay-pw"
SECRET = "whsec-test-0123456789"
NOW = 1_750_000_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # Teardowns of the server fixtures run before this one (autouse fixtures are set up first).
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.02)
    pytest.fail(f"threads left running: {leaked}")


# --------------------------------------------------------------------------------------------------
# SMTP fixtures


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


@dataclass
class Recorder:
    """aiosmtpd handler: stores every accepted message, refuses the recipients listed in ``refuse``."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        # session.ssl is only filled in after STARTTLS; an implicit-TLS transport shows in its extra info.
        transport = server.transport
        tls = session.ssl is not None or (transport is not None and transport.get_extra_info("ssl_object") is not None)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content,
                                      tls=tls, authenticated=bool(session.authenticated)))
        return "250 2.0.0 queued as TEST1"


def authenticator(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(USER.encode(), PASSWORD.encode())
    # handled=False: aiosmtpd itself answers 235 or 535.
    return AuthResult(success=ok, handled=False)


SmtpFactory = Callable[..., tuple[Recorder, int]]


@pytest.fixture
def smtp_server() -> Iterator[SmtpFactory]:
    """Starts aiosmtpd controllers on demand: ``recorder, port = smtp_server(**controller_kwargs)``."""
    controllers: list[Controller] = []

    def start(**kwargs: Any) -> tuple[Recorder, int]:
        recorder = Recorder()
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port, server_hostname="mx.test",
                                ready_timeout=5.0, **kwargs)
        controller.start()
        controllers.append(controller)
        return recorder, port

    yield start
    for controller in controllers:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        # Verifies the chain and the host name (the certificate names IP 127.0.0.1).
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    # The `cryptography` package is not a dependency of processdesk, so the openssl command line makes
    # the self-signed certificate.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("TLS tests need the openssl command line to generate a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=20,
    )
    return Certificate(cert, key)


def settings(port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "sender": SENDER, "timeout": 3.0,
                              "helo_name": "client.test"}
    values.update(overrides)
    return SmtpSettings(**values)


def message(**overrides: Any) -> EmailMessage:
    values: dict[str, Any] = {"to": ["Ann Smith <ann@example.test>", "bob@example.test"],
                              "subject": "Ticket INC-42 was updated", "text": "Hello Ann,\n.\nThe ticket changed.\n",
                              "html": "<p>Hello Ann, the <b>ticket</b> changed.</p>", "message_id": "outbox-42"}
    values.update(overrides)
    return EmailMessage(**values)


# --------------------------------------------------------------------------------------------------
# SMTP


def test_plain_delivery_has_text_and_html_and_a_stable_message_id(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server()

    first = send_email(settings(port), message())
    second = send_email(settings(port), message())

    assert first.ok and not first.permanent and first.status == 250, first
    assert "queued as TEST1" in first.detail and "<outbox-42@example.test>" in first.detail
    assert second.ok
    assert len(recorder.received) == 2
    got = recorder.received[0]
    assert got.mail_from == "desk@example.test"
    assert got.rcpt_tos == ["ann@example.test", "bob@example.test"]
    assert not got.tls
    parsed = got.message
    assert parsed["Subject"] == "Ticket INC-42 was updated"
    assert parsed["To"] == "Ann Smith <ann@example.test>, bob@example.test"
    assert parsed["From"] == SENDER
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and html is not None
    # The lone dot survived dot-stuffing; the parser keeps the wire's CRLF line ends.
    assert plain.get_content().replace("\r\n", "\n") == "Hello Ann,\n.\nThe ticket changed.\n"
    assert html.get_content().strip() == "<p>Hello Ann, the <b>ticket</b> changed.</p>"
    # Retries carry the same Message-ID, so the receiver can drop the duplicate.
    ids = [r.message["Message-ID"] for r in recorder.received]
    assert ids == ["<outbox-42@example.test>", "<outbox-42@example.test>"]
    assert first.duration_ms > 0


def test_text_only_unicode_and_extra_headers(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server()

    result = send_email(settings(port), message(
        to="Zoë Ülker <zoe@example.test>", html=None, subject="Änderung: Störung behoben",
        text="Grüße\n", message_id="<abc.1@desk.example>", headers={"Reply-To": "desk@example.test", "X-Ticket": "INC-42"}))

    assert result.ok, result
    parsed = recorder.received[0].message
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().replace("\r\n", "\n") == "Grüße\n"
    assert parsed["Subject"] == "Änderung: Störung behoben"
    assert parsed["To"] == "Zoë Ülker <zoe@example.test>"
    assert parsed["Message-ID"] == "<abc.1@desk.example>"
    assert parsed["X-Ticket"] == "INC-42" and parsed["Reply-To"] == "desk@example.test"
    # 7-bit on the wire: valid even on servers without 8BITMIME.
    assert recorder.received[0].content.isascii()


def test_non_ascii_address_goes_out_with_smtputf8(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server()

    result = send_email(settings(port), message(to=["zoë@exämple.test"]))

    assert result.ok, result
    assert recorder.received[0].rcpt_tos == ["zoë@exämple.test"]
    assert recorder.received[0].message["To"] == "zoë@exämple.test"


def test_auth_with_username_and_password(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server(authenticator=authenticator, auth_require_tls=False)

    result = send_email(settings(port, username=USER, password=PASSWORD), message())

    assert result.ok, result
    assert recorder.received[0].authenticated


def test_wrong_password_is_transient_and_not_leaked(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server(authenticator=authenticator, auth_require_tls=False)

    result = send_email(settings(port, username=USER, password="not-the-password"), message())

    assert not result.ok and not result.permanent, result
    assert result.status == 535 and "authentication failed" in result.detail
    assert "not-the-password" not in result.detail
    assert recorder.received == []


def test_starttls_with_auth(smtp_server: SmtpFactory, certificate: Certificate) -> None:
    # auth_require_tls stays at its default: AUTH is only offered after STARTTLS.
    recorder, port = smtp_server(tls_context=certificate.server_context(), require_starttls=True,
                                 authenticator=authenticator)

    result = send_email(settings(port, security="starttls", username=USER, password=PASSWORD), message(),
                        ssl_context=certificate.client_context())

    assert result.ok, result
    assert recorder.received[0].tls and recorder.received[0].authenticated


def test_starttls_with_an_untrusted_certificate_fails_before_sending(smtp_server: SmtpFactory,
                                                                     certificate: Certificate) -> None:
    recorder, port = smtp_server(tls_context=certificate.server_context(), require_starttls=True)

    result = send_email(settings(port, security="starttls"), message(), ssl_context=ssl.create_default_context())

    assert not result.ok and not result.permanent, result
    assert "STARTTLS" in result.detail and "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert recorder.received == []


def test_starttls_required_but_not_offered_does_not_fall_back(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server()

    result = send_email(settings(port, security="starttls"), message())

    assert not result.ok and not result.permanent, result
    assert "does not offer STARTTLS" in result.detail
    assert recorder.received == []


def test_implicit_tls(smtp_server: SmtpFactory, certificate: Certificate) -> None:
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; this connection is TLS from the start.
    recorder, port = smtp_server(ssl_context=certificate.server_context(), authenticator=authenticator,
                                 auth_require_tls=False)

    result = send_email(settings(port, security="tls", username=USER, password=PASSWORD), message(),
                        ssl_context=certificate.client_context())

    assert result.ok, result
    assert recorder.received[0].tls and recorder.received[0].authenticated


def test_recipient_refused_with_5xx_is_permanent_and_nobody_gets_it(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server()
    recorder.refuse["bob@example.test"] = "550 no such user"

    result = send_email(settings(port), message())

    assert not result.ok and result.permanent, result
    assert result.status == 550
    assert "bob@example.test: 550 no such user" in result.detail
    assert recorder.received == []  # all-or-nothing: Ann did not get it either


def test_recipient_refused_with_4xx_is_transient(smtp_server: SmtpFactory) -> None:
    recorder, port = smtp_server()
    recorder.refuse["bob@example.test"] = "451 4.7.1 greylisted, try again later"

    result = send_email(settings(port), message())

    assert not result.ok and not result.permanent and result.status == 451, result
    assert recorder.received == []


def test_nothing_listening_is_transient() -> None:
    result = send_email(settings(free_port()), message())

    assert not result.ok and not result.permanent, result
    assert "connect" in result.detail and "refused" in result.detail.lower()


def test_tls_against_a_plain_server_is_transient(smtp_server: SmtpFactory, certificate: Certificate) -> None:
    recorder, port = smtp_server()

    result = send_email(settings(port, security="tls", timeout=1.0), message(), ssl_context=certificate.client_context())

    assert not result.ok and not result.permanent, result
    assert recorder.received == []


class TricklingRelay:
    """A relay on 127.0.0.1 that greets with ``220-`` continuation lines, one every ``interval`` seconds,
    for at most ``lines`` lines: each read of the client's is answered in time, the greeting never ends.
    ``sent`` counts the lines it got out before the client hung up. With ``tls``, TLS from the first byte."""

    def __init__(self, interval: float, lines: int, context: ssl.SSLContext | None = None) -> None:
        self.interval, self.lines, self.context = interval, lines, context
        self.sent = 0
        self.hung_up = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name="trickling relay", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(10.0)
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            for _ in range(self.lines):
                conn.sendall(b"220-still greeting\r\n")
                self.sent += 1
                time.sleep(self.interval)
        except OSError:
            self.hung_up.set()
        finally:
            conn.close()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(15.0)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_relay_that_answers_just_in_time_is_cut_at_the_limit_of_one_email(tls: bool, certificate: Certificate) -> None:
    # Each line comes within the 0.5 s timeout; without a limit on the whole conversation the greeting
    # would hold the sweeper for all 200 lines (20 s).
    relay = TricklingRelay(interval=0.1, lines=200, context=certificate.server_context() if tls else None)
    try:
        result = send_email(settings(relay.port, timeout=0.5, security="tls" if tls else "none"), message(),
                            ssl_context=certificate.client_context())
        assert relay.hung_up.wait(5.0), "the relay never saw the connection end"
    finally:
        relay.close()

    assert not result.ok and not result.permanent, result
    assert result.detail.startswith("connect: cut after 1.5 s, the limit of one e-mail"), result.detail  # the greeting
    assert 5 <= relay.sent < 200  # it did greet for a while, and it was cut long before its end


@pytest.mark.parametrize("bad", [
    {"subject": "Hello\r\nBcc: victim@example.test"},
    {"subject": "Hello\nX-Evil: 1"},
    {"to": ["ann@example.test\r\nRCPT TO:<victim@example.test>"]},
    {"to": ["ann@example.test, victim@example.test"]},
    {"to": ["not-an-address"]},
    {"to": []},
    {"headers": {"X-Note": "a\r\nBcc: victim@example.test"}},
    {"headers": {"Bcc": "victim@example.test"}},
    {"headers": {"Bad Name": "x"}},
    {"message_id": "id\r\nBcc: victim@example.test"},
    {"message_id": "two words"},
])
def test_header_injection_and_bad_data_are_refused_before_connecting(smtp_server: SmtpFactory,
                                                                     bad: dict[str, Any]) -> None:
    recorder, port = smtp_server()

    result = send_email(settings(port), message(**bad))

    assert not result.ok and result.permanent, result
    assert result.detail.startswith("not sent:")
    assert "\r" not in result.detail and "\n" not in result.detail
    assert recorder.received == []


def test_settings_from_config() -> None:
    parsed = SmtpSettings.from_config({
        "SMTP_HOST": " mail.example.test ", "SMTP_PORT": "2525", "SMTP_SECURITY": "STARTTLS",
        "SMTP_USERNAME": "u", "SMTP_PASSWORD": " pw ", "SMTP_SENDER": "Desk <desk@example.test>",
        "SMTP_TIMEOUT": "2.5", "UNRELATED": object(),
    })
    assert parsed == SmtpSettings(host="mail.example.test", port=2525, security="starttls", username="u",
                                  password=" pw ", sender="Desk <desk@example.test>", timeout=2.5)
    assert "pw" not in repr(parsed)
    assert SmtpSettings.from_config({}) == SmtpSettings()
    assert SmtpSettings.from_config({"SMTP_SECURITY": "tls"}).port == 465
    assert SmtpSettings.from_config({"SMTP_SECURITY": "starttls", "SMTP_USERNAME": ""}).port == 587
    assert SmtpSettings.from_config({"SMTP_PORT": 26, "SMTP_TIMEOUT": 1}).timeout == 1.0


@pytest.mark.parametrize(("config", "named"), [
    ({"SMTP_PORT": "smtp"}, "SMTP_PORT"),
    ({"SMTP_PORT": 70000}, "SMTP_PORT"),
    ({"SMTP_PORT": True}, "SMTP_PORT"),
    ({"SMTP_SECURITY": "ssl"}, "SMTP_SECURITY"),
    ({"SMTP_TIMEOUT": "soon"}, "SMTP_TIMEOUT"),
    ({"SMTP_TIMEOUT": "0"}, "SMTP_TIMEOUT"),
    ({"SMTP_HOST": ""}, "SMTP_HOST"),
    ({"SMTP_SENDER": "desk\r\nBcc: x@example.test"}, "SMTP_SENDER"),
    ({"SMTP_SENDER": "nobody"}, "SMTP_SENDER"),
    ({"SMTP_USERNAME": "u"}, "SMTP_PASSWORD"),
    ({"SMTP_PASSWORD": "hunter2-secret"}, "SMTP_USERNAME"),
])
def test_settings_from_config_names_the_bad_key(config: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError) as caught:
        SmtpSettings.from_config(config)
    assert named in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_settings_are_validated_on_construction() -> None:
    with pytest.raises(ValueError, match="security"):
        SmtpSettings(security="ssl")


# --------------------------------------------------------------------------------------------------
# Webhook receiver


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver(ThreadingHTTPServer):
    # Join handler threads on close so nothing outlives the fixture.
    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.hits: list[Hit] = []
        self.release = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The slow endpoint writes to a client that gave up: expected, not worth a traceback.
        pass


class ReceiverHandler(BaseHTTPRequestHandler):
    """Routes: /ok, /status/<code>, /redirect (302 to /landed), /slow (answers after the test ends)."""

    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._record()
        self._answer(200, b"landed")

    def do_POST(self) -> None:
        self._record()
        if self.path == "/ok":
            self._answer(204)
        elif self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
            extra = {"Retry-After": "120"} if status == 429 else {}
            self._answer(status, b"receiver says\r\nno" + b"x" * 100_000, extra)
        elif self.path == "/redirect":
            self._answer(302, headers={"Location": f"{self.server.base}/landed?token=abc"})
        elif self.path == "/landed":
            self._answer(200)
        elif self.path == "/slow":
            self.server.release.wait(5.0)
            self._answer(200)
        else:
            self._answer(404, b"unknown")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver")
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5.0)


PAYLOAD = {"ticket": "INC-42", "state": "resolved", "by": {"name": "Zoë", "id": 7}, "tags": ["a", "b"]}


def deliver(url: str, **kwargs: Any) -> DeliveryResult:
    # The receivers listen on 127.0.0.1: private networks allowed unless a test says otherwise.
    values: dict[str, Any] = {"now": NOW, "timeout": 2.0, "allow_private": True}
    values.update(kwargs)
    return post_webhook(url, SECRET, "evt-0001", "ticket.resolved", PAYLOAD, **values)


def test_webhook_is_signed_canonical_json_with_a_stable_delivery_id(receiver: Receiver) -> None:
    first = deliver(f"{receiver.base}/ok")
    second = deliver(f"{receiver.base}/ok", now=NOW + 600)

    assert first.ok and first.status == 204 and not first.permanent, first
    assert second.ok
    hit, again = receiver.hits
    assert hit.body == canonical_json(PAYLOAD)
    assert hit.body == json.dumps(PAYLOAD, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(hit.body) == PAYLOAD
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["x-processdesk-event"] == "ticket.resolved"
    assert hit.headers["x-processdesk-delivery"] == again.headers["x-processdesk-delivery"] == "evt-0001"
    assert verify_webhook_signature(SECRET, hit.headers["x-processdesk-signature"], hit.body, now=NOW)
    # A retry is re-signed with its own time, so it is not stale for the receiver.
    assert again.headers["x-processdesk-signature"] != hit.headers["x-processdesk-signature"]
    assert verify_webhook_signature(SECRET, again.headers["x-processdesk-signature"], again.body, now=NOW + 601)
    assert not verify_webhook_signature(SECRET, hit.headers["x-processdesk-signature"], hit.body, now=NOW + 601)


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (503, False), (429, False), (408, False),
                                                   (404, True), (400, True), (410, True)])
def test_webhook_status_classification(receiver: Receiver, status: int, permanent: bool) -> None:
    result = deliver(f"{receiver.base}/status/{status}")

    assert not result.ok and result.permanent is permanent and result.status == status, result
    assert "receiver says no" in result.detail  # the body is quoted, its line break flattened
    assert len(result.detail) <= 500
    if status == 429:
        assert "Retry-After: 120" in result.detail


def test_webhook_redirect_is_not_followed(receiver: Receiver) -> None:
    result = deliver(f"{receiver.base}/redirect")

    assert not result.ok and result.permanent and result.status == 302, result
    assert "not followed" in result.detail and "token" not in result.detail
    assert [hit.path for hit in receiver.hits] == ["/redirect"]


def test_webhook_slow_receiver_is_transient(receiver: Receiver) -> None:
    started = time.monotonic()
    result = deliver(f"{receiver.base}/slow", timeout=0.5)

    assert not result.ok and not result.permanent and result.status is None, result
    assert "timed out" in result.detail
    assert time.monotonic() - started < 2.0


def test_webhook_nothing_listening_is_transient() -> None:
    result = deliver(f"http://127.0.0.1:{free_port()}/hook")

    assert not result.ok and not result.permanent, result
    assert "connection failed" in result.detail


def test_webhook_allow_hosts_refuses_without_connecting(receiver: Receiver) -> None:
    asked: list[str] = []

    def allow(host: str) -> bool:
        asked.append(host)
        return host == "hooks.example.test"

    result = deliver(f"{receiver.base}/ok", allow_hosts=allow)

    assert not result.ok and result.permanent, result
    assert asked == ["127.0.0.1"]
    assert receiver.hits == []
    assert deliver(f"{receiver.base}/ok", allow_hosts=lambda host: host == "127.0.0.1").ok


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/hook", "file:///etc/passwd", "data:text/plain,hi", "javascript:alert(1)", "127.0.0.1/hook",
    "http:///nohost", "http://user:pw@127.0.0.1/hook", "http://127.0.0.1:99999/hook", "http://127.0.0.1/a b",
    "http://127.0.0.1/\r\nX-Evil: 1", "",
])
def test_webhook_unusable_url_is_permanent(receiver: Receiver, url: str) -> None:
    result = deliver(url)

    assert not result.ok and result.permanent, result
    assert result.detail.startswith("not sent:")
    assert "pw" not in result.detail.replace("passwd", "")
    assert receiver.hits == []


def test_webhook_bad_inputs_are_permanent(receiver: Receiver) -> None:
    url = f"{receiver.base}/ok"
    assert post_webhook(url, "", "evt-1", "t", {}, now=NOW).permanent
    assert post_webhook(url, SECRET, "evt 1", "t", {}, now=NOW).permanent
    assert post_webhook(url, SECRET, "evt-1", "t\r\nX: y", {}, now=NOW).permanent
    assert post_webhook(url, SECRET, "evt-1", "t", {"when": object()}, now=NOW).permanent
    assert post_webhook(url, SECRET, "evt-1", "t", {"x": float("nan")}, now=NOW).permanent
    assert receiver.hits == []
    with pytest.raises(ValueError):
        post_webhook(url, SECRET, "evt-1", "t", {}, now=NOW, timeout=0)


# --------------------------------------------------------------------------------------------------
# Webhook destinations: no loopback, private, link-local, ... addresses unless allowed; pinned connections


class FakeDns:
    """Stands in for ``socket.getaddrinfo``: made-up names answer from ``answers`` (one list of addresses
    per lookup, the last repeated), IP literals resolve as usual, any other name does not resolve (no test
    asks real DNS). ``asked`` lists the names looked up."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.answers: dict[str, list[list[str]]] = {}
        self.asked: list[str] = []

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower() in self.answers:
            self.asked.append(name.lower())
            queue = self.answers[name.lower()]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                    else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answer]
        try:
            ipaddress.ip_address(name)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return self.real(host, port, *args, **kwargs)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


REFUSED_ADDRESSES = [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
    ("fc00::1", "private"), ("fd12:3456::1", "private"), ("fec0::1", "private"), ("::ffff:192.168.0.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("::127.0.0.1", "reserved"),  # IPv4-compatible IPv6 (deprecated)
    ("100.64.0.1", "not publicly routable"), ("192.0.2.1", "not publicly routable"),
    ("198.18.0.1", "not publicly routable"), ("0.1.2.3", "not publicly routable"), ("2001:db8::1", "not publicly routable"),
    ("2002:7f00:1::", "loopback"), ("2002:a00:1::", "private"), ("64:ff9b::a9fe:a9fe", "link-local"),  # 6to4, NAT64
]


@pytest.mark.parametrize(("text", "kind"), REFUSED_ADDRESSES)
def test_non_public_addresses_are_refused(text: str, kind: str) -> None:
    reason = address_refusal(ipaddress.ip_address(text))

    assert reason is not None and kind in reason, (text, reason)


@pytest.mark.parametrize("text", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                  "2002:808:808::", "64:ff9b::808:808", "172.32.0.1", "11.0.0.1"])
def test_public_addresses_pass(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text)) is None


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0X7F.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("017700000001", "127.0.0.1"), ("127.0.0.1.", "127.0.0.1"),
    ("::1", "::1"), ("::ffff:7f00:1", "::ffff:127.0.0.1"), ("10", "0.0.0.10"),
])
def test_literal_addresses_include_the_legacy_ipv4_spellings(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)
    assert resolve_host(host, 80) == [ipaddress.ip_address(address)]


@pytest.mark.parametrize("host", ["example.com", "hooks.example.test", "0x7g000001", "1.2.3.4.5", "localhost", "127.0.0.1x"])
def test_names_are_not_literal_addresses(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5432/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[::1]:8080/hook",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://0x7f000001/", "http://2130706433/", "http://127.1/",
    "http://0177.0.0.1/", "http://localhost/", "http://LOCALHOST./", "http://api.localhost:9000/", "http://ip6-localhost/",
    "http://10.0.0.7/", "https://192.168.10.1/", "http://[fd00::5]/", "http://[fe80::1%25eth0]/", "http://224.0.0.251/",
    "http://0.0.0.0:8000/", "http://[::]/", "http://0/", "http://internal.example.test/", "http://mixed.example.test/",
])
def test_webhook_target_problem_names_the_reason(fake_dns: FakeDns, url: str) -> None:
    fake_dns.answers["internal.example.test"] = [["10.20.30.40"]]
    fake_dns.answers["mixed.example.test"] = [["93.184.216.34", "2606:2800:220:1::1", "127.0.0.1"]]  # every one is checked

    problem = webhook_target_problem(url)

    assert problem is not None and "private networks" in problem, (url, problem)
    assert webhook_target_problem(url, allow_private=True) is None


def test_webhook_target_problem_passes_public_and_unresolvable_hosts(fake_dns: FakeDns) -> None:
    fake_dns.answers["hooks.example.com"] = [["93.184.216.34", "2606:2800:220:1::1"]]

    assert webhook_target_problem("https://hooks.example.com/processdesk") is None
    assert webhook_target_problem("http://93.184.216.34:8080/hook") is None
    assert webhook_target_problem("http://[2606:2800:220:1::1]/") is None
    # DNS may be down when the URL is saved; every delivery resolves and checks again.
    assert webhook_target_problem("https://not-yet.example.com/") is None
    # Not resolved at all: the URL's own host is still checked.
    assert webhook_target_problem("https://internal.example.com/", resolve=False) is None
    assert webhook_target_problem("http://127.0.0.1/", resolve=False) is not None
    assert webhook_target_problem("ftp://hooks.example.com/x") == "webhook URL scheme 'ftp' is not allowed; use http or https"
    assert webhook_target_problem("https://hooks.example.com/", allow_hosts=lambda host: False) == \
        "host hooks.example.com is not allowed"


@pytest.mark.parametrize("url_of", [
    lambda port: f"http://127.0.0.1:{port}/ok", lambda port: f"http://0x7f000001:{port}/ok",
    lambda port: f"http://127.1:{port}/ok", lambda port: f"http://localhost:{port}/ok",
    lambda port: f"http://[::ffff:127.0.0.1]:{port}/ok", lambda port: f"http://loop.example.test:{port}/ok",
])
def test_webhooks_to_private_addresses_are_refused_by_default_without_connecting(
        receiver: Receiver, fake_dns: FakeDns, url_of: Callable[[int], str]) -> None:
    fake_dns.answers["loop.example.test"] = [["127.0.0.1"]]

    result = post_webhook(url_of(receiver.server_address[1]), SECRET, "evt-1", "t", PAYLOAD, now=NOW)

    assert not result.ok and result.permanent, result
    assert result.detail.startswith("not sent: host ") and "private networks" in result.detail
    assert receiver.hits == []


def test_a_name_resolving_to_a_public_and_a_private_address_is_refused(receiver: Receiver, fake_dns: FakeDns) -> None:
    fake_dns.answers["split.example.test"] = [["93.184.216.34", "127.0.0.1"]]

    result = deliver(f"http://split.example.test:{receiver.server_address[1]}/ok", allow_private=False)

    assert result.permanent and "resolves to 127.0.0.1, a loopback address" in result.detail, result
    assert receiver.hits == []


def test_the_connection_goes_to_the_address_that_was_resolved_once(receiver: Receiver, fake_dns: FakeDns) -> None:
    # A rebinding name: the first answer is used; a second lookup would answer an unreachable address.
    fake_dns.answers["rebind.example.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    port = receiver.server_address[1]

    result = deliver(f"http://rebind.example.test:{port}/ok")

    assert result.ok, result
    assert fake_dns.asked == ["rebind.example.test"]  # resolved once, not again by urllib
    assert receiver.hits[0].headers["host"] == f"rebind.example.test:{port}"  # the name, not the address


def test_every_checked_address_is_tried_in_turn(receiver: Receiver, fake_dns: FakeDns) -> None:
    # Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1): refused, then the next address.
    fake_dns.answers["two.example.test"] = [["127.0.0.2", "127.0.0.1"]]

    assert deliver(f"http://two.example.test:{receiver.server_address[1]}/ok").ok
    assert len(receiver.hits) == 1


def test_a_name_that_does_not_resolve_is_transient(fake_dns: FakeDns) -> None:
    result = deliver("https://nowhere.example.test/hook")

    assert not result.ok and not result.permanent, result
    assert "cannot resolve nowhere.example.test" in result.detail


@pytest.fixture(scope="module")
def named_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("TLS tests need the openssl command line to generate a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls-named")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=hooks.example.test",
         "-addext", "subjectAltName=DNS:hooks.example.test"],
        check=True, capture_output=True, timeout=20,
    )
    return Certificate(cert, key)


@pytest.fixture
def tls_receiver(named_certificate: Certificate) -> Iterator[tuple[Receiver, list[str]]]:
    server = Receiver()
    names: list[str] = []
    context = named_certificate.server_context()

    def remember_server_name(_sock: Any, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(name or "")

    context.sni_callback = remember_server_name
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="tls-webhook-receiver")
    thread.start()
    try:
        yield server, names
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)


def test_https_goes_to_the_pinned_address_but_verifies_the_url_name(
        tls_receiver: tuple[Receiver, list[str]], named_certificate: Certificate, fake_dns: FakeDns) -> None:
    server, server_names = tls_receiver
    port = server.server_address[1]
    fake_dns.answers["hooks.example.test"] = [["127.0.0.1"]]
    fake_dns.answers["other.example.test"] = [["127.0.0.1"]]
    trust = ssl.create_default_context(cafile=str(named_certificate.cert))

    result = deliver(f"https://hooks.example.test:{port}/ok", ssl_context=trust)

    assert result.ok, result
    assert server_names == ["hooks.example.test"]  # SNI is the URL's name
    assert server.hits[0].headers["host"] == f"hooks.example.test:{port}"
    # Same address, another name: the certificate does not match it, so nothing is sent.
    wrong = deliver(f"https://other.example.test:{port}/ok", ssl_context=trust)
    assert not wrong.ok and not wrong.permanent and "certificate" in wrong.detail.lower(), wrong
    assert len(server.hits) == 1


# --------------------------------------------------------------------------------------------------
# Webhook time limit: the timeout bounds the whole attempt, name resolution included


class HangingDns(FakeDns):
    """A :class:`FakeDns` whose names in ``hanging`` do not answer until the test sets ``release`` (or 10 s
    pass, so that a broken test still ends). ``looked_up`` lists every name asked, IP literals included;
    ``hung`` counts the look-ups blocked right now and ``entered`` is released once by each on arrival."""

    def __init__(self, real: Callable[..., Any]) -> None:
        super().__init__(real)
        self.hanging: set[str] = set()
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.looked_up: list[str] = []
        self.hung = 0
        self._lock = threading.Lock()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.looked_up.append(name)
        if name.lower() in self.hanging and not self.release.is_set():
            with self._lock:
                self.hung += 1
            self.entered.release()
            try:
                self.release.wait(10.0)
            finally:
                with self._lock:
                    self.hung -= 1
        return super().__call__(host, port, *args, **kwargs)

    def wait_until_hung(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=10.0), "a look-up never reached the resolver"


@pytest.fixture
def hanging_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[HangingDns]:
    fake = HangingDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    try:
        yield fake
    finally:
        # The hung look-ups answer and their threads end (no_leaked_threads checks that they do).
        fake.release.set()


def test_a_name_that_does_not_resolve_in_time_is_a_transient_time_out(receiver: Receiver, hanging_dns: HangingDns) -> None:
    hanging_dns.answers["slow.example.test"] = [["127.0.0.1"]]
    hanging_dns.hanging.add("slow.example.test")
    url = f"http://slow.example.test:{receiver.server_address[1]}/ok"

    result = deliver(url, timeout=0.2)

    assert not result.ok and not result.permanent and result.status is None, result
    assert result.detail == "timed out after 0.2 s: no answer from DNS for slow.example.test in time"
    hanging_dns.wait_until_hung(1)
    assert hanging_dns.hung == 1  # returned while the resolver still had not answered
    assert receiver.hits == []
    # Once DNS answers again, so do deliveries.
    hanging_dns.release.set()
    assert deliver(url).ok
    assert len(receiver.hits) == 1


def test_the_url_check_passes_a_name_that_does_not_resolve_in_time(hanging_dns: HangingDns) -> None:
    hanging_dns.answers["slow.example.test"] = [["10.0.0.5"]]
    hanging_dns.hanging.add("slow.example.test")

    # Like a name that does not resolve now: every delivery checks again.
    assert webhook_target_problem("https://slow.example.test/hook", timeout=0.1) is None
    hanging_dns.wait_until_hung(1)
    assert hanging_dns.hung == 1
    # What needs no DNS is still refused, without a look-up.
    assert webhook_target_problem("http://10.0.0.5/hook", timeout=0.1) == \
        "host 10.0.0.5 is a private address; webhooks may not reach private networks"
    assert webhook_target_problem("http://localhost/hook", timeout=0.1) == \
        "host localhost names this machine; webhooks may not reach private networks"
    assert hanging_dns.looked_up == ["slow.example.test"]
    hanging_dns.release.set()
    assert webhook_target_problem("https://slow.example.test/hook", timeout=5.0) == \
        "host slow.example.test resolves to 10.0.0.5, a private address; webhooks may not reach private networks"


def test_a_hung_resolver_holds_no_more_threads_than_the_limit(hanging_dns: HangingDns) -> None:
    before = set(threading.enumerate())
    names = [f"slow{n}.example.test" for n in range(RESOLVER_THREADS + 3)]
    for name in names:
        hanging_dns.answers[name] = [["192.0.2.7"]]
        hanging_dns.hanging.add(name)

    failures: list[str] = []
    for name in names:
        with pytest.raises(TimeoutError) as caught:
            resolve_host(name, 443, timeout=0.05)
        failures.append(str(caught.value))
    hanging_dns.wait_until_hung(RESOLVER_THREADS)

    busy = f"was not looked up: all {RESOLVER_THREADS} resolver threads are waiting for DNS"
    assert failures == [f"no answer from DNS for {name} in time" for name in names[:RESOLVER_THREADS]] + \
        [f"{name} {busy}" for name in names[RESOLVER_THREADS:]]
    assert hanging_dns.hung == RESOLVER_THREADS
    assert sorted(hanging_dns.looked_up) == sorted(names[:RESOLVER_THREADS])
    started = [thread for thread in threading.enumerate() if thread not in before]
    assert len(started) == RESOLVER_THREADS
    # IP literals need no thread and no DNS, so they still resolve.
    assert resolve_host("192.0.2.7", 443, timeout=0.05) == [ipaddress.ip_address("192.0.2.7")]

    hanging_dns.release.set()
    # A look-up waits for a free thread within its own time limit, so this one works once DNS answers.
    assert resolve_host(names[-1], 443, timeout=5.0) == [ipaddress.ip_address("192.0.2.7")]
    for thread in started:
        thread.join(5.0)
        assert not thread.is_alive()


@dataclass
class Dripper:
    """A receiver on 127.0.0.1 that takes one request, sends ``head`` and then one byte every 20 ms until
    the client hangs up or 10 s have passed (``gave_up``), so a client waiting for the end waits 10 s."""

    head: bytes
    tls: ssl.SSLContext | None = None
    server: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    gave_up: bool = False

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def serve(self) -> None:
        self.server.settimeout(10.0)
        try:
            conn, _ = self.server.accept()
        except OSError:
            return  # nobody came: the test fails on its own
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(10.0)
            conn.recv(65536)
            conn.sendall(self.head)
            ends = time.monotonic() + 10.0
            while time.monotonic() < ends:
                conn.sendall(b"a")
                time.sleep(0.02)
            self.gave_up = True
        except OSError:
            pass  # the client hung up
        finally:
            conn.close()


@pytest.fixture
def drip() -> Iterator[Callable[..., Dripper]]:
    started: list[tuple[Dripper, threading.Thread]] = []

    def start(head: bytes, tls: ssl.SSLContext | None = None) -> Dripper:
        dripper = Dripper(head, tls)
        thread = threading.Thread(target=dripper.serve, name="dripping-receiver")
        thread.start()
        started.append((dripper, thread))
        return dripper

    yield start
    for dripper, thread in started:
        thread.join(15.0)
        dripper.server.close()


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nX-Endless: ",  # a header line that never ends
    b"HTTP/1.1 2",  # a status line that never ends
])
def test_a_receiver_answering_a_byte_at_a_time_is_cut_off_at_the_timeout(
        drip: Callable[..., Dripper], fake_dns: FakeDns, head: bytes) -> None:
    fake_dns.answers["drip.example.test"] = [["127.0.0.1"]]
    dripper = drip(head)

    result = deliver(f"http://drip.example.test:{dripper.port}/hook", timeout=0.3)

    assert not result.ok and not result.permanent and result.status is None, result
    assert result.detail == "timed out after 0.3 s waiting for the response"
    assert not dripper.gave_up  # the receiver was still sending when the attempt ended


def test_a_status_that_arrived_in_time_counts_though_the_body_is_cut_off(
        drip: Callable[..., Dripper], fake_dns: FakeDns) -> None:
    fake_dns.answers["drip.example.test"] = [["127.0.0.1"]]
    dripper = drip(b"HTTP/1.1 503 Busy\r\nContent-Length: 100000\r\n\r\nplease ")

    result = deliver(f"http://drip.example.test:{dripper.port}/hook", timeout=0.3)

    assert not result.ok and not result.permanent and result.status == 503, result
    assert result.detail.startswith("HTTP 503 Busy")
    assert not dripper.gave_up


def test_a_tls_receiver_answering_a_byte_at_a_time_is_cut_off_at_the_timeout(
        drip: Callable[..., Dripper], fake_dns: FakeDns, named_certificate: Certificate) -> None:
    fake_dns.answers["hooks.example.test"] = [["127.0.0.1"]]
    dripper = drip(b"HTTP/1.1 200 OK\r\nX-Endless: ", named_certificate.server_context())
    trust = ssl.create_default_context(cafile=str(named_certificate.cert))

    result = deliver(f"https://hooks.example.test:{dripper.port}/hook", timeout=1.0, ssl_context=trust)

    assert not result.ok and not result.permanent and result.status is None, result
    assert result.detail == "timed out after 1 s waiting for the response"
    assert not dripper.gave_up


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True, "5"])
def test_time_limits_must_be_positive_numbers(timeout: Any) -> None:
    with pytest.raises(ValueError):
        post_webhook("https://hooks.example.test/", SECRET, "evt-1", "t", {}, now=NOW, timeout=timeout)
    with pytest.raises(ValueError):
        resolve_host("192.0.2.7", 443, timeout=timeout)
    with pytest.raises(ValueError):
        webhook_target_problem("https://hooks.example.test/", timeout=timeout)



# --------------------------------------------------------------------------------------------------
# Signatures


def test_signature_format_and_round_trip() -> None:
    body = canonical_json(PAYLOAD)
    header = sign_webhook(SECRET, NOW, body)
    timestamp, digest = header.split(",")
    assert timestamp == f"t={NOW}" and digest.startswith("v1=") and len(digest) == 3 + 64
    assert verify_webhook_signature(SECRET, header, body, now=NOW)
    assert verify_webhook_signature(SECRET, header, body, now=NOW + 300)
    assert verify_webhook_signature(SECRET, header, body, now=NOW - 300)  # sender clock slightly ahead
    # A second signature (secret rotation) and unknown schemes do not get in the way.
    rotated = f"t={NOW},v1={'0' * 64},{digest},v9=whatever"
    assert verify_webhook_signature(SECRET, rotated, body, now=NOW)


def test_signature_rejections() -> None:
    body = canonical_json(PAYLOAD)
    header = sign_webhook(SECRET, NOW, body)

    assert not verify_webhook_signature(SECRET, header, body + b" ", now=NOW)  # tampered body
    assert not verify_webhook_signature(SECRET, header, body.replace(b"INC-42", b"INC-43"), now=NOW)
    assert not verify_webhook_signature("another-secret", header, body, now=NOW)  # wrong secret
    assert not verify_webhook_signature(SECRET, header, body, now=NOW + 301)  # stale
    assert not verify_webhook_signature(SECRET, header, body, now=NOW + 10, tolerance=5)
    assert not verify_webhook_signature(SECRET, header, body, now=NOW - 301)  # from the future
    # The timestamp is signed: moving it invalidates the signature.
    moved = header.replace(f"t={NOW}", f"t={NOW + 1000}")
    assert not verify_webhook_signature(SECRET, moved, body, now=NOW + 1000)
    for garbage in ["", "v1=abc", f"t={NOW}", f"t=abc,{header.split(',')[1]}", f"t={NOW},t={NOW},v1=00",
                    "nonsense", f"t={NOW},v1=é", "t=1_750_000_000," + header.split(",")[1]]:
        assert not verify_webhook_signature(SECRET, garbage, body, now=NOW), garbage
    assert not verify_webhook_signature("", header, body, now=NOW)
    with pytest.raises(ValueError):
        sign_webhook("", NOW, body)


# --------------------------------------------------------------------------------------------------
# Back-off


def test_backoff_grows_monotonically_up_to_the_cap() -> None:
    nominal = [next_attempt_delay(n, jitter=0.0) for n in range(1, 20)]
    assert nominal[:4] == [30.0, 60.0, 120.0, 240.0]
    assert all(a < b or b == 6 * 3600 for a, b in zip(nominal, nominal[1:], strict=False))
    assert max(nominal) == nominal[-1] == 6 * 3600
    jittered = [next_attempt_delay(n, rng=random.Random(n)) for n in range(1, 11)]
    assert all(a < b for a, b in zip(jittered, jittered[1:], strict=False))
    assert next_attempt_delay(10_000) <= 6 * 3600  # no overflow
    assert next_attempt_delay(3, base=10, factor=3, cap=50, jitter=0) == 50


def test_backoff_jitter_bounds() -> None:
    rng = random.Random(1234)
    for attempt in range(1, 16):
        nominal = min(6 * 3600, 30.0 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = next_attempt_delay(attempt, jitter=0.25, rng=rng)
            assert nominal * 0.75 <= delay <= nominal
    spread = {round(next_attempt_delay(20, rng=rng), 3) for _ in range(50)}
    assert len(spread) > 10  # at the cap the retries still spread out


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    one = [next_attempt_delay(n, rng=random.Random(7)) for n in range(1, 9)]
    two = [next_attempt_delay(n, rng=random.Random(7)) for n in range(1, 9)]
    assert one == two
    shared_a, shared_b = random.Random(99), random.Random(99)
    assert [next_attempt_delay(3, rng=shared_a) for _ in range(5)] == [next_attempt_delay(3, rng=shared_b) for _ in range(5)]


@pytest.mark.parametrize("kwargs", [{"attempt": 0}, {"attempt": -1}, {"attempt": 1, "jitter": 1.5},
                                    {"attempt": 1, "factor": 0.5}, {"attempt": 1, "base": -1.0},
                                    {"attempt": 1, "cap": float("inf")}])
def test_backoff_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        next_attempt_delay(**kwargs)


def test_should_retry() -> None:
    transient = DeliveryResult(ok=False, permanent=False, detail="timed out")
    assert should_retry(transient, 1) and should_retry(transient, MAX_ATTEMPTS - 1)
    assert not should_retry(transient, MAX_ATTEMPTS)
    assert not should_retry(DeliveryResult(ok=False, permanent=True, detail="550"), 1)
    assert not should_retry(DeliveryResult(ok=True, permanent=False, detail="250"), 1)
