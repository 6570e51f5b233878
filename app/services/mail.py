"""The mail gateway: one raw RFC 822 message in, a new incident or a comment out (like RT's rt-mailgate).

``parse_message`` reads the bytes (stdlib ``email`` with ``policy.default``, no database);
``MailService.receive`` decides in the caller's transaction:

* **Duplicates.** Each message is recorded once in ``inbound_mail`` by its Message-ID (the SHA-256
  of its bytes when it has none). A message delivered again is not acted on again: the answer is
  the first delivery's outcome with ``duplicate`` set. Only a message that ``failed`` before is
  tried again. The rows are kept ``RETENTION_INBOUND_MAIL_DAYS`` (app/services/retention.py): a
  message delivered again after its row is purged is taken as a new message.
* **Loops and junk** are ``ignored`` (recorded, nothing created): ``Auto-Submitted`` other than
  ``no`` (vacation replies, other desks' notices), ``X-Autoreply``, ``Precedence: bulk/junk/list``,
  an empty sender (``Return-Path: <>`` or an empty From), a ``MAILER-DAEMON`` sender or a delivery
  report (``multipart/report``), and mail from our own sender address (``SMTP_SENDER``).
* **Who sent it.** The From address, matched without regard to case to the e-mail of exactly one
  active user. Unknown, inactive and ambiguous senders are ``refused`` (recorded, nothing
  created). From is whatever the sending client wrote: the gateway trusts it only because the
  mail server in front of it verified it (SPF, DKIM and DMARC, and refusing mail from outside
  that claims an inside address). Without that check anyone may write as anyone.
* **A reply** (its In-Reply-To or References names the Message-ID of a mail this desk sent about
  a record, or its subject names a record number such as ``[INC-000123]``) becomes the sender's
  comment on that record through ``RecordService.comment``: the API's rules, whoever may comment,
  and what a comment does (a requester's reply resumes an incident waiting on them, or reopens a
  resolved one). Quoted text (``> ...`` lines, from an "On ... wrote:" line or an "Original
  Message" line on) is cut off. A number of a record the sender may not see (or of none) makes
  no reply: such a mail raises a new incident, whether the record exists or not.
* **An approver's answer**: a reply to the mail that asked its sender for an approval
  (``approval.needed``, which carries the task's id) starting with a yes or a no completes that
  task as the sender through ``TaskService.complete`` (``_decision``), the rest of its text the
  comment; its failures (not theirs to decide, a reason the form requires) fail the mail.
* **Anything else** raises a new incident with the sender as its requester, as the API's start
  of ``incident_management`` does (the same start rights and start form): title the subject,
  description the text, impact and urgency ``MAIL_INCIDENT_IMPACT`` / ``MAIL_INCIDENT_URGENCY``.
  A desk agent's forward ("Fwd:") of a user's mail is raised for that user (``_forwarded_for``).
  The sender is told its number (``mail.received``: in-app and by mail, about the record, so a
  reply threads back to it), with up to three published knowledge articles that may answer it.
* **Files** in the message become the record's attachments through ``AttachmentService.attach``
  (its size and count limits). The text is the ``text/plain`` body, else the text of the HTML
  body (without scripts, styles or markup).

When the desk refuses the work itself (a closed record, a file too large, no right to start
incidents, a rejection without its reason) the edge rolls the work back and records the message
as ``failed`` with the reason in a second transaction (``record_failure``; app/mail_gateway.py
runs the two), and a sender who is a user is told so by mail, once per message.
"""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import Clock
from app.errors import NotFound, PayloadTooLarge, PermissionDenied, ProcessdeskError, ValidationFailed
from app.languages import Text
from app.models import HumanTask, InboundMail, OutboxMessage, RecordSequence, TaskStatus, Ticket, User

from . import policy as desk_policy
from .attachments import AttachmentService, size_text
from .forms import BIDI_CONTROLS, decision_fields
from .instances import InstanceService, TaskService
from .knowledge import KnowledgeService
from .notifications import MAIL_RECEIVED_EVENT, NotificationService
from .records import RecordService
from .users import person_named

#: The outcomes recorded in ``inbound_mail``.
CREATED, COMMENTED, DECIDED, REFUSED, IGNORED, FAILED = (
    "created", "commented", "decided", "refused", "ignored", "failed")
OUTCOMES = (CREATED, COMMENTED, DECIDED, REFUSED, IGNORED, FAILED)
#: The first word of a reply to an approval's mail that approves, or rejects (or to a resolved
#: record's mail that confirms it works again, or says it does not), any letter case.
APPROVE_WORDS = frozenset({"approve", "approved", "yes", "confirm", "confirmed", "同意", "批准", "是", "是的", "确认"})
REJECT_WORDS = frozenset({"reject", "rejected", "no", "reopen", "拒绝", "驳回", "否"})
#: The mails whose reply may answer a task they name (``task_id``): an approval's (also one handed
#: to a delegate when its approver's absence starts, app/services/away.py), and a resolved record's
#: asking its requester to confirm.
DECIDED_BY_REPLY = ("approval.needed", "task.delegated", "record.resolved")
#: A reply's first word when it stands alone, ending its line or followed by a punctuation mark
#: ("No." or "No, ..." decide; "No problem" and "No objection" do not), and what follows it (the
#: comment). Han text has no spaces: its run of characters up to a punctuation mark is the word.
_FIRST_WORD = re.compile(
    r"\s*([^\W\d_]+)(?:[ \t]*[.,:;!\-\u2013\u2014\u3001\u3002\uff0c\uff1a\uff1b\uff01]+|[ \t]*(?:\n|$))(.*)", re.DOTALL)
#: The process a new mail starts.
INCIDENT_PROCESS = "incident_management"
#: The incident start form's limits (forms/incident_management.start.json).
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
#: A forwarded mail's subject mark ("Fwd:", "FW:", "转发："), and the line of its text that names
#: whom the forwarded message was from (the first "From:" or "发件人:" line).
FORWARD_MARK = re.compile(r"\s*(?:fwd?|转发)\s*[:：]", re.IGNORECASE)
EMAIL_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
FORWARDED_FROM = re.compile(r"^[ \t>]*(?:from|发件人)\s*[:：][ \t]*(.+)$", re.IGNORECASE | re.MULTILINE)
#: The outbox event of the mail that tells a sender their message was not taken (``_tell_failed``).
MAIL_FAILED_EVENT = "mail.failed"
#: The acknowledgement of a new incident lists at most so many articles, found from its subject
#: and the start of its text (so many characters).
ACKNOWLEDGED_ARTICLES = 3
ACKNOWLEDGE_TEXT = 300
#: A comment made from a mail keeps at most this much of its text.
MAX_COMMENT_TEXT = 20_000
#: What is cut from a text that was too long.
CUT_MARK = "\n[... cut: the e-mail was longer]"
NO_SUBJECT = "(no subject)"
NO_TEXT = "(the e-mail had no text)"
#: Message-IDs of In-Reply-To and References looked up (the newest ones).
MAX_REFERENCES = 50
#: MIME parts of one message / nesting of multiparts; beyond that the message is refused as malformed.
MAX_PARTS = 500
MAX_DEPTH = 20
#: The Message-IDs this desk gives its mails (app/services/notifications.py, ``deliver``):
#: the outbox row's ``event_id`` at ``processdesk``.
OUR_MESSAGE_ID = re.compile(r"([0-9a-f]{32})@processdesk")
_MSG_ID_TOKEN = re.compile(r"<([^<>\s]{1,998})>")
_HEADER_START = re.compile(rb"[!-9;-~]{1,200}:")
#: Characters no stored text holds (as the API's BAD_TEXT), bidirectional controls among them.
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff" + "".join(BIDI_CONTROLS) + "]")
_QUOTE_HEAD = re.compile(r"^\s*(On\s.{0,300}\swrote:|-{2,}\s*Original Message\s*-{2,})\s*$", re.IGNORECASE)
#: Outlook quotes the message it answers under a block of headers: a "From:" line, then a "Sent:"
#: (or "Date:") line.
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|发件人)\s*\*?\s*[:：]", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*\*?(Sent|Date|发送时间)\s*\*?\s*[:：]", re.IGNORECASE)
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})


@dataclass(frozen=True)
class MailFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ParsedMail:
    """What the gateway reads from one message (``parse_message``)."""

    key: str                       # Message-ID without brackets, or sha256:<hex>
    size: int
    sender: str | None             # the From address, lower case; None when empty
    sender_count: int              # addresses in From
    subject: str
    text: str
    in_reply_to: tuple[str, ...]   # In-Reply-To then References (newest first), without brackets
    files: tuple[MailFile, ...]
    junk: str | None               # why the message is ignored, from its headers alone


@dataclass(frozen=True)
class MailOutcome:
    """What became of one message; ``status`` is the HTTP status of a failure's error (403, 404,
    413, 422), 0 otherwise."""

    outcome: str
    number: str | None = None
    reason: str | None = None
    duplicate: bool = False
    message_id: str | None = None
    status: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "number": self.number, "reason": self.reason, "duplicate": self.duplicate}


def malformed(reason: str) -> ValidationFailed:
    return ValidationFailed(f"not a readable e-mail message: {reason}", code="malformed_message",
                            details={"fields": {"message": [reason]}})


# -- parsing (no database) ---------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """``value`` with line endings as ``\\n`` and without characters no stored text holds."""
    return _BAD_CHARS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def one_line(value: str) -> str:
    """A header's text as one line: no control characters, whitespace runs as one space (a subject
    that decodes to a line break cannot add a header anywhere it is written)."""
    return " ".join(_BAD_CHARS.sub(" ", value).split())


def _header(msg: Message, name: str) -> str:
    """The decoded value of header ``name`` ('' when absent or unreadable)."""
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a header the parser chokes on is read raw below
        value = None
        for key, raw in msg.raw_items():
            if key.lower() == name.lower():
                value = raw
                break
    return "" if value is None else str(value)


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes of a text part as text: its declared charset when Python knows it as a text encoding
    (errors replaced), else UTF-8, else Windows-1252."""
    if charset:
        try:
            if codecs.lookup(charset)._is_text_encoding:
                return data.decode(charset, errors="replace")
        except (LookupError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001 - an unreadable charset parameter: guess as without one
        charset = None
    return clean_text(_decode(payload, charset))


class _HtmlText(HTMLParser):
    """The visible text of an HTML body: no scripts, styles, head or templates; block elements
    and ``<br>`` as line breaks; entities decoded (``convert_charrefs``)."""

    SKIPPED = frozenset({"script", "style", "head", "template", "title", "noscript"})
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
                        "table", "ul", "ol", "hr", "section", "article", "header", "footer", "dd", "dt"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The text a reader sees in ``html`` (``_HtmlText``), lines trimmed, at most one blank line in a row."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; whatever it still refuses ends the text there
        pass
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_quoted(text: str) -> str:
    """``text`` without what it quotes: lines starting with ``>``, and everything from an
    "On ... wrote:" or "-----Original Message-----" line on (also an "On ..." line that wraps
    before "wrote:"), or from Outlook's "From: ..." line followed by a "Sent: ..." one. The text
    itself when nothing of it would be left."""
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        joined = f"{line} {lines[index + 1]}" if index + 1 < len(lines) else line
        if _QUOTE_HEAD.match(line) or (line.lstrip().startswith("On ") and _QUOTE_HEAD.match(joined)):
            break
        if _OUTLOOK_FROM.match(line) and index + 1 < len(lines) and _OUTLOOK_SENT.match(lines[index + 1]):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    result = "\n".join(kept).strip()
    return result or text.strip()


def _our_references(mail: ParsedMail) -> list[str]:
    """The event ids of the mails of ours ``mail`` answers (In-Reply-To first, then References)."""
    return [m.group(1) for ref in mail.in_reply_to[:MAX_REFERENCES] if (m := OUR_MESSAGE_ID.fullmatch(ref))]


def _leaves(part: Message, depth: int = 0) -> Iterator[Message]:
    if depth > MAX_DEPTH:
        raise malformed(f"MIME parts nested more than {MAX_DEPTH} deep")
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _leaves(sub, depth + 1)
    else:
        yield part


def _file_of(part: Message, index: int) -> MailFile | None:
    """The file a non-body part holds, None for an empty one or a text part without a name (an
    alternative of the body)."""
    try:
        filename = part.get_filename()
    except Exception:  # noqa: BLE001 - an unreadable name parameter: a made-up name below
        filename = None
    content_type = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            data = inner[0].as_bytes(policy=policy.compat32)
        else:
            data = str(inner).encode("utf-8", errors="replace")
        return MailFile(filename or f"message-{index}.eml", content_type, data) if data else None
    if not filename and disposition != "attachment" and part.get_content_maintype() == "text":
        return None
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        return None
    if not filename:
        filename = f"attachment-{index}{mimetypes.guess_extension(content_type) or '.bin'}"
    return MailFile(filename, content_type, payload)


def _message_ids(value: str) -> list[str]:
    return [match.group(1) for match in _MSG_ID_TOKEN.finditer(value)]


def _junk(msg: Message, sender: str | None, sender_count: int) -> str | None:
    auto = _header(msg, "Auto-Submitted").split(";", 1)[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if _header(msg, "X-Autoreply").strip() or _header(msg, "X-Autorespond").strip():
        return "an automatic reply (X-Autoreply)"
    precedence = _header(msg, "Precedence").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    if _header(msg, "Return-Path").strip().replace(" ", "") == "<>":
        return "empty sender (Return-Path: <>): a bounce"
    if msg.get_content_type() == "multipart/report":
        return "a delivery or disposition report"
    if sender_count == 0:
        return "empty sender"
    if sender is not None and sender.split("@", 1)[0] in ("mailer-daemon", "mailer_daemon"):
        return "a bounce from MAILER-DAEMON"
    return None


def _sender(msg: Message) -> tuple[str | None, int]:
    """The From address in lower case (None when From holds none), and how many From names."""
    header = msg.get("From") if "From" in msg else None
    try:
        addresses: tuple[Address, ...] = tuple(getattr(header, "addresses", ()))
        found = [a.addr_spec for a in addresses if a.username]
    except Exception:  # noqa: BLE001 - a From the header parser cannot read: the plain parser's reading
        found = [addr for _name, addr in getaddresses([_header(msg, "From")]) if "@" in addr]
    found = [one_line(addr).lower() for addr in found if addr and "@" in addr]
    return (found[0] if len(found) == 1 else None), len(found)


def parse_message(raw: bytes, max_bytes: int) -> ParsedMail:
    """Read one raw message.

    Raises PayloadTooLarge (naming ``message``) above ``max_bytes``; ValidationFailed
    (``malformed_message``, naming ``message``) for an empty message, one without a header
    section or a From header, or MIME structure the parser cannot take."""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the message is larger than {max_bytes:,} bytes ({size_text(max_bytes)})",
                              details={"fields": {"message": [f"at most {max_bytes} bytes"]}, "limit_bytes": max_bytes})
    data = raw
    if data.startswith(b"From "):  # an mbox envelope line (Postfix pipe flag F): not a header
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    if not data.strip():
        raise malformed("the message is empty")
    if not _HEADER_START.match(data):
        raise malformed("it does not start with a header field")
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
        if "From" not in msg:
            raise malformed("it has no From header")
        sender, sender_count = _sender(msg)
        leaves = []
        for leaf in _leaves(msg):
            leaves.append(leaf)
            if len(leaves) > MAX_PARTS:
                raise malformed(f"more than {MAX_PARTS} MIME parts")
        body = msg.get_body(preferencelist=("plain", "html")) if isinstance(msg, EmailMessage) else None
        text = ""
        if body is not None:
            text = _part_text(body)
            if body.get_content_subtype() == "html":
                text = html_text(text)
        elif not msg.is_multipart() and msg.get_content_maintype() == "text":
            text = _part_text(msg)
        files = tuple(found for index, leaf in enumerate(leaves, 1)
                      if leaf is not body and (found := _file_of(leaf, index)) is not None)
        message_id = next(iter(_message_ids(_header(msg, "Message-ID"))), "")
        key = message_id if message_id and len(message_id) <= 255 else "sha256:" + hashlib.sha256(raw).hexdigest()
        replied = _message_ids(_header(msg, "In-Reply-To")) + list(reversed(_message_ids(_header(msg, "References"))))
        return ParsedMail(key=clean_text(key), size=len(raw), sender=sender, sender_count=sender_count,
                          subject=one_line(_header(msg, "Subject")), text=text.strip(), in_reply_to=tuple(replied),
                          files=files, junk=_junk(msg, sender, sender_count))
    except ProcessdeskError:
        raise
    except (RecursionError, MemoryError):
        raise malformed("its MIME structure is nested too deeply") from None
    except Exception as err:  # noqa: BLE001 - the stdlib parser's many failure types all mean the same here
        raise malformed(f"{type(err).__name__}: {err}"[:300]) from None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - len(CUT_MARK)].rstrip() + CUT_MARK


# -- deciding (the caller's transaction) -------------------------------------------------------------


class MailService:
    """Take parsed messages: record each once, then create, comment, refuse or ignore (module docstring)."""

    def __init__(self, session: Session, clock: Clock, records: RecordService, attachments: AttachmentService,
                 instances: InstanceService, config: Mapping[str, Any], *,
                 notifications: NotificationService, knowledge: KnowledgeService, tasks: TaskService) -> None:
        self.session = session
        self.clock = clock
        self.records = records
        self.attachments = attachments
        self.instances = instances
        self.config = config
        self.notifications = notifications
        self.knowledge = knowledge
        self.tasks = tasks

    @property
    def max_bytes(self) -> int:
        return int(self.config["MAIL_MAX_BYTES"])

    def parse(self, raw: bytes) -> ParsedMail:
        return parse_message(raw, self.max_bytes)

    def receive(self, mail: ParsedMail) -> MailOutcome:
        """Act on ``mail`` once (module docstring) and record what became of it.

        The message's ``inbound_mail`` row is written (or, for a message that failed before,
        locked) first: the same message delivered twice at once is acted on by one delivery while
        the other waits for it, then answers as a duplicate.

        Raises what the record services raise when the desk refuses the work (PermissionDenied,
        NotFound, ValidationFailed, PayloadTooLarge): the caller rolls back and calls
        ``record_failure``."""
        row = self._earlier(mail)
        if row is None:
            row = InboundMail(message_id=mail.key, outcome=FAILED, reason="being taken", size=mail.size,
                              received_at=self.clock.now())
            try:
                with self.session.begin_nested():
                    self.session.add(row)
                    self.session.flush()
            except IntegrityError:
                # a delivery of the same message at the same moment wrote it first and is done now
                row = self._earlier(mail)
                if row is None:
                    raise
        elif row.outcome == FAILED:
            row.retried_at = self.clock.now()
        if row.outcome != FAILED:
            return MailOutcome(row.outcome, row.number, row.reason, duplicate=True, message_id=row.message_id)
        outcome = self._act(mail)
        self._record(mail, row, outcome)
        return outcome

    def record_failure(self, mail: ParsedMail, error: ProcessdeskError) -> MailOutcome:
        """Record ``mail`` as ``failed`` with ``error``'s message (after ``receive`` raised it and
        its work was rolled back). A delivery of it that succeeded meanwhile stays as it is."""
        earlier = self._earlier(mail)
        if earlier is not None and earlier.outcome != FAILED:
            return MailOutcome(earlier.outcome, earlier.number, earlier.reason, duplicate=True, message_id=earlier.message_id)
        number = error.details.get("number") if isinstance(error.details.get("number"), str) else None
        outcome = MailOutcome(FAILED, number, error.message[:2000], message_id=mail.key, status=error.status)
        if earlier is not None:
            earlier.retried_at = self.clock.now()
        self._record(mail, earlier, outcome)
        if earlier is None and mail.sender is not None:  # its first failure: the sender is told once
            sender, _why = self._user(mail.sender)
            if sender is not None:
                self._tell_failed(sender, mail, outcome)
        return outcome

    def _tell_failed(self, user: User, mail: ParsedMail, outcome: MailOutcome) -> None:
        """Tell ``user`` by mail that the desk did not take their message, and why: the inbound
        route answers the mail server 200 whatever became of the message, so nothing bounces, and
        an approver whose "Reject" lacked its reason would otherwise never learn it was not taken."""
        number = outcome.number
        ticket = self.session.scalar(select(Ticket).where(Ticket.number == number)) if number else None
        link = self.notifications.link(ticket) if ticket is not None and self.records.may_see(user, ticket) \
            else self.notifications.link()
        said = {"subject": mail.subject or NO_SUBJECT, "reason": outcome.reason or "", "link": link}
        self.notifications.email_user(
            user, MAIL_FAILED_EVENT, Text("Your e-mail was not taken: %(subject)s", **said),
            Text("The service desk could not take your e-mail “%(subject)s”: %(reason)s\n\nNothing was changed. "
                 "Put it right and send it again, or answer on the desk's pages: %(link)s", **said))

    def recent(self, user: User, page: int, per_page: int) -> tuple[list[InboundMail], int]:
        """The messages received, newest first (admins only: PermissionDenied, audited, for others)."""
        if not user.has_role("admin"):
            self.records.audit.refuse(user, "read_inbound_mail", reason="admins only")
            raise PermissionDenied("only admins read the inbound mail log")
        total = self.session.scalar(select(func.count()).select_from(InboundMail)) or 0
        rows = self.session.scalars(select(InboundMail).order_by(InboundMail.received_at.desc(), InboundMail.id.desc())
                                    .limit(per_page).offset((page - 1) * per_page))
        return list(rows), int(total)

    # -- inside receive ---------------------------------------------------------------------------------

    def _earlier(self, mail: ParsedMail) -> InboundMail | None:
        """The row of an earlier delivery of ``mail``, locked (PostgreSQL: a delivery at the same
        moment waits here, then reads what the first one made of it)."""
        return self.session.scalar(select(InboundMail).where(InboundMail.message_id == mail.key)
                                   .with_for_update().execution_options(populate_existing=True))

    def _record(self, mail: ParsedMail, earlier: InboundMail | None, outcome: MailOutcome) -> None:
        row = earlier or InboundMail(message_id=mail.key, received_at=self.clock.now())
        row.outcome, row.number, row.reason = outcome.outcome, outcome.number, outcome.reason
        row.sender, row.subject, row.size = (mail.sender or "")[:255] or None, mail.subject[:255] or None, mail.size
        self.session.add(row)
        self.session.flush()

    def _act(self, mail: ParsedMail) -> MailOutcome:
        key = mail.key
        own = {addr.strip().lower() for _name, addr in getaddresses([str(self.config.get("SMTP_SENDER") or "")]) if addr}
        if mail.junk is not None:
            return MailOutcome(IGNORED, reason=mail.junk, message_id=key)
        if mail.sender is not None and mail.sender in own:
            return MailOutcome(IGNORED, reason="sent by this desk's own address", message_id=key)
        if mail.sender is None:
            return MailOutcome(REFUSED, reason=f"From names {mail.sender_count} addresses: whose is it?", message_id=key)
        user, why = self._user(mail.sender)
        if user is None:
            return MailOutcome(REFUSED, reason=why, message_id=key)
        decided = self._decision(user, mail)
        if decided is not None:
            return decided
        number = self._replied_record(user, mail)
        if number is not None:
            return self._comment(user, number, mail)
        return self._new_incident(user, mail)

    def _user(self, address: str) -> tuple[User | None, str]:
        found = list(self.session.scalars(select(User).where(func.lower(User.email) == address).limit(3)))
        active = [u for u in found if u.active]
        if len(active) == 1:
            return active[0], ""
        if len(active) > 1:
            return None, f"{address} is the address of more than one active user"
        if found:
            return None, f"{address} is the address of an inactive user"
        return None, f"{address} is no user's address"

    def _decision(self, user: User, mail: ParsedMail) -> MailOutcome | None:
        """A reply to the mail that asked ``user`` for an approval (``approval.needed``), or to
        confirm that their resolved record works again (``record.resolved``), whose text starts
        with a yes or a no (``APPROVE_WORDS``, ``REJECT_WORDS``): the task the mail names
        completed as ``user`` with that decision and the rest of the text as its comment
        (``decision_fields`` of its form), by ``TaskService.complete``, whose rules all apply (who
        may, a task still waiting, the form's: a rejection may need a reason). None for any other
        mail, which goes on as a comment or a new incident."""
        ours = _our_references(mail)
        if not ours:
            return None
        named = {row.event_id: row.payload["task_id"] for row in self.session.execute(
            select(OutboxMessage.event_id, OutboxMessage.payload).where(
                OutboxMessage.event_id.in_(ours), OutboxMessage.channel == "email",
                OutboxMessage.event_type.in_(DECIDED_BY_REPLY)))
            if isinstance((row.payload or {}).get("task_id"), int)}
        asked = [named[event_id] for event_id in ours if event_id in named]  # In-Reply-To first
        said = _FIRST_WORD.match(strip_quoted(mail.text))
        if not asked or said is None:
            return None
        word = said.group(1).lower()
        if word not in APPROVE_WORDS and word not in REJECT_WORDS:
            return None
        task = self.session.get(HumanTask, asked[0])
        if task is None or task.state != TaskStatus.READY:
            return None  # decided already (by someone else, or on the page): the reply is a comment
        form = task.instance.definition.forms.get(task.form) if task.form else None
        fields = decision_fields(form)
        if fields is None:
            return None
        decision, comment_field = fields
        approved = word in APPROVE_WORDS
        data: dict[str, Any] = {decision: approved}
        longest = ((form or {}).get("properties", {}).get(comment_field) or {}).get("maxLength") if comment_field else None
        comment = _cut(said.group(2).strip(), longest if isinstance(longest, int) and longest > 0 else MAX_COMMENT_TEXT)
        if comment and comment_field is not None:
            data[comment_field] = comment
        ticket = self.records.for_instance(task.instance_id)
        number = ticket.number if ticket is not None else None
        try:
            self.tasks.complete(user, task.id, data)
        except ProcessdeskError as err:
            refused = err.details.get("fields") if isinstance(err, ValidationFailed) else None
            if isinstance(refused, Mapping) and refused:  # which answer the form refused, for the log
                err.message = f"{err.message}: " + "; ".join(
                    f"{name} {', '.join(str(m) for m in messages)}" for name, messages in refused.items())
            err.details = {**err.details, **({"number": number} if number else {})}
            raise
        return MailOutcome(DECIDED, number, f"{'yes' if approved else 'no'} from {user.username} "
                                            f"({task.bpmn_id}, task {task.id})", message_id=mail.key)

    def _replied_record(self, user: User, mail: ParsedMail) -> str | None:
        """The number of the record ``mail`` answers: one a mail of ours it replies to was about,
        else one its subject names; only a record ``user`` may see. None when it answers none: a
        record the sender may not see is as good as none (their mail raises a new incident either
        way, so that the answer does not tell them whether it exists)."""
        candidates: list[str] = []
        ours = _our_references(mail)
        if ours:
            rows = {row.event_id: row for row in self.session.execute(
                select(OutboxMessage.event_id, OutboxMessage.subject, OutboxMessage.payload)
                .where(OutboxMessage.event_id.in_(ours), OutboxMessage.channel == "email"))}
            for event_id in ours:
                row = rows.get(event_id)
                number = ((row.payload or {}).get("record") or self._number_in(row.subject)) if row is not None else None
                if isinstance(number, str) and number:
                    candidates.append(number.upper())
        if (number := self._number_in(mail.subject)) is not None:
            candidates.append(number)
        for number in dict.fromkeys(candidates):
            ticket = self.session.scalar(select(Ticket).where(Ticket.number == number))
            if ticket is not None and self.records.may_see(user, ticket):
                return number
        return None

    def _number_in(self, text: str) -> str | None:
        prefixes = sorted({re.escape(p) for p in self.session.scalars(select(RecordSequence.prefix)) if p})
        if not prefixes:
            return None
        match = re.search(rf"(?<![A-Za-z0-9])({'|'.join(prefixes)})-([0-9]{{6,12}})(?![0-9])", text, re.IGNORECASE)
        return f"{match.group(1).upper()}-{match.group(2)}" if match else None

    def _comment(self, user: User, number: str, mail: ParsedMail) -> MailOutcome:
        text = strip_quoted(mail.text)
        if not text and mail.files:
            text = "Attached by e-mail: " + ", ".join(f.filename for f in mail.files)
        try:
            comment = self.records.comment(user, number, _cut(text, MAX_COMMENT_TEXT))
            for item in mail.files:
                self._attach(user, number, item)
        except ProcessdeskError as err:
            err.details = {**err.details, "number": number}
            raise
        return MailOutcome(COMMENTED, number, f"comment {comment.id} by {user.username}", message_id=mail.key)

    def _forwarded_for(self, user: User, mail: ParsedMail) -> tuple[User | None, str]:
        """Who a service desk agent's forwarded mail is for, and its subject without the forward's
        mark: a mail from someone who logs records for others (``policy.starts_for_others``) whose
        subject starts "Fwd:" (``FORWARD_MARK``) and whose text names the original sender on a
        "From:" line, when that address is an active user's (``users.person_named``). (None, the
        subject as it is) otherwise: the incident is the sender's own."""
        marked = FORWARD_MARK.match(mail.subject)
        if marked is None or not desk_policy.starts_for_others(user):
            return None, mail.subject
        subject = mail.subject[marked.end():].strip()
        line = FORWARDED_FROM.search(mail.text)
        # "Alice <alice@corp>", "Smith, Alice <alice@corp>", "Alice [mailto:alice@corp]": one address
        addresses = {found.lower() for found in EMAIL_ADDRESS.findall(line.group(1))} if line else set()
        caller = person_named(self.session, addresses.pop()) if len(addresses) == 1 else None
        if caller is None or not caller.active or caller.id == user.id:
            return None, subject
        try:
            self.instances.caller_for(user, INCIDENT_PROCESS, caller.username)  # one who may raise incidents
        except ValidationFailed:
            return None, subject
        return caller, subject

    def _new_incident(self, user: User, mail: ParsedMail) -> MailOutcome:
        caller, subject = self._forwarded_for(user, mail)
        data = {
            "title": (subject if len(subject) <= MAX_TITLE else subject[:MAX_TITLE - 1].rstrip() + "\u2026")
            or NO_SUBJECT,
            "description": _cut(mail.text, MAX_DESCRIPTION) if mail.text else NO_TEXT,
            "impact": str(self.config.get("MAIL_INCIDENT_IMPACT") or "low"),
            "urgency": str(self.config.get("MAIL_INCIDENT_URGENCY") or "low"),
        }
        instance = self.instances.start_process(user, INCIDENT_PROCESS, data,
                                                on_behalf_of=caller.username if caller is not None else None)
        ticket = self.records.for_instance(instance.id)
        if ticket is None:  # the deployed diagram opens no record: nothing to answer the sender with
            raise NotFound(f"{INCIDENT_PROCESS} opened no record")
        for item in mail.files:
            self._attach(user, ticket.number, item)
        self._acknowledge(user, ticket, mail)
        raised = f"raised by {user.username}" + (f" for {caller.username}" if caller is not None else "")
        return MailOutcome(CREATED, ticket.number, raised, message_id=mail.key)

    def _acknowledge(self, user: User, ticket: Ticket, mail: ParsedMail) -> None:
        """Tell the sender the number their e-mail was logged under, as a help desk's auto-reply
        does (they have no page to read it from): in their language, in-app and by mail (unless
        they turned mail off), about the record, so that their reply to it is a comment on it. With
        the published articles that may already answer it (``KnowledgeService.related`` of the
        subject and the text's start), as the incident's start page offers them."""
        articles = self.knowledge.related(f"{ticket.title} {mail.text[:ACKNOWLEDGE_TEXT]}", limit=ACKNOWLEDGED_ARTICLES)
        said = {"number": ticket.number, "title": ticket.title, "link": self.notifications.link(ticket)}
        subject = Text("%(number)s received: %(title)s", **said)
        if articles:
            listed = "\n".join(f"- {a.number} {a.title}: {self.notifications.link(article=a.number)}" for a in articles)
            body = Text("Thank you: your e-mail is logged as %(number)s (%(title)s). Reply to this e-mail to add "
                        "to it, or follow it here: %(link)s\n\nThese published articles may already answer it:\n"
                        "%(articles)s", articles=listed, **said)
        else:
            body = Text("Thank you: your e-mail is logged as %(number)s (%(title)s). Reply to this e-mail to add "
                        "to it, or follow it here: %(link)s", **said)
        self.notifications.notify([user], MAIL_RECEIVED_EVENT, subject, body, ticket=ticket,
                                  payload={"articles": [a.number for a in articles]})

    def _attach(self, user: User, number: str, item: MailFile) -> None:
        try:
            self.attachments.attach(user, number, item.filename, item.content_type, item.data)
        except ProcessdeskError as err:
            err.message = f"{item.filename}: {err.message}"
            err.details = {**err.details, "filename": item.filename}
            raise

