"""Response template schemas. The rules (lengths, known kinds and placeholders, a name not taken,
who shares) are the service's (``app.services.responses``); these schemas check the shape only."""

from __future__ import annotations

from marshmallow import Schema, fields

from . import JsonBoolean, Length, Range, _Body, _In

#: A template's version is a 32-bit column.
MAX_VERSION = 2**31 - 1
_BODY = ("the text, at most 4,000 characters; {{number}}, {{title}}, {{requester}}, {{assignee}}, {{group}}, "
         "{{service}}, {{priority}} and {{agent}} are filled in from the record it is used on")


class ResponseTemplateIn(_Body):
    name = fields.String(required=True, validate=Length(max=1000), metadata={"description": "one line, at most 120 characters"})
    body = fields.String(required=True, validate=Length(max=20000), metadata={"description": _BODY})
    kind = fields.String(load_default=None, allow_none=True, validate=Length(max=32),
                         metadata={"description": "incident, change, problem or request: the records it is offered on "
                                                  "(null: every kind)"})
    shared = JsonBoolean(load_default=False, metadata={
        "description": "true: the desk's, every agent uses it (process owners and admins only); false: the caller's own"})


class ResponseTemplatePatchIn(_Body):
    version = fields.Integer(required=True, strict=True, validate=Range(min=1, max=MAX_VERSION),
                             metadata={"description": "the version this edit was written over (409 if stale)"})
    name = fields.String(validate=Length(max=1000))
    body = fields.String(validate=Length(max=20000), metadata={"description": _BODY})
    kind = fields.String(allow_none=True, validate=Length(max=32), metadata={"description": "null: every kind"})
    shared = JsonBoolean()


class ResponseTemplateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    body = fields.String(metadata={"description": "as written, placeholders and all"})
    kind = fields.String(allow_none=True)
    shared = fields.Boolean(metadata={"description": "the desk's (true) or the caller's own (false)"})
    editable = fields.Boolean(metadata={"description": "whether the caller may change or delete it"})
    version = fields.Integer()
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ResponseTemplateListOut(Schema):
    items = fields.List(fields.Nested(ResponseTemplateOut))


class ResponseTemplateQuery(_In):
    kind = fields.String(load_default=None, validate=Length(max=32),
                         metadata={"description": "only those offered on this kind of record"})


class FilledResponseOut(Schema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String(allow_none=True)
    shared = fields.Boolean()
    text = fields.String(metadata={"description": "the text with the record's values filled in"})


class FilledResponseListOut(Schema):
    number = fields.String()
    items = fields.List(fields.Nested(FilledResponseOut))
