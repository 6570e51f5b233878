"""Recurring requests (app/services/recurring.py): bodies and answers."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.schemas import JsonBoolean, Length, _Body

_DAYS = "mon, tue, wed, thu, fri, sat, sun: at least one (all seven: every day)"
_WEEK = "monthly: first, second, third, fourth or last (those days of that week of the month); null: every week"


class RecurringPatch(_Body):
    name = fields.String(validate=Length(max=1000), metadata={"description": "one line, at most 128 characters"})
    process_id = fields.String(validate=Length(max=1000), metadata={"description": "the deployed process to start"})
    data = fields.Dict(metadata={"description": "the start data, checked as a start would check it (its form)"})
    requested_for = fields.String(allow_none=True, validate=Length(max=1000), metadata={
        "description": "the user name of the person each start is for (agents and admins, as on the start page)"})
    days = fields.List(fields.String(validate=Length(max=16)), validate=Length(max=7), metadata={"description": _DAYS})
    week = fields.String(allow_none=True, validate=Length(max=16), metadata={"description": _WEEK})
    time = fields.String(validate=Length(max=16), metadata={"description": "hh:mm, on the clocks of timezone"})
    timezone = fields.String(validate=Length(max=64), metadata={"description": "an IANA time zone"})
    active = JsonBoolean(metadata={"description": "false: paused (no starts until it is true again)"})


class RecurringIn(RecurringPatch):
    name = fields.String(required=True, validate=Length(max=1000), metadata={"description": "one line, at most 128 characters"})
    process_id = fields.String(required=True, validate=Length(max=1000), metadata={"description": "the deployed process to start"})
    days = fields.List(fields.String(validate=Length(max=16)), required=True, validate=Length(max=7),
                       metadata={"description": _DAYS})
    time = fields.String(required=True, validate=Length(max=16), metadata={"description": "hh:mm, on the clocks of timezone"})


class RecurringOut(Schema):
    id = fields.Integer()
    name = fields.String()
    process_id = fields.String()
    data = fields.Dict()
    requested_for = fields.String(allow_none=True)
    owner = fields.String(metadata={"description": "who made it: each start is theirs"})
    days = fields.List(fields.String(), metadata={"description": _DAYS})
    week = fields.String(allow_none=True, metadata={"description": _WEEK})
    time = fields.String()
    timezone = fields.String()
    active = fields.Boolean()
    next_run_at = fields.DateTime(allow_none=True, metadata={"description": "the next start (UTC); null while paused"})
    last_run_at = fields.DateTime(allow_none=True)
    last_instance_id = fields.Integer(allow_none=True, metadata={"description": "the instance the last run started"})
    last_error = fields.String(allow_none=True, metadata={"description": "why the last run started nothing (it was paused)"})
    runs = fields.Integer(metadata={"description": "how many processes it started"})
    dates_written_for = fields.DateTime(allow_none=True, metadata={
        "description": "the start the data's dates were written for: each run moves the form's date and date-time "
                       "answers on by as much as its own start is later"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class RecurringListOut(Schema):
    items = fields.List(fields.Nested(RecurringOut))
