"""Configuration item schemas: the list's filters, a CI with its relationships, the records that
name it and its impact, and the bodies that create, change and relate CIs.

The fields' rules (lengths, known owners and groups, unique names) are the service's
(``app.services.cmdb``), so the API and the pages refuse the same input with the same messages;
these schemas check the shape only.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas import Length
from app.services.cmdb import RELATION_KINDS

from . import PageOut, PageQuery, _Body


class CiQuery(PageQuery):
    q = fields.String(load_default=None, validate=Length(max=200),
                      metadata={"description": "words in the name, description, location or serial number"})
    ci_class = fields.String(load_default=None, data_key="class", validate=Length(max=200),
                             metadata={"description": "hardware, software, network, service, other (comma-separated)"})
    status = fields.String(load_default=None, validate=Length(max=200),
                           metadata={"description": "planned, in_service, maintenance, retired (comma-separated)"})
    assigned_to = fields.String(load_default=None, validate=Length(max=128),
                                metadata={"description": "assets assigned to this user"})
    warranty = fields.String(load_default=None, validate=Length(max=16), metadata={
        "description": "expired (ended before today), or 30, 60, 90: ends within so many days"})


class CiOut(Schema):
    name = fields.String()
    ci_class = fields.String(data_key="class")
    status = fields.String()
    description = fields.String()
    owner = fields.String(allow_none=True)
    support_group = fields.String(allow_none=True)
    location = fields.String()
    serial_number = fields.String()
    asset_tag = fields.String()
    assigned_to = fields.String(allow_none=True, metadata={"description": "the user it is assigned to"})
    vendor = fields.String()
    purchased_on = fields.Date(allow_none=True)
    warranty_until = fields.Date(allow_none=True, metadata={"description": "the last day of its warranty"})
    cost = fields.Decimal(allow_none=True, as_string=True, places=2, metadata={"description": "as text: \"1299.00\""})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CiListOut(PageOut):
    items = fields.List(fields.Nested(CiOut))


class CiRelationshipOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "depends_on, runs_on or connects_to: source <kind> target"})
    direction = fields.String(metadata={"description": "outgoing (this CI is the source) or incoming"})
    source = fields.String()
    target = fields.String()
    ci = fields.String(metadata={"description": "the other CI"})
    ci_class = fields.String(data_key="class")
    status = fields.String()


class CiRecordOut(Schema):
    number = fields.String()
    kind = fields.String()
    status = fields.String()
    title = fields.String()
    open = fields.Boolean()
    opened_at = fields.DateTime()


class CiImpactOut(Schema):
    name = fields.String()
    ci_class = fields.String(data_key="class")
    status = fields.String()
    depth = fields.Integer(metadata={"description": "1: directly on this CI"})
    via = fields.String(metadata={"description": "the CI it depends or runs on, on the way to this one"})
    kind = fields.String()


class CiWindowOut(Schema):
    id = fields.Integer()
    name = fields.String()
    days = fields.List(fields.String(), metadata={"description": "mon, tue, wed, thu, fri, sat, sun"})
    week = fields.String(allow_none=True, metadata={
        "description": "monthly: first, second, third, fourth or last (those days of that week of the month); null: every week"})
    start = fields.String(metadata={"description": "hh:mm, on the clocks of timezone"})
    end = fields.String(metadata={"description": "hh:mm; at or before the start: on the next day (equal: 24 hours)"})
    timezone = fields.String(metadata={"description": "an IANA time zone"})
    open_until = fields.DateTime(allow_none=True, metadata={"description": "while it is open: when it closes"})
    next_start = fields.DateTime(allow_none=True, metadata={"description": "when it next opens (UTC)"})
    next_end = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    created_by = fields.String(allow_none=True)


class CiDetailOut(CiOut):
    maintenance_windows = fields.List(fields.Nested(CiWindowOut), metadata={
        "description": "when work on it is meant to happen; none: at any time"})
    relationships = fields.List(fields.Nested(CiRelationshipOut))
    records = fields.List(fields.Nested(CiRecordOut), metadata={
        "description": "records whose ci is this CI's name that the caller sees, open ones first (at most 50)"})
    records_total = fields.Integer()
    impact = fields.List(fields.Nested(CiImpactOut), metadata={
        "description": "CIs that depend or run on this one, directly or transitively (depth at most 6)"})
    impact_truncated = fields.Boolean()
    impacted_services = fields.List(fields.String())


class CiPatch(_Body):
    name = fields.String(validate=Length(min=1, max=255), metadata={
        "description": "a new name renames the CI and the records naming it (any letter case) with it"})
    ci_class = fields.String(data_key="class")
    status = fields.String()
    description = fields.String(allow_none=True)
    owner = fields.String(allow_none=True, metadata={"description": "a username; null or empty: none"})
    support_group = fields.String(allow_none=True, metadata={"description": "a group name; null or empty: none"})
    location = fields.String(allow_none=True)
    serial_number = fields.String(allow_none=True)
    asset_tag = fields.String(allow_none=True, metadata={"description": "unique whatever the letter case; at most 64"})
    assigned_to = fields.String(allow_none=True, metadata={"description": "a username; null or empty: nobody"})
    vendor = fields.String(allow_none=True)
    purchased_on = fields.Raw(allow_none=True, metadata={"description": "YYYY-MM-DD; null or empty: none"})
    warranty_until = fields.Raw(allow_none=True, metadata={
        "description": "YYYY-MM-DD, the warranty's last day, not before the purchase; null or empty: none"})
    cost = fields.Raw(allow_none=True, metadata={"description": "a number or text of at least 0, two decimals at most"})


class CiIn(CiPatch):
    name = fields.String(required=True, validate=Length(min=1, max=255))
    ci_class = fields.String(data_key="class", required=True)


class CiRelationshipIn(_Body):
    target = fields.String(required=True, validate=Length(min=1, max=255))
    kind = fields.String(required=True, validate=validate.OneOf(RELATION_KINDS))


class CiWindowIn(_Body):
    days = fields.List(fields.String(), required=True, metadata={"description": "mon ... sun, at least one"})
    week = fields.String(load_default=None, allow_none=True, metadata={
        "description": "monthly: first, second, third, fourth or last (\"second\" and tue: patch Tuesday); default every week"})
    start = fields.String(required=True, metadata={"description": "hh:mm"})
    end = fields.String(required=True, metadata={"description": "hh:mm; at or before the start: on the next day"})
    timezone = fields.String(load_default="UTC", metadata={"description": "an IANA time zone (default UTC)"})
    name = fields.String(load_default="", metadata={"description": "one line, at most 128 characters"})


class CiWindowPatch(_Body):
    days = fields.List(fields.String(), metadata={"description": "mon ... sun, at least one"})
    week = fields.String(allow_none=True, metadata={"description": "first ... last; null: every week"})
    start = fields.String(metadata={"description": "hh:mm"})
    end = fields.String(metadata={"description": "hh:mm; at or before the start: on the next day"})
    timezone = fields.String(metadata={"description": "an IANA time zone"})
    name = fields.String(metadata={"description": "one line, at most 128 characters"})
