"""Outbound delivery: one e-mail over SMTP or one signed webhook POST, and the retry schedule.

The outbox sweeper owns persistence and scheduling. This module performs exactly one delivery attempt
and says what happened in a :class:`DeliveryResult`:

* ``ok`` — the receiving server accepted the message (SMTP 250 after DATA, HTTP 2xx);
* ``permanent`` — retrying the same message cannot succeed (a 5xx recipient refusal, an HTTP 4xx other
  than 408/429, a redirect, a malformed address, URL or header), so the sweeper should give up;
* otherwise the failure is transient (network trouble, timeouts, 4xx SMTP replies, HTTP 5xx/408/429,
  server-side configuration problems such as failed authentication) and the sweeper should retry after
  :func:`next_attempt_delay`, up to :data:`MAX_ATTEMPTS` attempts in all (see :func:`should_retry`);
* ``attempted`` False — nothing reached the network because this process had no room for the attempt
  (every resolver thread busy, see below): this machine's limit, not the receiver's fault, so the sweeper
  does not count it as an attempt and tries again after :data:`NOT_ATTEMPTED_DELAY`.

Neither :func:`send_email` nor :func:`post_webhook` raises for network problems or bad message data; both
raise ``ValueError`` only for arguments that are programming errors (documented per function).

Idempotence: a message carries a stable identity across attempts — the ``Message-ID`` header (from
:attr:`EmailMessage.message_id`) and the ``X-Processdesk-Delivery`` header (from ``event_id``) — because a
connection lost after the server took the message looks like a transient failure, the retry then delivers
a second copy, and only the receiver can recognise it.

Webhook destinations (server-side request forgery): an admin chooses webhook URLs, and the sweeper posts
from inside the network, so by default :func:`post_webhook` refuses any host that is, or resolves to, an
address outside the public internet — loopback, private (RFC 1918, IPv6 unique-local), link-local,
multicast, reserved, unspecified and other special-purpose ranges, also when written as IPv4-mapped IPv6
or in a legacy IPv4 spelling such as ``0x7f000001`` — and names of this machine (``localhost``). The name
is resolved once per attempt, every address it resolves to is checked, and the TCP connection goes to
those checked addresses only: http.client is handed a socket factory that never asks DNS again, so an
answer that changes between the check and the connection (DNS rebinding) cannot redirect the request.
The URL's host name still gives the ``Host`` header, the TLS server name (SNI) and the name the server
certificate must match. :func:`webhook_target_problem` applies the same rules when a URL is saved.
Remaining gaps: redirects are never followed and proxies never used, so neither can bypass the check;
and a public address that forwards to an internal one (an open proxy, a NAT rule) is beyond what an
address check can see.

Webhook time limit: the ``timeout`` of :func:`post_webhook` bounds the whole attempt — name resolution,
connecting (to each address in turn), TLS, sending and reading the response — so neither a black-holed
DNS server nor a receiver that answers a byte at a time holds the sweeper (or a request saving a URL)
much past it. ``getaddrinfo`` cannot be interrupted, so it runs in a thread of its own and the caller
stops waiting when its time is up; the thread goes on until the system resolver answers or gives up (its
own timeouts). Look-ups are shared: a caller asking for a (host, port) that is already being looked up
waits for that look-up, within its own time limit, instead of starting another, so one host holds at most
one thread however many deliveries to it are waiting — a host whose DNS hangs cannot crowd the others
out. At most :data:`RESOLVER_THREADS` threads exist at once; when that many different hosts hang, a
look-up for yet another host waits for a free thread within its own time limit and otherwise fails with
:class:`ResolverBusy` (a ``TimeoutError``), which :func:`post_webhook` reports as not attempted (IP
literals need no look-up). Once connected, a watchdog shuts the connection down when the time is up:
socket timeouts alone bound each read, not their sum.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import math
import os
import random
import re
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP as _SMTP_POLICY
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

__all__ = [
    "MAX_ATTEMPTS",
    "NOT_ATTEMPTED_DELAY",
    "RESOLVER_THREADS",
    "SECURITY_MODES",
    "DeliveryResult",
    "EmailMessage",
    "IPAddress",
    "ResolverBusy",
    "SmtpSettings",
    "WEBHOOK_TIMEOUT",
    "address_refusal",
    "canonical_json",
    "literal_address",
    "next_attempt_delay",
    "post_webhook",
    "resolve_host",
    "send_email",
    "should_retry",
    "sign_webhook",
    "verify_webhook_signature",
    "webhook_target_problem",
]

#: Total number of attempts (the first one included) before the sweeper gives up on a message.
MAX_ATTEMPTS = 8

#: Seconds the sweeper waits before trying a message again whose attempt was not made
#: (``DeliveryResult.attempted`` False). Short, because the cause is local and passes (resolver threads
#: free up as the system resolver gives up on hung names); not zero, so that a message that keeps finding
#: no free thread is tried every half minute, not over and over in one sweep.
NOT_ATTEMPTED_DELAY = 30.0
#: The time limit of one webhook delivery, in seconds (``post_webhook``'s ``timeout``: it bounds the
#: whole attempt, the address look-up included).
WEBHOOK_TIMEOUT = 5.0

#: The limit of one e-mail's whole SMTP conversation, in SMTP timeouts (``SmtpSettings.timeout``): the
#: timeout bounds each socket operation, not their sum, so a relay answering a line at a time just in time
#: would keep an e-mail going without end; at this many timeouts after the start a watchdog cuts it.
SMTP_TIMEOUTS_PER_EMAIL = 3

#: ``none``: plain SMTP; ``starttls``: plain connection upgraded with STARTTLS (never falls back to
#: plaintext); ``tls``: TLS from the first byte (SMTPS, usually port 465).
SECURITY_MODES = ("none", "starttls", "tls")

#: Most host-name look-ups (``getaddrinfo`` calls) that webhook deliveries and URL checks run at once in
#: this process, each in a thread of its own, one per (host, port) being looked up; see the module docstring.
RESOLVER_THREADS = 4

# Conventional ports, used by from_config when SMTP_PORT is absent: a deployment that only says
# SMTP_SECURITY=tls should not end up speaking TLS to port 25.
_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}

_CONFIG_KEYS = {
    "host": "SMTP_HOST",
    "port": "SMTP_PORT",
    "security": "SMTP_SECURITY",
    "username": "SMTP_USERNAME",
    "password": "SMTP_PASSWORD",
    "sender": "SMTP_SENDER",
    "timeout": "SMTP_TIMEOUT",
    "helo_name": "SMTP_HELO_NAME",
}

_MAX_RESPONSE_BYTES = 64 * 1024
_MAX_DETAIL_CHARS = 500
_USER_AGENT = "processdesk-webhooks/1"

# Line breaks are what header injection needs; the other C0 controls and DEL have no business in a
# header either. A tab is harmless (it is folding whitespace) and people paste it into subjects.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# RFC 5322 field-name: printable ASCII except the colon.
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
# A deliberately plain addr-spec: dot-atom local part and a host-name domain, non-ASCII allowed (it is
# sent with SMTPUTF8). Quoted local parts and address literals are refused: notification recipients
# never need them and they are where parsers disagree.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_LABEL = r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\-\u0080-\U0010ffff]*[A-Za-z0-9\u0080-\U0010ffff])?"
_ADDR_SPEC = re.compile(rf"(?P<local>{_ATEXT}+(?:\.{_ATEXT}+)*)@(?P<domain>{_LABEL}(?:\.{_LABEL})*)")
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>")
# The event id and type travel as HTTP header values: printable ASCII without spaces keeps them
# unambiguous for receivers that log or compare them.
_TOKEN = re.compile(r"[\x21-\x7e]{1,200}")
_DIGITS = re.compile(r"[0-9]{1,15}")

# Headers this module writes itself (or that would make the envelope and the headers disagree);
# letting a caller set them would produce duplicates or a message that lies about its recipients.
_RESERVED_HEADERS = frozenset({
    "from", "sender", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version",
    "content-type", "content-transfer-encoding", "content-disposition", "return-path",
})

# Body parts are written as quoted-printable/base64 (cte_type 7bit) so the message is valid even on a
# server that does not announce 8BITMIME; headers are folded and encoded by the SMTP policy (CRLF).
_MIME_POLICY = _SMTP_POLICY.clone(cte_type="7bit")


# --------------------------------------------------------------------------------------------------
# Data types


class _SettingsError(ValueError):
    """Invalid settings; ``problems`` pairs a field name with what is wrong with it."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("invalid SMTP settings: " + "; ".join(f"{name} {problem}" for name, problem in problems))


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the SMTP relay. Validated on construction.

    ``helo_name`` is the name announced in EHLO; None lets smtplib use the machine's FQDN (container host
    names are often rejected by relays, hence the option). ``timeout`` applies to each socket operation
    (connect, every reply); the whole conversation from the connection on is cut after
    ``SMTP_TIMEOUTS_PER_EMAIL`` times it (see :func:`send_email`).

    Raises:
        ValueError: a field is invalid; the message names every bad field and never shows the password.
    """

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "processdesk@localhost"
    timeout: float = 10.0
    helo_name: str | None = None

    def __post_init__(self) -> None:
        problems = _settings_problems(self)
        if problems:
            raise _SettingsError(problems)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        """Settings from configuration keys ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_SECURITY``,
        ``SMTP_USERNAME``, ``SMTP_PASSWORD``, ``SMTP_SENDER``, ``SMTP_TIMEOUT`` and ``SMTP_HELO_NAME``.

        Absent keys (or None) take the defaults; values may be strings (as read from the environment).
        Without ``SMTP_PORT`` the port follows the security mode: 25, 587 (starttls) or 465 (tls).
        An empty ``SMTP_USERNAME``/``SMTP_PASSWORD``/``SMTP_HELO_NAME`` means "not set".

        Raises:
            ValueError: naming each bad key and its value (the password's value is never shown).
        """
        values: dict[str, Any] = {}
        errors: list[str] = []
        for name, key in _CONFIG_KEYS.items():
            raw = config.get(key)
            if raw is None:
                continue
            try:
                converted = _coerce_setting(name, raw)
            except ValueError as exc:
                errors.append(f"{key} {exc}")
                continue
            if converted is not None:
                values[name] = converted
        if errors:
            raise ValueError("invalid SMTP configuration: " + "; ".join(errors))
        if "port" not in values and isinstance(values.get("security"), str):
            values["port"] = _DEFAULT_PORTS.get(values["security"], 25)
        try:
            return cls(**values)
        except _SettingsError as exc:
            raise ValueError(
                "invalid SMTP configuration: " + "; ".join(f"{_CONFIG_KEYS[name]} {problem}" for name, problem in exc.problems)
            ) from None


@dataclass(frozen=True)
class EmailMessage:
    """One e-mail to send.

    ``to`` holds addresses such as ``"ann@example.org"`` or ``"Ann Smith <ann@example.org>"`` (a bare
    string is taken as one address). ``message_id`` should be stable for the outbox row, e.g.
    ``"outbox-42"``: without an ``@`` the sender's domain is appended, angle brackets are added when
    missing; without a message_id a random one is generated, which defeats de-duplication of retries.
    ``headers`` adds extra header fields (``Reply-To``, ``References``, ``X-...``); the fields this module
    writes itself (From, To, Subject, Message-ID, Date, MIME and content headers, Cc, Bcc) are refused.
    """

    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None
    message_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one delivery attempt.

    ``status`` is the SMTP reply code or HTTP status when the server answered; ``detail`` is meant for
    operators (reply text, exception text) and never contains passwords or webhook secrets, though it may
    quote text the remote server sent; ``duration_ms`` is the wall time of the attempt.

    ``attempted`` is False when nothing reached the network because this process had no room for the
    attempt (no free resolver thread, see :data:`RESOLVER_THREADS`): not the destination's fault, so it is
    no delivery attempt — the sweeper neither counts it nor moves the message toward dead, and tries again
    after :data:`NOT_ATTEMPTED_DELAY`. Such a result is neither ``ok`` nor ``permanent``. (A message
    refused before sending, ``not sent: ...``, is attempted: the refusal is about the message itself.)

    Raises:
        ValueError: ``attempted`` is False but ``ok`` or ``permanent`` is True (a programming error).
    """

    ok: bool
    permanent: bool
    detail: str
    status: int | None = None
    duration_ms: float = 0.0
    attempted: bool = True

    def __post_init__(self) -> None:
        if not self.attempted and (self.ok or self.permanent):
            raise ValueError("a delivery that was not attempted can be neither ok nor permanent")


def should_retry(result: DeliveryResult, attempts_made: int, max_attempts: int = MAX_ATTEMPTS) -> bool:
    """Whether the sweeper should schedule another attempt after ``attempts_made`` attempts (>= 1).

    ``attempts_made`` counts attempted deliveries only: a result that was not attempted
    (``result.attempted`` False) leaves it as it was."""
    return not result.ok and not result.permanent and attempts_made < max_attempts


# --------------------------------------------------------------------------------------------------
# Settings validation


def _coerce_setting(name: str, raw: Any) -> Any:
    """Convert one configuration value to its field type; None means "treat as not set"."""
    if name == "port":
        if isinstance(raw, bool):
            raise ValueError(f"must be a port number 1..65535, got {raw!r}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str) and _DIGITS.fullmatch(raw.strip()):
            return int(raw.strip())
        raise ValueError(f"must be a port number 1..65535, got {raw!r}")
    if name == "timeout":
        if isinstance(raw, bool):
            raise ValueError(f"must be a positive number of seconds, got {raw!r}")
        if isinstance(raw, int | float):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw.strip())
            except ValueError:
                raise ValueError(f"must be a positive number of seconds, got {raw!r}") from None
        raise ValueError(f"must be a positive number of seconds, got {raw!r}")
    if not isinstance(raw, str):
        # The password's value stays out of the message, whatever its type.
        shown = "a " + type(raw).__name__ if name == "password" else repr(raw)
        raise ValueError(f"must be a string, got {shown}")
    if name == "password":
        # Not stripped: spaces can be part of a password.
        return raw or None
    text = raw.strip()
    if name == "security":
        return text.lower()
    if name in {"username", "helo_name"}:
        return text or None
    return text


def _settings_problems(settings: SmtpSettings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    host = settings.host
    if not isinstance(host, str) or not host or _SPACE_OR_CONTROL.search(host):
        problems.append(("host", f"must be a host name or IP address, got {host!r}"))
    port = settings.port
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        problems.append(("port", f"must be a port number 1..65535, got {port!r}"))
    if settings.security not in SECURITY_MODES:
        problems.append(("security", f"must be one of {', '.join(SECURITY_MODES)}, got {settings.security!r}"))
    username = settings.username
    if username is not None and (not isinstance(username, str) or not username or _CONTROL.search(username)):
        problems.append(("username", "must be a non-empty string without control characters"))
    password = settings.password
    if password is not None and not isinstance(password, str):
        problems.append(("password", "must be a string"))
    if username is not None and password is None:
        problems.append(("password", "is required when a username is set"))
    if password is not None and username is None:
        problems.append(("username", "is required when a password is set"))
    sender_problem = _address_problem(settings.sender) if isinstance(settings.sender, str) else "must be a string"
    if sender_problem:
        problems.append(("sender", f"{sender_problem}, got {settings.sender!r}"))
    timeout = settings.timeout
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not math.isfinite(timeout) or timeout <= 0):
        problems.append(("timeout", f"must be a positive number of seconds, got {timeout!r}"))
    helo = settings.helo_name
    if helo is not None and (not isinstance(helo, str) or not helo or _SPACE_OR_CONTROL.search(helo)):
        problems.append(("helo_name", f"must be a host name without spaces, got {helo!r}"))
    return problems


# --------------------------------------------------------------------------------------------------
# E-mail


class _Refused(Exception):
    """A message that can never be sent as it is (permanent failure, nothing transmitted)."""


@dataclass(frozen=True)
class _Prepared:
    envelope_from: str
    recipients: list[str]
    data: bytes
    international: bool
    message_id: str


def _parse_address(text: str) -> Address:
    """One address, ``a@b`` or ``Name <a@b>``.

    Raises:
        ValueError: not exactly one plain address, or a control character anywhere in it.
    """
    if _CONTROL.search(text):
        raise ValueError("contains a line break or control character")
    pairs = getaddresses([text])
    if len(pairs) != 1:
        raise ValueError("must be exactly one address")
    display_name, addr_spec = pairs[0]
    match = _ADDR_SPEC.fullmatch(addr_spec)
    if match is None:
        raise ValueError("is not a valid e-mail address")
    # Built from the validated parts rather than re-parsed, so the header can only say what was checked.
    return Address(display_name=display_name, username=match["local"], domain=match["domain"])


def _address_problem(text: str) -> str | None:
    try:
        _parse_address(text)
    except ValueError as exc:
        return str(exc)
    return None


def _ascii_domain(domain: str) -> str:
    # A Message-ID must be ASCII even when the sender's domain is not.
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "processdesk.invalid"


def _normalise_message_id(message_id: str | None, domain: str) -> str:
    domain = _ascii_domain(domain)
    if message_id is None:
        # Random, so retries of this message will carry different ids; callers should pass one.
        return make_msgid(domain=domain)
    value = message_id.strip()
    if _CONTROL.search(value):
        raise _Refused("message_id contains a line break or control character")
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    if "@" not in value:
        value = f"{value}@{domain}"
    value = f"<{value}>"
    if not _MSG_ID.fullmatch(value):
        raise _Refused(f"message_id {message_id!r} is not a valid Message-ID")
    return value


def _prepare(settings: SmtpSettings, message: EmailMessage) -> _Prepared:
    """Validate the message and render it to bytes.

    Raises:
        _Refused: the message can never be sent (bad address, header injection attempt, ...).
    """
    sender = _parse_address(settings.sender)  # validated with the settings, cannot fail here
    entries = [message.to] if isinstance(message.to, str) else list(message.to)
    if not entries:
        raise _Refused("no recipients")
    recipients: list[Address] = []
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, str):
            raise _Refused(f"recipient {entry!r} is not a string")
        try:
            address = _parse_address(entry)
        except ValueError as exc:
            raise _Refused(f"recipient {entry!r} {exc}") from None
        # A repeated RCPT makes some servers deliver twice.
        if address.addr_spec.lower() not in seen:
            seen.add(address.addr_spec.lower())
            recipients.append(address)
    if not isinstance(message.subject, str) or _CONTROL.search(message.subject):
        raise _Refused("subject contains a line break or control character")
    if not isinstance(message.text, str) or (message.html is not None and not isinstance(message.html, str)):
        raise _Refused("text and html must be strings")
    message_id = _normalise_message_id(message.message_id, sender.domain)

    extra: list[tuple[str, str]] = []
    for name, value in message.headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise _Refused(f"header name {name!r} is not a valid field name")
        if name.lower() in _RESERVED_HEADERS:
            raise _Refused(f"header {name} is set by the mailer and cannot be overridden")
        if not isinstance(value, str) or _CONTROL.search(value):
            raise _Refused(f"header {name} contains a line break or control character")
        extra.append((name, value))

    mime = MimeMessage(policy=_MIME_POLICY)
    mime["From"] = sender
    mime["To"] = recipients
    mime["Subject"] = message.subject
    # The date of this attempt: a retry is a new submission, only the Message-ID must stay the same.
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = message_id
    if not any(name.lower() == "auto-submitted" for name, _ in extra):
        # RFC 3834: tells well-behaved auto-responders (out-of-office) not to answer notifications,
        # which would otherwise open tickets from vacation replies.
        mime["Auto-Submitted"] = "auto-generated"
    for name, value in extra:
        mime[name] = value
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")

    envelope = [sender.addr_spec] + [address.addr_spec for address in recipients]
    international = any(not part.isascii() for part in envelope)
    # Non-ASCII addresses can only travel raw (SMTPUTF8); encoded words are not allowed in addr-specs.
    policy = _MIME_POLICY.clone(utf8=True) if international else _MIME_POLICY
    return _Prepared(
        envelope_from=sender.addr_spec,
        recipients=[address.addr_spec for address in recipients],
        data=mime.as_bytes(policy=policy),
        international=international,
        message_id=message_id,
    )


@dataclass
class _Progress:
    """How far the SMTP conversation got; failures are classified (and described) by it."""

    phase: str = "connect"


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _is_permanent_code(code: int) -> bool:
    return 500 <= code <= 599


def send_email(settings: SmtpSettings, message: EmailMessage, *, ssl_context: ssl.SSLContext | None = None) -> DeliveryResult:
    """Send ``message`` through the relay in ``settings``; one connection, one transaction.

    The body is ``text/plain``, or ``multipart/alternative`` (text then html) when ``html`` is given.
    Delivery is all-or-nothing: if any recipient is refused the transaction is reset before DATA, so
    nobody receives the message (a 5xx refusal makes that permanent, 4xx refusals transient); send one
    message per recipient when one bad address must not hold up the others.

    ``ssl_context`` verifies the server for ``starttls`` and ``tls``; None means the system's default
    trust store with host-name checking. ``starttls`` never falls back to plaintext: a server that does not
    offer STARTTLS is a (transient) failure. Credentials, when set, are sent after TLS is up — or in clear
    with ``security="none"``.

    Outcomes: a refused message (CR/LF or other control characters in subject/addresses/headers, invalid
    address or Message-ID, no recipients, a non-ASCII address on a server without SMTPUTF8) is permanent
    and nothing is transmitted; MAIL/RCPT/DATA replies are permanent when 5xx, transient when 4xx; failures
    while connecting, greeting, negotiating TLS or authenticating are transient (they are about the relay
    or its configuration, not this message, and should recover once fixed); so are all network errors and
    timeouts. A connection lost during DATA is reported as transient although the server may have taken the
    message — the stable Message-ID lets receivers drop the duplicate. Errors after the message was accepted
    (e.g. on QUIT) are ignored.

    Never raises for network or server problems, nor for bad message data.
    """
    started = time.monotonic()

    def result(ok: bool, permanent: bool, detail: str, status: int | None = None) -> DeliveryResult:
        return DeliveryResult(ok=ok, permanent=permanent, detail=_clean_detail(detail), status=status,
                              duration_ms=(time.monotonic() - started) * 1000.0)

    try:
        prepared = _prepare(settings, message)
    except _Refused as exc:
        return result(False, True, f"not sent: {exc}")

    context = ssl_context
    if context is None and settings.security != "none":
        context = ssl.create_default_context()
    progress = _Progress()
    client: smtplib.SMTP | None = None
    broken = False
    limit = settings.timeout * SMTP_TIMEOUTS_PER_EMAIL
    deadline = _Deadline(started + limit, name="smtp deadline")
    try:
        if settings.security == "tls":
            client = _WatchedSMTPSSL(deadline, settings.host, settings.port, local_hostname=settings.helo_name,
                                     timeout=settings.timeout, context=context)
        else:
            client = _WatchedSMTP(deadline, settings.host, settings.port, local_hostname=settings.helo_name,
                                  timeout=settings.timeout)
        progress.phase = "EHLO"
        client.ehlo_or_helo_if_needed()
        if settings.security == "starttls":
            progress.phase = "STARTTLS"
            if not client.has_extn("starttls"):
                return result(False, False, "server does not offer STARTTLS; not continuing in plaintext")
            client.starttls(context=context)
            # The pre-TLS capabilities must not be trusted (an attacker could have edited them).
            client.ehlo()
        if settings.username is not None:
            progress.phase = "AUTH"
            client.login(settings.username, settings.password or "")
        return _transaction(client, prepared, progress, result)
    except smtplib.SMTPAuthenticationError as exc:
        # A configuration problem of the relay account, not of this message: transient, so messages
        # survive until the credentials are fixed.
        return result(False, False, f"authentication failed: {exc.smtp_code} {_reply_text(exc.smtp_error)}",
                      exc.smtp_code)
    except smtplib.SMTPResponseException as exc:
        # Raised by smtplib for a bad greeting (SMTPConnectError), EHLO/HELO, STARTTLS or the DATA command.
        permanent = progress.phase == "DATA" and _is_permanent_code(exc.smtp_code)
        return result(False, permanent, f"{progress.phase}: {exc.smtp_code} {_reply_text(exc.smtp_error)}",
                      exc.smtp_code)
    except smtplib.SMTPNotSupportedError as exc:
        # AUTH not offered, typically: the relay's configuration, not the message.
        return result(False, False, f"{progress.phase}: {exc}")
    except (smtplib.SMTPException, OSError, UnicodeError) as exc:
        # OSError covers refused connections, DNS failures, timeouts and TLS errors; SMTPServerDisconnected
        # a dropped connection; UnicodeError a non-ASCII password that AUTH cannot encode.
        broken = True
        if deadline.cut:
            detail = f"{progress.phase}: cut after {limit:g} s, the limit of one e-mail ({type(exc).__name__})"
        else:
            detail = f"{progress.phase}: {type(exc).__name__}: {exc}"
        if progress.phase == "DATA":
            detail += f"; the server may have accepted the message (Message-ID {prepared.message_id})"
        return result(False, False, detail)
    finally:
        deadline.stop()
        if client is not None:
            _close(client, polite=not broken and not deadline.cut)


def _transaction(client: smtplib.SMTP, prepared: _Prepared, progress: _Progress,
                 result: Callable[[bool, bool, str, int | None], DeliveryResult]) -> DeliveryResult:
    """MAIL, RCPT..., DATA on an open, authenticated connection; exceptions are left to send_email."""
    progress.phase = "MAIL"
    options: list[str] = []
    if prepared.international:
        if not client.has_extn("smtputf8"):
            return result(False, True, "not sent: a non-ASCII address needs SMTPUTF8, which the server does not offer", None)
        options.append("SMTPUTF8")
        if client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
    if client.has_extn("size"):
        # Lets the server refuse an oversized message before we upload it.
        options.append(f"SIZE={len(prepared.data)}")
    code, reply = client.mail(prepared.envelope_from, options)
    if code != 250:
        _reset(client)
        return result(False, _is_permanent_code(code), f"sender refused: {code} {_reply_text(reply)}", code)

    progress.phase = "RCPT"
    refused: list[tuple[str, int, str]] = []
    for recipient in prepared.recipients:
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            refused.append((recipient, code, _reply_text(reply)))
    if refused:
        # All-or-nothing: sending to the accepted part would make any retry a duplicate for them.
        _reset(client)
        permanent = any(_is_permanent_code(code) for _, code, _ in refused)
        worst = next((code for _, code, _ in refused if _is_permanent_code(code)), refused[0][1])
        listing = "; ".join(f"{recipient}: {code} {reply}" for recipient, code, reply in refused)
        return result(False, permanent, f"recipient refused, nothing sent: {listing}", worst)

    progress.phase = "DATA"
    # smtplib.data() escapes leading dots and normalises line endings; a refused DATA command raises
    # SMTPDataError, which send_email classifies by its code.
    code, reply = client.data(prepared.data)
    if code != 250:
        return result(False, _is_permanent_code(code), f"message refused: {code} {_reply_text(reply)}", code)
    return result(True, False, f"accepted: {code} {_reply_text(reply)}; Message-ID {prepared.message_id}", code)


def _reset(client: smtplib.SMTP) -> None:
    try:
        client.rset()
    except (smtplib.SMTPException, OSError):
        pass


class _WatchedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose connection ``deadline`` watches from the moment it is open."""

    def __init__(self, deadline: _Deadline, *args: Any, **kwargs: Any) -> None:
        self._deadline = deadline  # before super().__init__, which connects
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:  # type: ignore[override]
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self._deadline.watch(sock)
        return sock  # type: ignore[no-any-return]


class _WatchedSMTPSSL(_WatchedSMTP, smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL whose connection ``deadline`` watches (TLS from the first byte)."""


def _close(client: smtplib.SMTP, *, polite: bool) -> None:
    # QUIT only on a healthy connection: after a timeout it would wait another full timeout. Errors here
    # must not turn a delivered message into a failure (smtplib's context manager would raise).
    if polite:
        try:
            client.quit()
            return
        except (smtplib.SMTPException, OSError):
            pass
    try:
        client.close()
    except OSError:
        pass


# --------------------------------------------------------------------------------------------------
# Webhooks


def _webhook_digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Processdesk-Signature`` header value ``t=<timestamp>,v1=<hex>``.

    ``v1`` is HMAC-SHA256, keyed with the UTF-8 secret, over ``b"<timestamp>." + body``; binding the
    timestamp lets receivers reject replays of an old request.

    Raises:
        ValueError: empty secret, or a timestamp that is not a non-negative int.
    """
    if not isinstance(secret, str) or not secret:
        raise ValueError("webhook secret must be a non-empty string")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be a non-negative int (Unix seconds), got {timestamp!r}")
    return f"t={timestamp},v1={_webhook_digest(secret, timestamp, body)}"


def verify_webhook_signature(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made with ``secret`` within ``tolerance`` seconds
    of ``now`` (either side, so clock skew works both ways).

    Several ``v1=`` entries are accepted (a sender rotating secrets may sign twice); unknown schemes are
    ignored; anything malformed is simply not valid. Comparison is constant-time. Never raises.
    """
    if not isinstance(secret, str) or not secret or not isinstance(header, str) or len(header) > 4096:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not _DIGITS.fullmatch(value):
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if isinstance(now, bool) or not isinstance(now, int | float) or abs(now - timestamp) > tolerance:
        return False
    expected = _webhook_digest(secret, timestamp, body).encode("ascii")
    valid = False
    for candidate in candidates:
        # Compare against every candidate so the time taken does not tell which one matched.
        valid |= hmac.compare_digest(expected, candidate.encode("utf-8", "backslashreplace"))
    return valid


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """The exact body bytes :func:`post_webhook` sends: sorted keys, no spaces, UTF-8, strict JSON.

    Raises:
        TypeError: a value is not JSON-serialisable.
        ValueError: NaN or infinity (not valid JSON), or a circular reference.
    """
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _check_webhook_url(url: str) -> tuple[str, int]:
    """The lower-case host of ``url`` (IPv6 without brackets) and the port it names or implies.

    Raises:
        _Refused: not an absolute http(s) URL with a host, contains credentials, non-ASCII or controls.
    """
    if not isinstance(url, str) or not url:
        raise _Refused("webhook URL is empty")
    # http.client would reject these anyway; refusing early gives a clear reason and keeps odd bytes out
    # of the request line. Non-ASCII hosts must be given in punycode, paths percent-encoded.
    if not url.isascii() or _SPACE_OR_CONTROL.search(url):
        raise _Refused("webhook URL must be ASCII without spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _Refused(f"webhook URL is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise _Refused(f"webhook URL scheme {parts.scheme or '(none)'!r} is not allowed; use http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        # Credentials in the URL would not be sent by urllib anyway, and "user@host" is a classic way of
        # making a URL look like it points somewhere else.
        raise _Refused("webhook URL must not contain credentials")
    host = parts.hostname
    if not host:
        raise _Refused("webhook URL has no host")
    if port == 0:
        raise _Refused("webhook URL has port 0")
    return host, port if port is not None else (443 if parts.scheme == "https" else 80)


# --------------------------------------------------------------------------------------------------
# Webhook destinations: which addresses a webhook may reach (see the module docstring)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Names that mean this machine whatever a resolver answers: RFC 6761 reserves ``localhost`` and every
#: name under it; the others are the usual /etc/hosts aliases.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# inet_aton's legacy spellings of an IPv4 address, which getaddrinfo accepts as well: 127.1, 2130706433,
# 0x7f000001, 0177.0.0.1 (octal). Read here as the address they denote, so no check can miss them.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
_PRIVATE_IPV4 = tuple(ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4 address reached


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook must not reach ``address`` (``"a loopback address"``, ...), or None for a public one.

    Refused: unspecified, loopback, link-local, multicast, private (RFC 1918; IPv6 unique-local
    ``fc00::/7`` and the deprecated site-local ``fec0::/10``), reserved, and every other special-purpose
    range that is not globally reachable (shared address space ``100.64.0.0/10``, documentation and
    benchmarking ranges, ...). IPv6 addresses that stand for an IPv4 address are judged as that address:
    IPv4-mapped ones (``::ffff:127.0.0.1``, what the socket really reaches) and NAT64 ones
    (``64:ff9b::/96``, what an IPv6-only network's translator reaches); a 6to4 one (``2002::/16``) must be
    acceptable as itself and as the IPv4 address it embeds.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_refusal(address.ipv4_mapped)
        if address in _NAT64:
            reason = address_refusal(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
            return f"{reason} (NAT64)" if reason is not None else None
        if address.sixtofour is not None:
            reason = address_refusal(address.sixtofour)
            if reason is not None:
                return f"{reason} (6to4)"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address):
        private = any(address in net for net in _PRIVATE_IPV4)
    else:
        private = address in _UNIQUE_LOCAL or address.is_site_local
    if private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a special-purpose address that is not publicly routable"
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as the IP address it spells, or None for a name.

    Besides the standard forms (``192.0.2.1``, ``::1``, ``fe80::1%eth0``) this reads the legacy IPv4
    spellings resolvers accept (``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``), and ignores
    one trailing dot. Never raises.
    """
    text = host[:-1] if host.endswith(".") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def resolve_host(host: str, port: int, *, timeout: float = WEBHOOK_TIMEOUT) -> list[IPAddress]:
    """Every address a connection to ``host`` may use, in the resolver's order, without repeats.

    An IP literal (see :func:`literal_address`) is its own single answer; a name is looked up with
    ``getaddrinfo`` (IPv4 and IPv6), waiting at most ``timeout`` seconds for the answer (and for a free
    resolver thread, see :data:`RESOLVER_THREADS`). While a look-up of the same ``host`` and ``port`` is
    under way, this waits for its answer rather than asking DNS again. A look-up that is given up on
    finishes in its thread and its answer is dropped.

    Raises:
        ResolverBusy: a ``TimeoutError``: no resolver thread became free within ``timeout``, so DNS was not
            asked; the message names the host.
        TimeoutError: no answer within ``timeout``; the message names the host. It is an ``OSError``, so a
            caller that treats every ``OSError`` as "does not resolve now" treats this the same way.
        OSError: the name does not resolve (``socket.gaierror``), or only to non-IP addresses.
        UnicodeError: the name is not a valid IDNA host name (a label longer than 63 characters, ...).
        ValueError: ``timeout`` is not a positive number of seconds (a programming error).
    """
    _check_timeout(timeout)
    return _resolve(host, port, time.monotonic() + timeout)


def _check_timeout(timeout: float) -> None:
    # Waits on locks and sockets refuse values beyond TIMEOUT_MAX (some 292 years), and NaN fails the test.
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= threading.TIMEOUT_MAX:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")


def _resolve(host: str, port: int, deadline: float) -> list[IPAddress]:
    """:func:`resolve_host`, given the ``time.monotonic()`` by which the answer must be there."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    found: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in _RESOLVER.getaddrinfo(host, port, deadline):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    if not found:
        raise OSError(f"{host} has no IPv4 or IPv6 address")
    return found


class ResolverBusy(TimeoutError):
    """A host name was not looked up: every resolver thread (:data:`RESOLVER_THREADS`) stayed busy with
    other hosts until the caller's time ran out. DNS was not asked, so this says nothing about the host;
    it is a ``TimeoutError`` (and so an ``OSError``) for callers that need not tell the difference."""


@dataclass
class _Lookup:
    """One ``getaddrinfo`` call in its thread; ``done`` is set once ``answer`` or ``error`` is."""

    host: str
    port: int
    done: threading.Event = field(default_factory=threading.Event)
    answer: list[tuple[Any, ...]] = field(default_factory=list)
    error: Exception | None = None


class _ResolverThreads:
    """Runs ``socket.getaddrinfo`` in threads of its own, at most ``size`` at once and at most one per
    (host, port), so that callers can stop waiting for it.

    A thread cannot cancel ``getaddrinfo``: one whose look-up hangs keeps its place until the system
    resolver gives up. Callers asking for a (host, port) already being looked up wait for that look-up
    (each within its own time limit) instead of taking another place, so however many deliveries to a
    host whose DNS hangs are waiting, they tie up one thread, and the other places stay for other hosts.
    A new thread per look-up rather than a ``concurrent.futures.ThreadPoolExecutor``: an executor queues
    work without limit and keeps idle workers alive for good, while here a caller that finds every place
    taken waits only within its own time limit, and no thread outlives its look-up. Answers are not
    cached: a look-up that has finished is forgotten, and the next caller asks DNS again.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # Guards _running; notified whenever a look-up ends (its place is free again).
        self._changed = threading.Condition()
        self._running: dict[tuple[str, int], _Lookup] = {}

    def getaddrinfo(self, host: str, port: int, deadline: float) -> list[tuple[Any, ...]]:
        """``socket.getaddrinfo(host, port, type=SOCK_STREAM)``, waited for until ``deadline``
        (a ``time.monotonic()`` value); the answer of a look-up of ``host`` and ``port`` already under way
        when there is one.

        Raises:
            ResolverBusy: no free thread by ``deadline`` (nothing was asked of DNS).
            TimeoutError: no answer by ``deadline``.
            OSError: a thread could not be started.
            Whatever ``getaddrinfo`` raised (``socket.gaierror``, ``UnicodeError``, ...).
        """
        lookup = self._join_or_start(host, port, deadline)
        if not lookup.done.wait(_until(deadline)):
            raise TimeoutError(f"no answer from DNS for {host} in time")
        if lookup.error is not None:
            raise _another(lookup.error)
        return list(lookup.answer)  # a list of its own for each caller sharing the look-up

    def _join_or_start(self, host: str, port: int, deadline: float) -> _Lookup:
        """The look-up of ``host`` and ``port`` under way, or a new one in a place that is free by ``deadline``.

        Raises:
            ResolverBusy: every place stayed taken until ``deadline``.
            OSError: a thread could not be started.
        """
        key = (host, port)
        with self._changed:
            while True:
                lookup = self._running.get(key)
                if lookup is not None:
                    return lookup
                if len(self._running) < self.size:
                    break
                remaining = _until(deadline)
                if remaining <= 0:
                    raise ResolverBusy(
                        f"{host} was not looked up: all {self.size} resolver threads are waiting for DNS")
                self._changed.wait(remaining)
            lookup = self._running[key] = _Lookup(host, port)
            try:
                # Started under the lock: the thread takes it only once its look-up is over.
                threading.Thread(target=self._run, args=(lookup,), name=f"resolve {host}", daemon=True).start()
            except RuntimeError as exc:
                # The interpreter cannot start another thread (a resource limit): a transient condition.
                del self._running[key]
                raise OSError(f"cannot look up {host}: {exc}") from None
            return lookup

    def _run(self, lookup: _Lookup) -> None:
        try:
            # Looked up on the module at call time, so tests can stand in for the system resolver.
            lookup.answer = socket.getaddrinfo(lookup.host, lookup.port, type=socket.SOCK_STREAM)
        except Exception as exc:  # handed to the callers, which raise it if they are still waiting
            lookup.error = exc
        finally:
            with self._changed:
                del self._running[(lookup.host, lookup.port)]
                lookup.done.set()
                self._changed.notify_all()


def _another(error: Exception) -> Exception:
    """``error`` to raise once more: a copy with the same traceback, so that callers sharing one look-up
    never raise the same exception object in two threads at once (raising writes to it); ``error`` itself
    when it cannot be copied."""
    try:
        fresh = copy.copy(error)
    except Exception:
        return error
    return fresh.with_traceback(error.__traceback__)


_RESOLVER = _ResolverThreads(RESOLVER_THREADS)


def _until(deadline: float) -> float:
    """Seconds from now to ``deadline`` (a ``time.monotonic()`` value), never negative: what lock and event
    waits accept."""
    return max(0.0, deadline - time.monotonic())


def _destination_refusal(host: str, addresses: Sequence[IPAddress]) -> str | None:
    """Why ``host``, resolved to ``addresses``, is no webhook destination unless private networks are allowed."""
    name = host.rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return f"host {host} names this machine"
    literal = literal_address(host) is not None
    for address in addresses:
        reason = address_refusal(address)
        if reason is not None:
            spelled = str(address) == host
            if literal:
                return f"host {host} is {reason}" if spelled else f"host {host} is {address}, {reason}"
            return f"host {host} resolves to {address}, {reason}"
    return None


def webhook_target_problem(url: str, *, allow_hosts: Callable[[str], bool] | None = None,
                           allow_private: bool = False, resolve: bool = True, timeout: float = WEBHOOK_TIMEOUT) -> str | None:
    """Why ``url`` cannot be a webhook destination, or None: for checking a URL when it is saved.

    The rules of :func:`post_webhook`: an absolute http(s) URL with a host, without credentials, ASCII
    without spaces; a host ``allow_hosts`` accepts; and unless ``allow_private``, neither a name of this
    machine nor an address outside the public internet (see :func:`address_refusal`), whether written in
    the URL or, with ``resolve``, among the addresses the name resolves to now. A name that does not
    resolve now passes: DNS may be down or the receiver not set up yet, and :func:`post_webhook` checks
    again before every delivery, on the addresses it then connects to. So does a name that does not
    resolve within ``timeout`` seconds, the longest this waits for DNS (see :func:`resolve_host`).

    Raises:
        ValueError: ``timeout`` is not a positive number of seconds (a programming error).
        Anything ``allow_hosts`` raises is propagated; nothing else is raised.
    """
    _check_timeout(timeout)
    try:
        host, port = _check_webhook_url(url)
    except _Refused as exc:
        return str(exc)
    if allow_hosts is not None and not allow_hosts(host):
        return f"host {host} is not allowed"
    if allow_private:
        return None
    addresses: list[IPAddress] = []
    if _destination_refusal(host, ()) is None:  # a name of this machine is refused without a look-up
        try:
            addresses = resolve_host(host, port, timeout=timeout) if resolve else [
                a for a in (literal_address(host),) if a is not None]
        except (OSError, UnicodeError):
            # Not resolving now, or not in time (TimeoutError is an OSError): left to the deliveries' checks.
            pass
    refusal = _destination_refusal(host, addresses)
    return f"{refusal}; webhooks may not reach private networks" if refusal else None


class _Deadline:
    """The end of one webhook attempt (or e-mail), and a watchdog that shuts its connection down when the end comes.

    Socket timeouts bound each read or write, not their sum: a receiver that answers a byte at a time
    would keep the attempt going for as long as it liked. The watchdog (a timer thread, started once a
    connection is open) shuts down a duplicate of the connection's socket: shutdown acts on the
    connection, not on one descriptor, so a read or write blocked in the delivering thread (a TLS one
    too) returns at once. The duplicate is the watchdog's own until :meth:`stop` closes it under the same
    lock, so the watchdog never touches a descriptor that http.client closed and the system reused.
    """

    def __init__(self, at: float, name: str = "webhook deadline") -> None:
        self.at = at  # a time.monotonic() value
        self.cut = False  # whether the watchdog shut a connection down
        self.name = name  # of the timer thread
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        """Seconds left, negative once the deadline has passed."""
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down at the deadline, unless :meth:`stop` comes first.

        Raises:
            OSError: the socket could not be duplicated (out of descriptors).
        """
        with self._lock:
            # a duplicate of the descriptor, not sock.dup(): a TLS socket cannot be duplicated, its descriptor can
            duplicate = os.dup(sock.fileno())
            try:
                self._watched.append(socket.socket(sock.family, sock.type, sock.proto, duplicate))
            except BaseException:
                os.close(duplicate)
                raise
            if self._timer is None:
                self._timer = threading.Timer(_until(self.at), self._cut)
                self._timer.name = self.name
                self._timer.daemon = True
                self._timer.start()

    def _cut(self) -> None:
        with self._lock:
            if self._watched:
                self.cut = True
            for sock in self._watched:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # the peer closed it already

    def stop(self) -> None:
        """End the watch: no shutdown after this returns. Never raises."""
        with self._lock:
            timer, watched = self._timer, self._watched
            self._timer, self._watched = None, []
            for sock in watched:
                sock.close()
        if timer is not None:
            timer.cancel()
            timer.join()


def _connect_any(addresses: Sequence[IPAddress], port: int, deadline: _Deadline, source_address: Any) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that accepts one on ``port`` before ``deadline``; never
    asks DNS. Each try may take what is left of the time; the socket's timeout is what is left once it is
    open, and ``deadline`` watches the connection from then on.

    Raises:
        OSError: the last address's failure (every one failed); TimeoutError when the time ran out.
    """
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError(f"timed out before connecting to {address}")
        try:
            sock = socket.create_connection((str(address), port), remaining, source_address)
        except OSError as exc:
            failure = exc
            continue
        try:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise TimeoutError(f"timed out connecting to {address}")
            sock.settimeout(remaining)
            deadline.watch(sock)
        except OSError:
            sock.close()
            raise
        return sock
    raise failure


def _pinned(connection_class: type[http.client.HTTPConnection], addresses: Sequence[IPAddress],
            deadline: _Deadline) -> Any:
    """A factory of ``connection_class`` connections whose sockets go to ``addresses`` only, within ``deadline``.

    The connection keeps the URL's host name: the Host header, TLS server name and certificate check use
    it. Only the socket is opened differently, through ``_create_connection``, the hook http.client opens
    every socket with (HTTPS wraps what it returns), so nothing resolves the name a second time. The
    timeout http.client passes is not used: the deadline decides (see :func:`_connect_any`).
    """
    pinned = tuple(addresses)

    def create_connection(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        return _connect_any(pinned, address[1], deadline, source_address)

    def factory(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        connection = connection_class(host, **kwargs)
        connection._create_connection = create_connection  # type: ignore[attr-defined]
        return connection

    return factory


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, addresses: Sequence[IPAddress], deadline: _Deadline) -> None:
        super().__init__()
        self._addresses = addresses
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(http.client.HTTPConnection, self._addresses, self._deadline), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, addresses: Sequence[IPAddress], deadline: _Deadline, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._addresses = addresses
        self._deadline = deadline
        self._tls = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(http.client.HTTPSConnection, self._addresses, self._deadline), req,
                            context=self._tls)


def _webhook_opener(addresses: Sequence[IPAddress], deadline: _Deadline,
                    ssl_context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    # Deliberately bare: no ProxyHandler (the process environment must not reroute deliveries, and the
    # host the caller approved is the host we connect to), no redirect handler (a 3xx must reach us, not be
    # followed to a host nobody checked), no error processor (every status comes back as a response, not
    # an exception) and no file:, ftp: or data: handlers. Connections go to ``addresses`` only.
    opener = urllib.request.OpenerDirector()
    opener.add_handler(_PinnedHTTPHandler(addresses, deadline))
    opener.add_handler(_PinnedHTTPSHandler(addresses, deadline, ssl_context or _default_tls()))
    return opener


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The system's default TLS settings and CA store, loaded once: building a context reads every
    CA certificate, and the sweeper delivers many messages."""
    return ssl.create_default_context()


def post_webhook(url: str, secret: str, event_id: str, event_type: str, payload: Mapping[str, Any], *, now: int,
                 timeout: float = WEBHOOK_TIMEOUT, allow_hosts: Callable[[str], bool] | None = None, allow_private: bool = False,
                 ssl_context: ssl.SSLContext | None = None) -> DeliveryResult:
    """POST ``payload`` as canonical JSON (:func:`canonical_json`) to ``url``, signed with ``secret``.

    Headers: ``Content-Type: application/json``, ``X-Processdesk-Event: <event_type>``,
    ``X-Processdesk-Delivery: <event_id>`` (keep it stable across retries: receivers de-duplicate on it) and
    ``X-Processdesk-Signature: t=<now>,v1=<hex>`` (re-signed with the current ``now`` on every attempt, so
    a retry hours later is not rejected as stale). urllib sends header names capitalised its own way
    (``X-processdesk-delivery``); HTTP header names are case-insensitive.

    ``allow_hosts`` is called with the URL's lower-case host name (IPv6 without brackets) before anything
    is sent; False refuses the delivery permanently. Then the name is resolved, once: unless
    ``allow_private``, a name of this machine or any address outside the public internet among the answers
    (see :func:`address_refusal`) refuses the delivery permanently, and the connection goes only to the
    addresses that were checked (see the module docstring), while the Host header, TLS server name and
    certificate check use the name. ``ssl_context`` verifies HTTPS servers (default: the system's trusted
    CAs with host name checking). Redirects are never followed and environment proxies are not used.
    ``timeout`` bounds the whole attempt: resolving the name, connecting, TLS, sending the request and
    reading the response all happen within ``timeout`` seconds of the call, or the attempt is given up
    (see the module docstring); a response whose status arrived in time counts even if its body was cut
    short.

    Outcomes: 2xx ok; 3xx, and 4xx other than 408 and 429, permanent; 408, 429, 5xx and any other status
    transient; network errors, timeouts (a name not resolved in time included) and names that do not
    resolve transient; no resolver thread free in time (:class:`ResolverBusy`: other hosts' look-ups held
    them all) not attempted, ``attempted`` False, with nothing sent and DNS not asked; an unusable URL
    (non-http(s) scheme, credentials, no host), a refused host or address, an empty secret, an event
    id/type that is not printable ASCII, or a payload that is not JSON-serialisable is permanent and
    nothing is sent. At most 64 KiB of the response body is read; the start of it is quoted in
    ``detail`` for failures.

    Raises:
        ValueError: ``now`` is not a non-negative int or ``timeout`` is not a positive number of seconds
            (programming errors).
        Anything ``allow_hosts`` raises is propagated.
    """
    started = time.monotonic()
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise ValueError(f"now must be a non-negative int (Unix seconds), got {now!r}")
    _check_timeout(timeout)
    deadline = _Deadline(started + timeout)

    def result(ok: bool, permanent: bool, detail: str, status: int | None = None,
               attempted: bool = True) -> DeliveryResult:
        return DeliveryResult(ok=ok, permanent=permanent, detail=_clean_detail(detail), status=status,
                              duration_ms=(time.monotonic() - started) * 1000.0, attempted=attempted)

    try:
        host, port = _check_webhook_url(url)
        for label, value in (("event_id", event_id), ("event_type", event_type)):
            if not isinstance(value, str) or not _TOKEN.fullmatch(value):
                raise _Refused(f"{label} must be 1-200 printable ASCII characters without spaces")
        if not isinstance(secret, str) or not secret:
            raise _Refused("webhook secret is empty")
        try:
            body = canonical_json(payload)
        except (TypeError, ValueError) as exc:
            raise _Refused(f"payload is not JSON-serialisable: {exc}") from None
    except _Refused as exc:
        return result(False, True, f"not sent: {exc}")
    if allow_hosts is not None and not allow_hosts(host):
        return result(False, True, f"not sent: host {host} is not allowed")
    refusal = None if allow_private else _destination_refusal(host, ())  # a name of this machine: not even looked up
    if refusal is not None:
        return result(False, True, f"not sent: {refusal}; webhooks may not reach private networks")
    try:
        addresses = _resolve(host, port, deadline.at)
    except UnicodeError as exc:
        return result(False, True, f"not sent: host {host} is not a valid host name: {exc}")
    except ResolverBusy as exc:
        # Other hosts' look-ups held every thread: this machine's limit, not this host's fault.
        return result(False, False, f"timed out after {timeout:g} s: {exc}", attempted=False)
    except TimeoutError as exc:
        return result(False, False, f"timed out after {timeout:g} s: {exc}")
    except OSError as exc:
        return result(False, False, f"connection failed: cannot resolve {host}: {exc}")
    if not allow_private:
        refusal = _destination_refusal(host, addresses)
        if refusal is not None:
            return result(False, True, f"not sent: {refusal}; webhooks may not reach private networks")

    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": _USER_AGENT,
        "X-Processdesk-Event": event_type,
        "X-Processdesk-Delivery": event_id,
        "X-Processdesk-Signature": sign_webhook(secret, now, body),
    })
    try:
        # The timeout given here is not used: sockets get what is left of the deadline (see _connect_any).
        with _webhook_opener(addresses, deadline, ssl_context).open(request, timeout=timeout) as response:
            if deadline.cut:
                # http.client takes the end of the stream for the end of the headers, so headers the
                # watchdog cut short would pass for a whole response.
                raise TimeoutError("cut off before the response headers were complete")
            status: int = response.status
            reason = response.reason or ""
            location = response.headers.get("Location", "")
            retry_after = response.headers.get("Retry-After", "")
            try:
                # Bounded: a receiver must not be able to make the sweeper buffer an endless body.
                snippet = response.read(_MAX_RESPONSE_BYTES)
            except (OSError, http.client.HTTPException):
                # The status line already says what happened; a body cut short changes nothing.
                snippet = b""
    except (OSError, http.client.HTTPException) as exc:
        return result(False, False, _exchange_failure(exc, host, timeout, deadline))
    except ValueError as exc:
        # http.client.InvalidURL and friends: something about the URL we did not catch up front.
        return result(False, True, f"not sent: {exc}")
    finally:
        deadline.stop()

    summary = f"HTTP {status} {reason}".rstrip()
    if 200 <= status <= 299:
        return result(True, False, summary, status)
    text = snippet[:200].decode("utf-8", "replace").strip()
    if 300 <= status <= 399:
        # Only scheme and host of the target: a path could carry a token.
        target = urllib.parse.urlsplit(location)
        where = f" to {target.scheme}://{target.netloc}" if target.scheme and target.netloc else ""
        return result(False, True, f"{summary}: redirect{where} not followed; update the webhook URL", status)
    detail = summary
    if retry_after:
        detail += f"; Retry-After: {retry_after}"
    if text:
        detail += f"; body: {text}"
    permanent = 400 <= status <= 499 and status not in (408, 429)
    return result(False, permanent, detail, status)


def _exchange_failure(exc: OSError | http.client.HTTPException, host: str, timeout: float, deadline: _Deadline) -> str:
    """The ``detail`` of a webhook attempt whose HTTP exchange failed with ``exc``."""
    # urllib wraps in URLError what fails before the request is sent: connecting (refused, timed out), TLS
    # (certificate not verified, ...) and sending; what fails later, while waiting for the response, is not.
    sending = isinstance(exc, urllib.error.URLError)
    if deadline.cut or deadline.remaining() <= 0:
        # Whatever the exception says (a reset, an end of file, a TLS error), the deadline caused it.
        phase = f"connecting to {host} or sending the request" if sending else "waiting for the response"
        return f"timed out after {timeout:g} s {phase}"
    if isinstance(exc, urllib.error.URLError):
        return f"connection failed: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s waiting for the response"
    return f"connection failed: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------------
# Retry schedule


def next_attempt_delay(attempt: int, *, base: float = 30.0, factor: float = 2.0, cap: float = 6 * 3600,
                       jitter: float = 0.1, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 = the first attempt) before the next.

    The nominal delay is ``min(cap, base * factor ** (attempt - 1))``; jitter takes a random fraction of at
    most ``jitter`` off it, so the result lies in ``[nominal * (1 - jitter), nominal]`` and never exceeds
    ``cap``. Jitter only subtracts so that messages that failed together (a relay outage) spread out
    instead of all retrying at the same second, even once they reach the cap. With the defaults the
    nominal delays are 30 s, 1 min, 2 min, ... and the sequence grows until the cap; with ``jitter < 1 -
    1/factor`` every delay below the cap is larger than the one before. A seeded ``rng`` makes the result
    deterministic; None uses the ``random`` module.

    Raises:
        ValueError: ``attempt`` < 1 or not an int; ``base`` or ``cap`` negative or not finite; ``factor``
            below 1 or not finite; ``jitter`` outside [0, 1].
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an int >= 1, got {attempt!r}")
    if not (math.isfinite(base) and base >= 0):
        raise ValueError(f"base must be a finite number >= 0, got {base!r}")
    if not (math.isfinite(factor) and factor >= 1):
        raise ValueError(f"factor must be a finite number >= 1, got {factor!r}")
    if not (math.isfinite(cap) and cap >= 0):
        raise ValueError(f"cap must be a finite number >= 0, got {cap!r}")
    if not 0 <= jitter <= 1:
        raise ValueError(f"jitter must be between 0 and 1, got {jitter!r}")
    if base == 0:
        return 0.0
    try:
        nominal = min(cap, base * factor ** (attempt - 1))
    except OverflowError:
        # factor ** attempt beyond float range: far past the cap anyway.
        nominal = cap
    draw = rng.random() if rng is not None else random.random()
    return float(nominal * (1.0 - jitter * draw))


# --------------------------------------------------------------------------------------------------
# Helpers


def _clean_detail(text: str) -> str:
    # Details end up in logs and the UI: server-supplied line breaks must not forge log lines.
    flat = " ".join(_CONTROL.sub(" ", text).split())
    if len(flat) > _MAX_DETAIL_CHARS:
        flat = flat[: _MAX_DETAIL_CHARS - 1] + "…"
    return flat
