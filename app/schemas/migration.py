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


class _WhyNot(Schema):
    """What refuses a move, by BPMN id."""

    instance_id = fields.Integer()
    unmapped = fields.List(fields.String(), metadata={"description": "open tasks the version lacks (refused)"})
    history = fields.List(fields.String(), metadata={
        "description": "finished elements the version lacks that cannot leave the history (refused)"})
    incompatible = fields.List(fields.String(), metadata={
        "description": "open elements the instance cannot follow (refused): a running multi-instance or loop "
                       "whose loop settings changed, a join that would wait for a branch the instance passed or "
                       "never took, an open task matched by place onto another kind or after an added element"})
    processes = fields.List(fields.String(), metadata={
        "description": "open subprocesses whose process the version lacks, or whose element calls another (refused)"})


class MigrationPlanOut(_WhyNot):
    from_version = fields.Integer()
    to_version = fields.Integer()
    possible = fields.Boolean()
    changed = fields.List(fields.String(), metadata={"description": "open tasks whose element changed"})
    kept = fields.List(fields.String(), metadata={"description": "open tasks moved as they are"})
    dropped = fields.List(fields.String(), metadata={
        "description": "finished elements and waiting boundary events the version lacks, cut from the engine's history"})
    armed = fields.List(fields.String(), metadata={"description": "boundary events added to open tasks, armed"})


class MigratedOut(InstanceOut):
    migration = fields.Nested(MigrationPlanOut)


class RefusedMoveOut(_WhyNot):
    code = fields.String(metadata={"description": "migration_refused, instance_moved, instance_not_running, ..."})
    message = fields.String()
    version = fields.Integer(metadata={"description": "the version it was to move to"})
    current_version = fields.Integer(metadata={"description": "the version it runs now, when it was moved since"})
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
