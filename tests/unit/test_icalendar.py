"""iCalendar files as RFC 5545 asks: CRLF lines of at most 75 octets, folded without splitting a
UTF-8 character, TEXT values escaped, UTC times, one VEVENT per event with a stable UID."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app.services.icalendar import Event, calendar, fold, text

STAMP = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def unfolded(document: str) -> list[str]:
    """The file's content lines, as a calendar reads them (RFC 5545 3.1: CRLF + one space joins)."""
    assert document.endswith("\r\n") and "\n" not in document.replace("\r\n", "")
    return document.replace("\r\n ", "").split("\r\n")[:-1]


def test_long_lines_are_folded_at_75_octets_and_never_inside_a_character():
    for line in ("SUMMARY:" + "x" * 200, "SUMMARY:" + "变更冻结期" * 30, "DESCRIPTION:" + "é" * 100 + "a" * 3):
        folded = fold(line)
        pieces = folded.split("\r\n")
        assert len(pieces) > 1
        assert all(len(piece.encode("utf-8")) <= 75 for piece in pieces)
        assert all(piece.startswith(" ") for piece in pieces[1:])
        assert folded.replace("\r\n ", "") == line
    assert fold("SUMMARY:short") == "SUMMARY:short"
    assert fold("X:" + "y" * 73) == "X:" + "y" * 73  # exactly 75 octets: one line


def test_text_values_are_escaped_and_controls_dropped():
    assert text("a;b,c\\d") == "a\\;b\\,c\\\\d"
    assert text("two\r\nlines\rand\nmore") == "two\\nlines\\nand\\nmore"
    assert text("bell\x07 and tab\tkept") == "bell and tab\tkept"
    assert text("line\u2028separator\u2029paragraph\x85next") == "line\\nseparator\\nparagraph\\nnext"


def test_a_calendar_holds_one_event_each_with_its_fields():
    events = [Event("CHG-000001@desk.example", STAMP + timedelta(days=64, hours=11), STAMP + timedelta(days=64, hours=13),
                    "CHG-000001 Upgrade, then reboot; quickly", "assessment\nin the freeze “Close”",
                    location="mailgw01", url="https://desk.example/tickets/CHG-000001", categories=("change", "normal")),
              Event("freeze-3@desk.example", STAMP, STAMP + timedelta(days=1), "Change freeze: Close", transparent=True)]
    lines = unfolded(calendar("Change schedule", events, STAMP))
    assert lines[:6] == ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//processdesk//Change schedule//EN",
                         "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "X-WR-CALNAME:Change schedule"]
    assert lines[-1] == "END:VCALENDAR" and lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == 2
    first = lines[lines.index("BEGIN:VEVENT"):lines.index("END:VEVENT") + 1]
    assert first == ["BEGIN:VEVENT", "UID:CHG-000001@desk.example", "DTSTAMP:20260105T090000Z",
                     "DTSTART:20260310T200000Z", "DTEND:20260310T220000Z",
                     "SUMMARY:CHG-000001 Upgrade\\, then reboot\\; quickly",
                     "DESCRIPTION:assessment\\nin the freeze “Close”", "LOCATION:mailgw01",
                     "URL:https://desk.example/tickets/CHG-000001", "CATEGORIES:change,normal", "TRANSP:OPAQUE", "END:VEVENT"]
    assert "TRANSP:TRANSPARENT" in lines and "SUMMARY:Change freeze: Close" in lines
    # an offset is written in UTC
    [moved] = [line for line in unfolded(calendar("c", [Event("u", datetime(2026, 3, 10, 22, tzinfo=timezone(timedelta(hours=2))),
                                                               datetime(2026, 3, 10, 23, tzinfo=timezone.utc), "s")], STAMP))
               if line.startswith("DTSTART")]
    assert moved == "DTSTART:20260310T200000Z"
