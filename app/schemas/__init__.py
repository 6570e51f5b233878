"""Marshmallow schemas: request bodies (*In), query strings (*Query) and responses (*Out).

Shape only: no queries. They also feed the generated OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.db import MAX_PAGE, MAX_ROW_ID
from app.services import task_stats
from app.services.bulk_tasks import BULK_ACTIONS, MAX_BULK_TASKS
from app.services.definitions import MAX_VERSION
from app.services.duplicates import MAX_DUPLICATE_NOTE, MAX_DUPLICATES
from app.services.instances import MAX_CANCEL_REASON, TASK_SORTS
from app.services.sla import (
    MAX_GROUP_NAME,
    MAX_RESOLUTION_SECONDS,
    MAX_RESPONSE_SECONDS,
    MIN_TARGET_SECONDS,
    NOTIFY_TARGETS,
    PRIORITIES,
    TRACKED_KINDS,
)


class Length(validate.Length):
    """``validate.Length`` in the API's words ("at most 2000 characters"; QA: marshmallow's own read
    "Longer than maximum length 2000."): characters for text, items for a list."""

    def _format_error(self, value: Any, message: str) -> str:
        unit = "characters" if isinstance(value, str) else "items"
        if value == "" and (self.min or 0) > 0:
            return "is required"
        if self.equal is not None:
            text = f"must be exactly {{equal}} {unit}"
        elif self.min is not None and self.max is not None:
            text = f"must be {{min}} to {{max}} {unit}" if self.min > 0 else f"at most {{max}} {unit}"
        elif self.min is not None:
            text = f"at least {{min}} {unit}"
        else:
            text = f"at most {{max}} {unit}"
        return text.format(min=self.min, max=self.max, equal=self.equal)


class Range(validate.Range):
    """``validate.Range`` in the API's words ("at least 60"; marshmallow's own read "Must be greater
    than or equal to 60.")."""

    # formatted twice, as marshmallow's own: first the operators (unused here), then the bounds
    message_min = "at least {{min}}"
    message_max = "at most {{max}}"
    message_all = "must be from {{min}} to {{max}}"


class _In(Schema):
    """A query string: parameters it does not know (tracking tags, cache busters) are ignored."""

    class Meta:
        unknown = EXCLUDE


class JsonNumber(fields.Float):
    """A body's number: a JSON number, never text ("12"), which ``fields.Float`` reads as 12."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._validated(value)  # type: ignore[no-any-return]


class JsonBoolean(fields.Boolean):
    """A body's boolean: true or false, never 0, 1 or text ("off", "yes"), which ``fields.Boolean``
    reads as booleans (``0 in {False}`` holds in Python, so ``falsy={False}`` alone lets 0 through)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _json_typed(field: fields.Field) -> None:
    """Make ``field`` (and the items of a list field) take JSON's own types only: an integer a
    JSON integer (1.5 was read as 1, "12" as 12), a boolean true or false (0, "off" and "yes"
    were read as booleans: ``active: 0`` deactivated a user)."""
    if isinstance(field, fields.Integer):
        field.strict = True
    elif isinstance(field, fields.Boolean) and not isinstance(field, JsonBoolean):
        raise TypeError(f"{field.name}: a body's boolean is a JsonBoolean (fields.Boolean reads 0 and text)")
    elif isinstance(field, fields.Number) and not isinstance(field, JsonNumber):
        raise TypeError(f"{field.name}: a body's number is a JsonNumber (fields.Float reads text)")
    elif isinstance(field, fields.List):
        _json_typed(field.inner)


class _Body(Schema):
    """A JSON body: a field it does not know is refused (422 naming it), so that a misspelt
    field in a PATCH is not answered 200 while nothing changed. Its values have JSON's types:
    marshmallow's leniency (text for numbers and booleans, 1.5 for an integer) is for query
    strings, which are all text (``_json_typed``)."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        super().on_bind_field(field_name, field_obj)
        _json_typed(field_obj)


class PageQuery(_In):
    page = fields.Integer(load_default=1, validate=Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=None, validate=Range(min=1, max=200))


class PageOut(Schema):
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer(metadata={"description": "matches, counted up to 1000 (then total_exact is false)"})
    total_exact = fields.Boolean(dump_default=True)


class TokenIn(Schema):
    username = fields.String(required=True, validate=Length(min=1, max=128))
    password = fields.String(required=True, validate=Length(min=1, max=1024), load_only=True)
    label = fields.String(load_default=None, allow_none=True, validate=Length(max=128), metadata={
        "description": "what the token is for (a script, a CI job): shown in the token list"})
    expires_in = fields.Integer(load_default=None, allow_none=True, strict=True, metadata={
        "description": "seconds the token lives, from 60 up to the desk's token lifetime (the default)"})
    code = fields.String(load_default=None, allow_none=True, validate=Length(max=64), load_only=True, metadata={
        "description": "for a user with two-step sign-in on: the current code of their authenticator app, "
                       "or one of their unused recovery codes (401 naming code without it)"})


class TokenOut(Schema):
    token = fields.String(metadata={"description": "the secret: shown this once, stored nowhere"})
    token_type = fields.String()
    expires_in = fields.Integer()
    id = fields.Integer(metadata={"description": "the token's id in /users/me/tokens (to revoke it)"})
    label = fields.String(allow_none=True)
    expires_at = fields.DateTime()


class TokenInfoOut(Schema):
    id = fields.Integer()
    label = fields.String(allow_none=True)
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True, metadata={"description": "to the minute"})
    expires_at = fields.DateTime()
    current = fields.Boolean(metadata={"description": "the token of this very request"})


class TokenListOut(Schema):
    items = fields.List(fields.Nested(TokenInfoOut))


class HealthOut(Schema):
    status = fields.String()
    database = fields.String()
    schema = fields.String(allow_none=True)
    expected_schema = fields.String(allow_none=True)
    scheduler = fields.String()
    problems = fields.List(fields.String())


class VersionOut(Schema):
    version = fields.Integer()
    name = fields.String()
    deployed_at = fields.DateTime()
    deployed_by = fields.String(allow_none=True)
    content_hash = fields.String()
    filename = fields.String()
    lanes = fields.List(fields.String())
    user_tasks = fields.List(fields.Dict())
    files = fields.List(fields.String())
    running_instances = fields.Integer()


class DefinitionOut(Schema):
    process_id = fields.String()
    name = fields.String()
    latest_version = fields.Integer()
    versions = fields.Integer()
    deployed_at = fields.DateTime()
    deployed_by = fields.String(allow_none=True)


class DefinitionListOut(PageOut):
    items = fields.List(fields.Nested(DefinitionOut))


class DefinitionDetailOut(Schema):
    process_id = fields.String()
    name = fields.String()
    latest = fields.Nested(VersionOut)
    versions = fields.List(fields.Nested(VersionOut))


class TaskStatsQuery(_In):
    days = fields.Integer(load_default=task_stats.DEFAULT_DAYS, validate=Range(min=1, max=task_stats.MAX_DAYS), metadata={
        "description": f"the period of the figures of done tasks, in days up to now (default {task_stats.DEFAULT_DAYS})"})


class TaskStatOut(Schema):
    bpmn_id = fields.String()
    name = fields.String()
    waiting = fields.Integer(metadata={"description": "tasks ready now"})
    oldest_waiting_hours = fields.Float(allow_none=True, metadata={"description": "how long the oldest of them has waited"})
    done = fields.Integer(metadata={"description": "tasks completed within the period"})
    mean_hours = fields.Float(allow_none=True, metadata={"description": "mean hours from creation to completion"})
    median_hours = fields.Float(allow_none=True)


class TaskStatsOut(Schema):
    process_id = fields.String()
    days = fields.Integer()
    since = fields.String()
    now = fields.String()
    busiest = fields.String(allow_none=True, metadata={"description": "the user task with the most tasks waiting"})
    items = fields.List(fields.Nested(TaskStatOut))


class BpmnQuery(_In):
    #: past the largest number a version can have (an INTEGER column): 422, not 500
    version = fields.Integer(load_default=None, validate=Range(min=1, max=MAX_VERSION))


class DeployedVersionOut(Schema):
    process_id = fields.String()
    version = fields.Integer()
    created = fields.Boolean()


class DeployWarningOut(Schema):
    process_id = fields.String()
    version = fields.Integer()
    lane = fields.String()
    message = fields.String()


class DeployOut(Schema):
    deployment_id = fields.Integer(allow_none=True)
    processes = fields.List(fields.Nested(DeployedVersionOut))
    files = fields.List(fields.String())
    warnings = fields.List(fields.Nested(DeployWarningOut), metadata={
        "description": "each new version's lane that names no group: only admins work its tasks until one exists"})


class TaskOut(Schema):
    """A task, wherever the API shows one (the task endpoints, an instance's and a record's open
    tasks), with its record's priority and SLA due instant."""

    id = fields.Integer()
    instance_id = fields.Integer()
    process_id = fields.String()
    bpmn_id = fields.String()
    name = fields.String()
    lane = fields.String(allow_none=True)
    state = fields.String()
    claimed_by = fields.String(allow_none=True)
    assigned_user = fields.String(allow_none=True, metadata={"description": "the one person the task is for "
                                                                            "(it is in no one else's queue), or null"})
    delegated_from = fields.String(allow_none=True, metadata={
        "description": "whom the task was assigned to before it went to ``assigned_user``, their delegate, for "
                       "their absence (out of office); it goes back to them when that ends; null: not handed"})
    completed_by = fields.String(allow_none=True)
    form = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    priority = fields.String(allow_none=True, metadata={"description": "the record's priority, as the process set it "
                                                                       "(a change's is its risk; null: no record, or "
                                                                       "none set)"})
    sla_due_at = fields.DateTime(allow_none=True, metadata={
        "description": "when the record's first running SLA clock breaches, in the past once breached "
                       "(null: no record, or no running clock)"})


class InboxTaskOut(TaskOut):
    """A task as the task endpoints show it (the fields of ``TaskOut``)."""


class TaskDetailOut(InboxTaskOut):
    form_schema = fields.Dict(allow_none=True)
    ui_schema = fields.Dict(allow_none=True)
    data = fields.Dict()
    instructions = fields.String()
    documentation = fields.String(allow_none=True)
    exclusion = fields.String(allow_none=True, metadata={
        "description": "why separation of duties keeps the caller from this task (the diagram's excludeReason), "
                       "else null: completing it would be refused (403 separation_of_duties)"})


class TaskListOut(PageOut):
    items = fields.List(fields.Nested(InboxTaskOut))


class TaskQuery(PageQuery):
    mine = fields.Boolean(load_default=False)
    process_id = fields.String(load_default=None, validate=Length(max=128))
    sort = fields.String(load_default="age", validate=validate.OneOf(TASK_SORTS), metadata={
        "description": "age: oldest first; due: SLA due soonest first (none last); priority: most urgent first "
                       "(P1, P2 and a change's high risk, P3 and medium, P4 and low, other values, none), "
                       "then by due"})


class CompleteIn(_Body):
    data = fields.Dict(load_default=dict)


class ReassignIn(_Body):
    username = fields.String(required=True, validate=Length(min=1, max=128))


class BulkTasksIn(_Body):
    """One action for several tasks (app/services/bulk_tasks.py): all done, or none."""

    action = fields.String(required=True, validate=validate.OneOf(BULK_ACTIONS))
    task_ids = fields.List(fields.Integer(validate=Range(min=1, max=MAX_ROW_ID)), required=True,
                           validate=Length(min=1, max=MAX_BULK_TASKS))
    username = fields.String(load_default=None, allow_none=True, validate=Length(min=1, max=128), metadata={
        "description": "whom reassign hands every task to (required for it, ignored otherwise)"})


class BulkTaskOut(Schema):
    task = fields.Nested(InboxTaskOut)
    changed = fields.Boolean(metadata={"description": "false for a task that was already as asked"})


class BulkTasksOut(Schema):
    action = fields.String()
    changed = fields.Integer(metadata={"description": "how many tasks this call changed"})
    items = fields.List(fields.Nested(BulkTaskOut))


class InstanceIn(_Body):
    process_id = fields.String(required=True, validate=Length(min=1, max=128))
    data = fields.Dict(load_default=dict)
    #: The user name (or e-mail address) of the person the process is started for (agents and admins: a caller's incident).
    on_behalf_of = fields.String(load_default=None, allow_none=True, validate=Length(max=255))


class InstanceQuery(PageQuery):
    process_id = fields.String(load_default=None, validate=Length(max=128))
    status = fields.String(load_default=None, validate=validate.OneOf(["running", "completed", "cancelled", "error"]))


class CallerQuery(_In):
    process_id = fields.String(required=True, validate=Length(min=1, max=128),
                               metadata={"description": "the process to be started for the person"})
    q = fields.String(load_default=None, validate=Length(max=200),
                      metadata={"description": "words in the username, display name or e-mail address (any case; "
                                               "at least 2 characters, else nothing is suggested)"})


class CallerOut(Schema):
    username = fields.String()
    display_name = fields.String()
    email = fields.String(allow_none=True)


class CallerListOut(Schema):
    items = fields.List(fields.Nested(CallerOut))


class InstanceOut(Schema):
    id = fields.Integer()
    process_id = fields.String()
    version = fields.Integer()
    status = fields.String()
    data = fields.Dict()
    open_tasks = fields.List(fields.Nested(TaskOut))
    started_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    error = fields.Dict(allow_none=True)


class InstanceListOut(PageOut):
    items = fields.List(fields.Nested(InstanceOut))


class MessageIn(_Body):
    name = fields.String(required=True, validate=Length(min=1, max=255))
    payload = fields.Raw(load_default=None)


class CancelIn(_Body):
    reason = fields.String(load_default=None, validate=Length(max=MAX_CANCEL_REASON))


class RetryIn(_Body):
    data = fields.Dict(load_default=dict)


class HistoryEventOut(Schema):
    seq = fields.Integer()
    type = fields.String()
    actor = fields.String()
    time = fields.DateTime()
    task_id = fields.Integer(allow_none=True)
    task = fields.Dict(allow_none=True)
    data = fields.Raw(allow_none=True)
    payload = fields.Dict()


class HistoryOut(Schema):
    instance_id = fields.Integer()
    events = fields.List(fields.Nested(HistoryEventOut))


# -- records, knowledge, catalog ---------------------------------------------------------------------


class TicketQuery(PageQuery):
    kind = fields.String(load_default=None, validate=Length(max=100))
    status = fields.String(load_default=None, validate=Length(max=200))
    priority = fields.String(load_default=None, validate=Length(max=100))
    category = fields.String(load_default=None, validate=Length(max=100))
    group = fields.String(load_default=None, validate=Length(max=128))
    assignee = fields.String(load_default=None, validate=Length(max=128))
    requester = fields.String(load_default=None, validate=Length(max=128))
    opened_by = fields.String(load_default=None, validate=Length(max=128), metadata={
        "description": "the user name of who logged the records for their requesters (an agent's calls)"})
    q = fields.String(load_default=None, validate=Length(max=200))
    open = fields.Boolean(load_default=None, metadata={
        "description": "true: open records only (not closed); false: closed records only; absent: both"})
    breached = fields.Boolean(load_default=None, metadata={
        "description": "true: records with at least one breached SLA clock; false: records with no breached "
                       "SLA clock (none at all, or none breached); absent: both"})
    sort = fields.String(load_default="-opened_at", validate=Length(max=40))


class TicketOut(Schema):
    number = fields.String()
    kind = fields.String()
    title = fields.String()
    description = fields.String()
    status = fields.String()
    priority = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    requester = fields.String(allow_none=True)
    assignment_group = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    service = fields.String(allow_none=True)
    ci = fields.String(allow_none=True)
    details = fields.Dict()
    opened_at = fields.DateTime()
    first_response_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()
    instance_id = fields.Integer(allow_none=True)


class TicketLinkOut(Schema):
    number = fields.String()
    kind = fields.String()
    title = fields.String()
    status = fields.String()
    link_type = fields.String()
    direction = fields.String()
    relation = fields.String(metadata={"description": "what the link states: related, causes, duplicates, fixes, "
                                                      "parent_of, documents, blocks"})
    side = fields.String(metadata={"description": "this record's side of the relation: subject, object, or both "
                                                  "(related)"})
    created_at = fields.DateTime()


class AttachmentOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    size = fields.Integer(metadata={"description": "bytes"})
    content_type = fields.String(metadata={"description": "what the uploader's client claimed; "
                                                           "downloads are served as their bytes prove"})
    sha256 = fields.String()
    uploaded_by = fields.String()
    uploaded_at = fields.DateTime()
    download_url = fields.String(metadata={"description": "where the file's bytes are downloaded (this API's path)"})


class TicketDetailOut(TicketOut):
    opened_by = fields.String(allow_none=True, metadata={
        "description": "who logged the record for its requester (an agent taking a call); null: the requester did"})
    open_tasks = fields.List(fields.Nested(TaskOut))
    links = fields.List(fields.Nested(TicketLinkOut))
    attachments = fields.List(fields.Nested(AttachmentOut),
                              metadata={"description": "the record's files, oldest first, without their bytes"})


class TicketListOut(PageOut):
    items = fields.List(fields.Nested(TicketOut))


class CommentIn(_Body):
    body = fields.String(required=True, validate=Length(min=1, max=20000))


class CommentOut(Schema):
    id = fields.Integer()
    author = fields.String()
    body = fields.String()
    created_at = fields.DateTime()


class CommentListOut(Schema):
    items = fields.List(fields.Nested(CommentOut))


class AttachmentListOut(Schema):
    items = fields.List(fields.Nested(AttachmentOut))


class LinkIn(_Body):
    number = fields.String(required=True, validate=Length(min=1, max=32))
    link_type = fields.String(load_default="related", validate=Length(min=1, max=64))


class DuplicateIn(_Body):
    """Close a record as the duplicate of another (app/services/duplicates.py)."""

    number = fields.String(required=True, validate=Length(min=1, max=32),
                           metadata={"description": "the open record of the same kind this one duplicates"})
    note = fields.String(load_default=None, allow_none=True, validate=Length(max=MAX_DUPLICATE_NOTE), metadata={
        "description": "added to the cancellation's reason, which the record's people are told"})


class DuplicatesIn(_Body):
    """Close several records as duplicates of one (app/services/duplicates.py): all, or none."""

    numbers = fields.List(fields.String(validate=Length(min=1, max=32)), required=True,
                          validate=Length(min=1, max=MAX_DUPLICATES),
                          metadata={"description": "the records to close, each an open record of the same kind"})
    of = fields.String(required=True, validate=Length(min=1, max=32),
                       metadata={"description": "the open record they duplicate"})
    note = fields.String(load_default=None, allow_none=True, validate=Length(max=MAX_DUPLICATE_NOTE))


class ClosedDuplicateOut(Schema):
    number = fields.String()
    status = fields.String()
    watcher_added = fields.String(allow_none=True, metadata={
        "description": "the requester this made a watcher of the record they duplicate (null: already there, or none)"})


class DuplicatesOut(Schema):
    of = fields.String()
    items = fields.List(fields.Nested(ClosedDuplicateOut))


class WatchersOut(Schema):
    users = fields.List(fields.String(), metadata={"description": "who watch the record by name"})
    groups = fields.List(fields.String(), metadata={"description": "the groups a process told about it"})
    watching = fields.Boolean(metadata={"description": "whether the caller watches it by name"})
    changed = fields.Boolean(metadata={"description": "whether this call changed the list"})
    others = fields.Integer(metadata={"description": "how many more watch it, for a caller not told their names"})


class ArticleRefIn(_Body):
    number = fields.String(required=True, validate=Length(min=1, max=32))


class AttachedArticlesOut(Schema):
    knowledge_articles = fields.List(fields.String())
    attached = fields.Boolean()


class CatalogQuery(_In):
    q = fields.String(load_default=None, validate=Length(max=200))
    category = fields.String(load_default=None, validate=Length(max=32))


class CatalogItemOut(Schema):
    code = fields.String()
    name = fields.String()
    category = fields.String()
    description = fields.String()
    owner_group = fields.String()
    fulfilment_group = fields.String()
    form = fields.String(allow_none=True)
    approval = fields.String()
    cost = fields.Float()
    target_hours = fields.Integer()
    status = fields.String()


class CatalogItemDetailOut(CatalogItemOut):
    form_schema = fields.Dict(allow_none=True)
    ui_schema = fields.Dict(allow_none=True)


class CatalogCategoryOut(Schema):
    code = fields.String()
    name = fields.String()
    items = fields.List(fields.Nested(CatalogItemOut))
    children = fields.List(fields.Nested(lambda: CatalogCategoryOut()))


class CatalogTreeOut(Schema):
    categories = fields.List(fields.Nested(CatalogCategoryOut))


class CatalogItemPatch(_Body):
    name = fields.String(validate=Length(min=1, max=255))
    category_code = fields.String(validate=Length(min=1, max=32))
    description = fields.String(validate=Length(max=20000))
    owner_group = fields.String(validate=Length(min=1, max=128))
    fulfilment_group = fields.String(validate=Length(min=1, max=128))
    form = fields.String(allow_none=True, validate=Length(max=128), metadata={
        "description": "the item's request form: a deployed catalog request form file, catalog-<name>.json "
                       "(null: the item asks for nothing)"})
    approval_rule = fields.String(validate=validate.OneOf(["none", "manager", "budget"]))
    cost = JsonNumber(validate=Range(min=0, max=10_000_000))
    target_hours = fields.Integer(validate=Range(min=1, max=10_000))
    status = fields.String(validate=validate.OneOf(["draft", "published", "retired"]))


class CatalogItemIn(CatalogItemPatch):
    code = fields.String(required=True, validate=[Length(min=2, max=64), validate.Regexp(r"^[A-Z0-9][A-Z0-9_-]*$")])
    name = fields.String(required=True, validate=Length(min=1, max=255))
    category_code = fields.String(required=True, validate=Length(min=1, max=32))
    owner_group = fields.String(required=True, validate=Length(min=1, max=128))
    fulfilment_group = fields.String(required=True, validate=Length(min=1, max=128))


class CatalogRequestIn(_Body):
    data = fields.Dict(load_default=dict)
    #: The user name (or e-mail address) of the person the item is requested for (agents and admins).
    on_behalf_of = fields.String(load_default=None, allow_none=True, validate=Length(max=255))


# -- notifications and webhooks ------------------------------------------------------------------------


class NotificationQuery(PageQuery):
    unread = fields.Boolean(load_default=False)


class NotificationOut(Schema):
    id = fields.Integer()
    subject = fields.String()
    body = fields.String()
    record = fields.String(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NotificationListOut(PageOut):
    unread = fields.Integer()
    items = fields.List(fields.Nested(NotificationOut))


class PreferencesIn(_Body):
    email_opt_out = JsonBoolean(required=True)


class PreferencesOut(Schema):
    username = fields.String()
    email = fields.String(allow_none=True)
    email_opt_out = fields.Boolean()


class WebhookIn(_Body):
    url = fields.String(required=True, validate=Length(min=8, max=1000))
    secret = fields.String(required=True, load_only=True, validate=Length(min=16, max=255))
    events = fields.List(fields.String(validate=Length(max=64)), required=True, validate=Length(min=1, max=20))


class WebhookPatchIn(_Body):
    """Any of the fields of :class:`WebhookIn`, with the same rules, plus ``active``; absent ones stay."""

    url = fields.String(validate=Length(min=8, max=1000))
    secret = fields.String(load_only=True, validate=Length(min=16, max=255))
    events = fields.List(fields.String(validate=Length(max=64)), validate=Length(min=1, max=20))
    active = JsonBoolean()


class WebhookOut(Schema):
    # No secret field: a webhook's secret is write-only.
    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    active = fields.Boolean()
    created_at = fields.DateTime()


class WebhookListOut(PageOut):
    items = fields.List(fields.Nested(WebhookOut))


class DeliveryAttemptOut(Schema):
    attempt = fields.Integer()
    at = fields.DateTime()
    ok = fields.Boolean()
    status = fields.Integer(allow_none=True)
    detail = fields.String()
    duration_ms = fields.Float()


class DeliveryOut(Schema):
    event_id = fields.String()
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    log = fields.List(fields.Nested(DeliveryAttemptOut))


class DeliveryListOut(Schema):
    items = fields.List(fields.Nested(DeliveryOut))


# -- SLA -------------------------------------------------------------------------------------------------


class SlaClockOut(Schema):
    name = fields.String()
    target_seconds = fields.Float()
    elapsed_seconds = fields.Float()
    warning_seconds = fields.Float()
    paused_seconds = fields.Float()
    due_at = fields.DateTime(allow_none=True)
    warning_at = fields.DateTime(allow_none=True)
    breached_at = fields.DateTime(allow_none=True)
    state = fields.String()


class SlaOut(Schema):
    number = fields.String()
    clocks = fields.List(fields.Nested(SlaClockOut))


def _no_control_characters(text: str) -> None:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValidationError("must not contain control characters")


def _distinct(items: list[Any]) -> None:
    if len(set(items)) != len(items):
        raise ValidationError("each recipient at most once")


def _dotted(messages: Any, path: str = "", into: dict[str, list[str]] | None = None,
            item: str = "") -> dict[str, list[str]]:
    """Nested marshmallow messages as ``{"escalation.breach.reassign_group": [...]}``, the
    dotted field names the API's ``details.fields`` uses; a list item's messages go to the list
    ("item 1: ..."), a nested schema's own messages to its field."""
    into = {} if into is None else into
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                _dotted(value, path, into, f"{item}item {key}: ")
            elif key == "_schema":
                _dotted(value, path, into, item)
            else:
                _dotted(value, f"{path}.{key}" if path else str(key), into, item)
    else:
        for text in messages if isinstance(messages, list) else [messages]:
            into.setdefault(path or "_schema", []).append(f"{item}{text}")
    return into


class _Settings(_Body):
    """A nested settings object: unknown keys are errors, not silently dropped (as in a body)."""


class SlaWarningEscalationIn(_Settings):
    notify = fields.List(fields.String(validate=validate.OneOf(sorted(NOTIFY_TARGETS))), load_default=list,
                         validate=_distinct, metadata={"description": "who is told"})


class SlaBreachEscalationIn(SlaWarningEscalationIn):
    raise_priority = JsonBoolean(load_default=False,
                                    metadata={"description": "raise the record's priority one step (P4 -> P3 ...)"})
    reassign_group = fields.String(load_default=None, allow_none=True,
                                   validate=[Length(min=1, max=MAX_GROUP_NAME), _no_control_characters],
                                   metadata={"description": "name of an existing group to hand the record to"})


class SlaEscalationIn(_Settings):
    """What happens when a clock passes its warning ratio, and when it breaches; a level left
    out (or null) notifies nobody."""

    warning = fields.Nested(SlaWarningEscalationIn, allow_none=True)
    breach = fields.Nested(SlaBreachEscalationIn, allow_none=True)


class SlaPolicyIn(_Body):
    kind = fields.String(required=True, validate=validate.OneOf(TRACKED_KINDS))
    priority = fields.String(required=True, validate=validate.OneOf(PRIORITIES))
    service = fields.String(load_default="", validate=[Length(max=255), _no_control_characters])
    response_seconds = fields.Integer(required=True, strict=True,
                                      validate=Range(min=MIN_TARGET_SECONDS, max=MAX_RESPONSE_SECONDS))
    resolution_seconds = fields.Integer(required=True, strict=True,
                                        validate=Range(min=MIN_TARGET_SECONDS, max=MAX_RESOLUTION_SECONDS))
    calendar = fields.Dict(load_default=dict)
    pause_statuses = fields.List(fields.String(validate=[Length(min=1, max=64), _no_control_characters]),
                                 load_default=None, validate=Length(max=32), metadata={
                                     "description": "record statuses during which the clocks pause; absent: the "
                                                    "kind's default (incident: pending); [] pauses never"})
    warning_ratio = JsonNumber(load_default=0.75, validate=Range(min=0.05, max=0.99))
    escalation = fields.Nested(SlaEscalationIn, load_default=None, allow_none=True,
                               metadata={"description": "omitted or null: the built-in escalation"})

    @validates_schema
    def _response_within_resolution(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data["response_seconds"] > data["resolution_seconds"]:
            raise ValidationError("must not exceed resolution_seconds", "response_seconds")

    def handle_error(self, error: ValidationError, data: Any, *, many: bool, **kwargs: Any) -> None:
        """Report nested fields by dotted name (``escalation.breach.notify``)."""
        raise ValidationError(_dotted(error.messages), data=data, valid_data=error.valid_data) from error


class SlaPolicyOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    priority = fields.String()
    service = fields.String()
    response_seconds = fields.Integer()
    resolution_seconds = fields.Integer()
    calendar = fields.Dict()
    pause_statuses = fields.List(fields.String())
    warning_ratio = fields.Float()
    escalation = fields.Dict()


class SlaPolicyListOut(Schema):
    items = fields.List(fields.Nested(SlaPolicyOut))
    #: the built-in terms in force wherever no stored policy matches (no id: nothing is stored)
    defaults = fields.List(fields.Nested(SlaPolicyOut))


class InboundMailResultOut(Schema):
    outcome = fields.String(metadata={"description": "created | commented | refused | ignored | failed"})
    number = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    duplicate = fields.Boolean(metadata={"description": "delivered before: nothing was done again"})


class InboundMailOut(Schema):
    id = fields.Integer()
    message_id = fields.String()
    outcome = fields.String()
    number = fields.String(allow_none=True)
    sender = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    size = fields.Integer()
    received_at = fields.DateTime()
    retried_at = fields.DateTime(allow_none=True)


class InboundMailListOut(Schema):
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    items = fields.List(fields.Nested(InboundMailOut))
