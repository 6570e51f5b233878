"""Bodies and answers of moving instances to another version (app/services/migration.py)."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Range

from app.services.definitions import MAX_VERSION

from . import InstanceOut, JsonBoolean, _Body, _In

_VERSION = Range(min=1, max=MAX_VERSION)


class MigrationQuery(_In):
    version = fields.Integer(load_default=None, validate=_VERSION, metadata={
        "description": "the version to move to (default: the latest)"})


class MigrateIn(_Body):
    version = fields.Integer(load_default=None, validate=_VERSION, metadata={
        "description": "the version to move to (default: the latest)"})


class VersionMigrateIn(_Body):
    from_version = fields.Integer(required=True, validate=_VERSION)
    to_version = fields.Integer(load_default=None, validate=_VERSION, metadata={"description": "default: the latest"})
    dry_run = JsonBoolean(load_default=False)
    after = fields.Integer(load_default=0, validate=Range(min=0, max=2**63 - 1), metadata={
        "description": "only instances with a higher id (the last answer's next_after)"})


class MigrationPlanOut(Schema):
    instance_id = fields.Integer()
    from_version = fields.Integer()
    to_version = fields.Integer()
    possible = fields.Boolean()
    unmapped = fields.List(fields.String(), metadata={"description": "open tasks the version lacks (refused)"})
    history = fields.List(fields.String(), metadata={
        "description": "finished branching elements the version lacks (refused)"})
    processes = fields.List(fields.String(), metadata={"description": "open subprocesses the version lacks (refused)"})
    changed = fields.List(fields.String(), metadata={"description": "open tasks prepared again by the new version"})
    kept = fields.List(fields.String(), metadata={"description": "open tasks moved as they are"})
    dropped = fields.List(fields.String(), metadata={"description": "finished elements cut from the engine's history"})


class MigratedOut(InstanceOut):
    migration = fields.Nested(MigrationPlanOut)


class RefusedMoveOut(Schema):
    instance_id = fields.Integer()
    message = fields.String()
    version = fields.Integer()
    unmapped = fields.List(fields.String())
    history = fields.List(fields.String())
    processes = fields.List(fields.String())
    element_id = fields.String()
    status = fields.String()


class VersionMigrationOut(Schema):
    process_id = fields.String()
    from_version = fields.Integer()
    to_version = fields.Integer()
    dry_run = fields.Boolean()
    moved = fields.List(fields.Integer(), metadata={"description": "instances moved (dry run: that would move)"})
    refused = fields.List(fields.Nested(RefusedMoveOut))
    remaining = fields.Integer(metadata={"description": "instances of the version left for another call"})
    next_after = fields.Integer()
