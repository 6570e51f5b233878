"""Service status schemas: notices, their timeline, and who they affect.

The rules (lengths, known levels, an end after the start, a record the poster may read) are the
service's (``app.services.status``), so the API and the pages refuse the same input with the
same messages; these schemas check the shape only.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from . import JsonBoolean, Length, Range, _Body

#: A notice's version is a 32-bit column.
MAX_VERSION = 2**31 - 1


class NoticeIn(_Body):
    title = fields.String(required=True, validate=Length(max=1000), metadata={"description": "one line, at most 200 characters"})
    level = fields.String(required=True, validate=Length(max=32),
                          metadata={"description": "outage, degraded, maintenance or info"})
    body = fields.String(required=True, validate=Length(max=20000),
                         metadata={"description": "what the desk says first (at most 4,000 characters)"})
    service = fields.String(load_default=None, allow_none=True, validate=Length(max=1000),
                            metadata={"description": "the service it is about: a CMDB item's name, or the desk's words"})
    record = fields.String(load_default=None, allow_none=True, validate=Length(max=64),
                           metadata={"description": "the number of the incident or change behind it (one the poster "
                                                    "may read; only its readers see it named)"})
    starts_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                     metadata={"description": "when it starts showing (default now; at most a year ahead)"})
    expected_end_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                           metadata={"description": "the desk's estimate of its end, after the start"})


class NoticeUpdateIn(_Body):
    version = fields.Integer(required=True, strict=True, validate=Range(min=1, max=MAX_VERSION),
                             metadata={"description": "the notice's version this update was written over (409 if stale)"})
    body = fields.String(required=True, validate=Length(max=20000), metadata={"description": "what the desk says now"})
    level = fields.String(load_default=None, allow_none=True, validate=Length(max=32),
                          metadata={"description": "a new level (absent: unchanged)"})
    title = fields.String(load_default=None, allow_none=True, validate=Length(max=1000),
                          metadata={"description": "a new title (absent: unchanged)"})
    expected_end_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "a new estimate of the end (null: none; absent: unchanged)"})


class NoticeResolveIn(_Body):
    version = fields.Integer(required=True, strict=True, validate=Range(min=1, max=MAX_VERSION),
                             metadata={"description": "the notice's version this was written over (409 if stale)"})
    body = fields.String(required=True, validate=Length(max=20000), metadata={"description": "the desk's last word"})


class AffectedIn(_Body):
    affected = JsonBoolean(required=True, metadata={"description": "true: it affects me (tell me its updates); "
                                                                      "false: take it back"})


class StatusUpdateOut(Schema):
    kind = fields.String(metadata={"description": "posted, update or resolved"})
    level = fields.String()
    body = fields.String()
    author = fields.String(allow_none=True)
    created_at = fields.DateTime()


class NoticeOut(Schema):
    id = fields.Integer()
    title = fields.String()
    level = fields.String(metadata={"description": "outage, degraded, maintenance or info"})
    state = fields.String(metadata={"description": "current (started, not resolved), planned (starts later) or resolved"})
    service = fields.String(allow_none=True)
    record = fields.String(allow_none=True, metadata={"description": "the record behind it, when the caller may read it"})
    starts_at = fields.DateTime()
    expected_end_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    version = fields.Integer()
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    latest = fields.String(metadata={"description": "what the desk said last"})
    affected = fields.Integer(metadata={"description": "how many said it affects them"})
    affects_me = fields.Boolean()
    record_done = fields.Boolean(metadata={"description": "the record behind it is resolved or closed while the notice "
                                                          "is not: one the desk may have forgotten to resolve"})
    updates = fields.List(fields.Nested(StatusUpdateOut), metadata={"description": "oldest first (one notice's answer only)"})


class StatusBoardOut(Schema):
    current = fields.List(fields.Nested(NoticeOut), metadata={"description": "worst first, then newest"})
    planned = fields.List(fields.Nested(NoticeOut), metadata={"description": "soonest first"})
    resolved = fields.List(fields.Nested(NoticeOut), metadata={
        "description": "newest first: on the board those of the last 7 days, for a record every one"})
