"""Change schedule schemas: a range of the schedule, its records with their clashes, and freezes.

The freeze's rules (lengths, an end after the start and not past) are the service's
(``app.services.schedule``), so the API and the page refuse the same input with the same
messages; these schemas check the shape only.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields

from . import Length, _Body


class ScheduleQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    start = fields.AwareDateTime(data_key="from", load_default=None,
                                 metadata={"description": "the range's start (RFC 3339 with a zone); default now"})
    end = fields.AwareDateTime(data_key="to", load_default=None,
                               metadata={"description": "the range's end; default 28 days after its start, at most 92"})
    ci = fields.String(load_default=None, validate=Length(max=255),
                       metadata={"description": "only records and freezes of this configuration item"})
    include_closed = fields.Boolean(load_default=False, metadata={"description": "closed records too (default: open ones)"})


class WindowQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    start = fields.AwareDateTime(data_key="from", required=True, metadata={"description": "the window's start (RFC 3339 with a zone)"})
    end = fields.AwareDateTime(data_key="to", required=True, metadata={"description": "the window's end"})
    ci = fields.String(load_default=None, validate=Length(max=255),
                       metadata={"description": "the configuration item (default: the record's)"})
    number = fields.String(load_default=None, validate=Length(max=32),
                           metadata={"description": "the record being planned again: its own window is left out"})


class ClashOut(Schema):
    kind = fields.String(metadata={"description": "freeze; record (another open record's window on the same CI); "
                                                  "maintenance (outside the maintenance windows of the CI)"})
    name = fields.String(metadata={"description": "the freeze's name, the other record's title, or the CI"})
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    ci = fields.String(allow_none=True)
    freeze_id = fields.Integer(allow_none=True)
    number = fields.String(allow_none=True)
    exempt = fields.Boolean(metadata={"description": "a freeze the record may be planned in (an emergency change)"})
    through = fields.Boolean(metadata={"description": "a freeze on another CI (ci) that depends on or runs on the record's"})
    next_start = fields.DateTime(allow_none=True, metadata={
        "description": "maintenance: the first stretch of the CI's windows from the window's start (or now) "
                       "long enough for it (null: none opens within 92 days)"})
    next_end = fields.DateTime(allow_none=True)


class PlannedRecordOut(Schema):
    number = fields.String()
    kind = fields.String()
    title = fields.String()
    status = fields.String()
    category = fields.String(allow_none=True, metadata={"description": "a change's type"})
    priority = fields.String(allow_none=True)
    ci = fields.String(allow_none=True)
    assignment_group = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    planned_start = fields.DateTime(attribute="planned_start_at")
    planned_end = fields.DateTime(attribute="planned_end_at")
    closed = fields.Boolean()
    clashes = fields.List(fields.Nested(ClashOut))


class FreezeOut(Schema):
    id = fields.Integer()
    name = fields.String()
    reason = fields.String()
    ci = fields.String(allow_none=True, metadata={"description": "the one configuration item it holds for; null: all"})
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    created_at = fields.DateTime()
    created_by = fields.String(allow_none=True)


class StretchOut(Schema):
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()


class ScheduleOut(Schema):
    start = fields.DateTime(data_key="from")
    end = fields.DateTime(data_key="to")
    records = fields.List(fields.Nested(PlannedRecordOut))
    freezes = fields.List(fields.Nested(FreezeOut))
    truncated = fields.Boolean(metadata={"description": "more records than the 500 listed (earliest first)"})
    maintenance = fields.List(fields.Nested(StretchOut), allow_none=True, metadata={
        "description": "with ci: the stretches of its maintenance windows in the range (null: it has none)"})


class FreezeListOut(Schema):
    items = fields.List(fields.Nested(FreezeOut))


class FreezeIn(_Body):
    name = fields.String(required=True, metadata={"description": "one line, at most 128 characters"})
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True, metadata={"description": "after the start, not past, at most 366 days later"})
    ci = fields.String(load_default=None, allow_none=True,
                       metadata={"description": "a configuration item: the freeze holds for it alone; absent: for all changes"})
    reason = fields.String(load_default="", metadata={"description": "at most 2000 characters"})


class FreezePatch(_Body):
    name = fields.String(metadata={"description": "one line, at most 128 characters"})
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    ci = fields.String(allow_none=True, metadata={"description": "null: for all changes"})
    reason = fields.String()


class WindowClashesOut(Schema):
    clashes = fields.List(fields.Nested(ClashOut))


class ClashesOut(Schema):
    number = fields.String()
    planned_start = fields.DateTime(allow_none=True)
    planned_end = fields.DateTime(allow_none=True)
    clashes = fields.List(fields.Nested(ClashOut))
