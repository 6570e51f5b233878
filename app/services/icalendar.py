"""iCalendar (RFC 5545) files: the change schedule as a calendar that Outlook, Google Calendar and
Thunderbird import (app/services/schedule.py builds the events; this module only writes them).

What the RFC asks of a file, and is easy to get wrong:

* lines end with CRLF, and a line longer than 75 octets is folded: CRLF and one space, never
  inside a UTF-8 character (a CJK title is three octets a character);
* in a TEXT value, backslash, semicolon and comma are escaped with a backslash, and a line break is
  written ``\\n``; control characters have no place in it (dropped);
* times in UTC are ``YYYYMMDDTHHMMSSZ``; every event has a ``UID`` that stays the same from one
  export to the next (the record's number, the freeze's id), so importing again updates the events
  instead of doubling them, and a ``DTSTAMP``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

#: The longest line in octets, line break not counted (RFC 5545 3.1).
MAX_LINE_OCTETS = 75
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Event:
    """One event: ``transparent`` ones (a freeze) do not make anyone busy."""

    uid: str
    starts_at: datetime
    ends_at: datetime
    summary: str
    description: str = ""
    location: str | None = None
    url: str | None = None
    categories: Sequence[str] = field(default_factory=tuple)
    transparent: bool = False


def calendar(name: str, events: Iterable[Event], stamp: datetime) -> str:
    """The calendar ``name`` holding ``events``, stamped ``stamp`` (when it was made), as text."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//processdesk//Change schedule//EN", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", "X-WR-CALNAME:" + text(name)]
    for event in events:
        lines += ["BEGIN:VEVENT", "UID:" + text(event.uid), "DTSTAMP:" + instant(stamp),
                  "DTSTART:" + instant(event.starts_at), "DTEND:" + instant(event.ends_at),
                  "SUMMARY:" + text(event.summary)]
        if event.description:
            lines.append("DESCRIPTION:" + text(event.description))
        if event.location:
            lines.append("LOCATION:" + text(event.location))
        if event.url:
            lines.append("URL:" + _CONTROLS.sub("", event.url).replace("\n", ""))
        if event.categories:
            lines.append("CATEGORIES:" + ",".join(text(c) for c in event.categories))
        lines += ["TRANSP:" + ("TRANSPARENT" if event.transparent else "OPAQUE"), "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def instant(moment: datetime) -> str:
    """A UTC DATE-TIME value: ``20260310T200000Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def text(value: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line breaks (CR, LF, NEL and Unicode's
    line and paragraph separators, which some readers split lines on) as ``\\n``, controls dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n").replace("\x85", "\n")
    value = _CONTROLS.sub("", value)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """``line`` cut into pieces of at most 75 octets (UTF-8), each after the first starting with a
    space after the CRLF; a character is never split."""
    pieces: list[str] = []
    current, size = "", 0
    for char in line:
        octets = len(char.encode("utf-8"))
        # a continuation line's leading space counts towards its 75 octets
        limit = MAX_LINE_OCTETS if not pieces else MAX_LINE_OCTETS - 1
        if size + octets > limit:
            pieces.append(current)
            current, size = "", 0
        current += char
        size += octets
    pieces.append(current)
    return "\r\n ".join(pieces)
