"""Time worked schemas. The rules (a day's 24 hours, the days allowed, who may log and remove)
are the service's (``app.services.worklog``); these schemas check the shape only."""

from __future__ import annotations

from marshmallow import Schema, fields

from . import Length, _Body


class WorkIn(_Body):
    minutes = fields.Raw(required=True, metadata={"description": "a whole number of minutes, 1 to 1,440",
                                                  "type": "integer"})
    worked_on = fields.String(load_default=None, allow_none=True, validate=Length(max=32),
                              metadata={"description": "the day worked, YYYY-MM-DD (default today, UTC; "
                                                       "not after today, at most a year back)"})
    note = fields.String(load_default="", validate=Length(max=20000),
                         metadata={"description": "what was done (at most 1,000 characters)"})


class WorkOut(Schema):
    id = fields.Integer()
    user = fields.String(metadata={"description": "who logged it"})
    minutes = fields.Integer()
    worked_on = fields.Date()
    note = fields.String()
    created_at = fields.DateTime()
    removable = fields.Boolean(metadata={"description": "whether the caller may remove it"})


class RecordWorkOut(Schema):
    number = fields.String()
    total_minutes = fields.Integer(metadata={"description": "all the record's entries together"})
    items = fields.List(fields.Nested(WorkOut), metadata={"description": "newest day first, at most 500"})
