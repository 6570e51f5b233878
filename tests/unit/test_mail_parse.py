"""Reading raw messages (app/services/mail.py, no database): hostile and odd input."""

from __future__ import annotations

import pytest

from app.errors import PayloadTooLarge, ValidationFailed
from app.services.mail import html_text, parse_message, strip_quoted

LIMIT = 1024 * 1024


def test_an_unknown_or_non_text_charset_falls_back_to_utf8():
    for charset in (b"x-no-such-charset", b"hex", b"rot13"):
        raw = (b"From: a@example.org\r\nContent-Type: text/plain; charset=" + charset +
               b"\r\n\r\ncaf\xc3\xa9\r\n")
        assert parse_message(raw, LIMIT).text == "café"


def test_deeply_nested_multiparts_are_malformed_not_a_crash():
    depth = 60
    head = b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
    body = b""
    for level in range(depth):
        body += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
    raw = head + body + b"Content-Type: text/plain\r\n\r\nhi\r\n"
    with pytest.raises(ValidationFailed) as caught:
        parse_message(raw, LIMIT)
    assert caught.value.code == "malformed_message"


def test_sender_forms():
    assert parse_message(b"From: <>\r\n\r\nx", LIMIT).junk == "empty sender"
    two = parse_message(b"From: a@example.org, b@example.org\r\n\r\nx", LIMIT)
    assert (two.sender, two.sender_count, two.junk) == (None, 2, None)  # refused: whose is it?
    odd = parse_message(b'From: "Weird, Name" <Odd@Example.ORG>\r\n\r\nx', LIMIT)
    assert odd.sender == "odd@example.org" and odd.junk is None


def test_control_and_bidi_characters_leave_the_text():
    raw = "From: a@example.org\r\nSubject: in\u202evoice\x07\r\nContent-Type: text/plain; charset=utf-8\r\n\r\na\x00b\u202ec\r\n"
    parsed = parse_message(raw.encode("utf-8"), LIMIT)
    assert (parsed.subject, parsed.text) == ("in voice", "abc")


def test_a_message_without_message_id_is_known_by_its_digest():
    parsed = parse_message(b"From: a@example.org\r\n\r\nx", LIMIT)
    assert parsed.key.startswith("sha256:") and len(parsed.key) == 7 + 64


def test_limits_and_garbage():
    with pytest.raises(PayloadTooLarge):
        parse_message(b"From: a@example.org\r\n\r\n" + b"x" * 100, 50)
    for raw in (b"", b"   \r\n", b"\xff\xfe\x00binary", b"just text\r\n"):
        with pytest.raises(ValidationFailed):
            parse_message(raw, LIMIT)
    # an mbox "From " line before the headers (Postfix pipe flag F) is no header
    assert parse_message(b"From a@example.org Mon Nov 30 07:00:00 2026\nFrom: a@example.org\n\nhi", LIMIT).text == "hi"


def test_html_text_and_quotes():
    assert html_text("<p>a<script>x</script><style>y</style></p><br/>b &lt;c&gt;") == "a\n\nb <c>"
    assert html_text("<p>unclosed <b>tags") == "unclosed tags"
    assert strip_quoted("yes\n\nOn Mon, 30 Nov 2026 Rita\n<rita@example.org> wrote:\n> old") == "yes"
    assert strip_quoted("> only quoted") == "> only quoted"
    assert strip_quoted("top\n-----Original Message-----\nFrom: x") == "top"
