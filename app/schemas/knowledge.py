"""Knowledge article schemas: search, the article with its source problem as it is now, its
earlier versions, and the bodies that write, edit, publish and retire it.

The texts' limits (title, lengths, bidirectional controls) are the service's
(``app.services.knowledge.check_texts``), so the API and the pages refuse the same input with
the same field messages; these schemas check the shape only.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas import JsonBoolean, Length, Range
from app.services.knowledge import MAX_VERSION, SORTS, STATUSES

from . import PageOut, PageQuery, _Body, _In


class KnowledgeQuery(PageQuery):
    q = fields.String(load_default=None, validate=Length(max=200))
    status = fields.String(load_default=None, validate=validate.OneOf([*STATUSES, "all"]), metadata={
        "description": "staff only: draft, published, retired or all (default published); others always "
                       "find published articles only"})
    sort = fields.String(load_default="newest", validate=validate.OneOf(SORTS), metadata={
        "description": "newest (default), most_helpful or least_helpful: by readers' answers to "
                       "\"Was this article helpful?\" (helped less did not help)"})


class RelatedQuery(_In):
    q = fields.String(load_default=None, validate=Length(max=500), metadata={
        "description": "what the problem is, in the requester's words (an incident's title)"})


class FixChangeOut(Schema):
    number = fields.String()
    status = fields.String(allow_none=True)


class FeedbackOut(Schema):
    """An article's answers to "Was this article helpful?" (``KnowledgeService.feedback_of``)."""

    number = fields.String()
    helpful_count = fields.Integer(metadata={"description": "readers who said the article helped"})
    not_helpful_count = fields.Integer(metadata={"description": "readers who said it did not"})
    my_feedback = fields.Boolean(allow_none=True, metadata={
        "description": "the caller's own answer: true (helped), false (did not), null (none given)"})


class KnowledgeOut(FeedbackOut):
    title = fields.String()
    symptoms = fields.String()
    cause = fields.String()
    workaround = fields.String()
    status = fields.String(metadata={"description": "draft, published or retired"})
    version = fields.Integer(metadata={"description": "the text's version: send it back to edit, publish or retire"})
    source = fields.String(allow_none=True, metadata={"description": "the problem the article was published from"})
    source_status = fields.String(allow_none=True, metadata={"description": "that problem's status now"})
    fix_change = fields.Nested(FixChangeOut, allow_none=True,
                               metadata={"description": "the problem's fix change and its status now"})
    created_at = fields.DateTime()
    created_by = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    updated_by = fields.String(allow_none=True)
    published_at = fields.DateTime(allow_none=True)


class KnowledgeListOut(PageOut):
    items = fields.List(fields.Nested(KnowledgeOut))


class RelatedOut(Schema):
    items = fields.List(fields.Nested(KnowledgeOut))


class FeedbackIn(_Body):
    helpful = JsonBoolean(required=True, metadata={"description": "true: the article helped; false: it did not"})


class KnowledgeIn(_Body):
    title = fields.String(required=True)
    symptoms = fields.String(load_default="")
    cause = fields.String(load_default="")
    workaround = fields.String(load_default="")


class KnowledgePatch(_Body):
    version = fields.Integer(required=True, strict=True, validate=Range(min=1, max=MAX_VERSION),
                             metadata={"description": "the version the edit was made on"})
    title = fields.String()
    symptoms = fields.String()
    cause = fields.String()
    workaround = fields.String()
    note = fields.String(load_default="", metadata={"description": "why the text changed (optional)"})


class KnowledgeActionIn(_Body):
    version = fields.Integer(load_default=None, strict=True, validate=Range(min=1, max=MAX_VERSION), metadata={
        "description": "the version the caller read (optional): a stale one answers 409"})


class KnowledgeRevisionOut(Schema):
    version = fields.Integer(metadata={"description": "the replaced version"})
    title = fields.String()
    symptoms = fields.String()
    cause = fields.String()
    workaround = fields.String()
    note = fields.String()
    replaced_by = fields.String(allow_none=True)
    replaced_at = fields.DateTime()


class KnowledgeRevisionListOut(Schema):
    number = fields.String()
    version = fields.Integer(metadata={"description": "the article's current version"})
    items = fields.List(fields.Nested(KnowledgeRevisionOut))
