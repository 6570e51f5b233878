"""Ticket records: list, detail, comments, attachments, links."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from app.db import COUNT_CAP
from app.models import Ticket, TicketAttachment, TicketComment, User
from app.schemas import (
    ArticleRefIn,
    AttachedArticlesOut,
    AttachmentListOut,
    AttachmentOut,
    CommentIn,
    CommentListOut,
    CommentOut,
    DuplicateIn,
    DuplicatesIn,
    DuplicatesOut,
    LinkIn,
    TicketDetailOut,
    TicketLinkOut,
    TicketListOut,
    TicketQuery,
    WatchersOut,
)
from app.services.attachments import served_type

from . import checked_first, current_user, page_args, services, unit_of_work
from .serialize import task_dict

blp = Blueprint("tickets", __name__, url_prefix="/api/v1/tickets", description="Ticket records")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def ticket_dict(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number, "kind": ticket.kind, "title": ticket.title, "description": ticket.description,
        "status": ticket.status, "priority": ticket.priority, "category": ticket.category,
        "requester": ticket.requester.username if ticket.requester else None,
        "assignment_group": ticket.assignment_group,
        "assignee": ticket.assignee.username if ticket.assignee else None,
        "service": ticket.service, "ci": ticket.ci, "details": ticket.details or {},
        "opened_at": ticket.opened_at, "first_response_at": ticket.first_response_at,
        "resolved_at": ticket.resolved_at, "closed_at": ticket.closed_at, "updated_at": ticket.updated_at,
        "instance_id": ticket.instance_id,
    }


def comment_dict(comment: TicketComment) -> dict[str, Any]:
    return {"id": comment.id, "author": comment.author_name, "body": comment.body, "created_at": comment.created_at}


def attachment_dict(attachment: TicketAttachment, number: str) -> dict[str, Any]:
    """``attachment`` of the record ``number`` as the API lists it: its metadata and where to
    download it, never its bytes."""
    return {"id": attachment.id, "filename": attachment.filename, "size": attachment.size,
            "content_type": attachment.content_type, "sha256": attachment.sha256,
            "uploaded_by": attachment.uploaded_by, "uploaded_at": attachment.uploaded_at,
            "download_url": url_for("tickets.AttachmentView", number=number, attachment_id=attachment.id)}


def uploaded_file() -> tuple[str | None, str | None, bytes | None]:
    """The multipart field ``file`` of this request: ``(filename, claimed content type, bytes)``,
    all None when the field is missing (the service says so, naming it)."""
    upload = request.files.get("file")
    if upload is None:
        return None, None, None
    return upload.filename, upload.mimetype, upload.read()


def attachment_response(attachment: TicketAttachment) -> Response:
    """A download of ``attachment``: always saved, never shown in the page (Content-Disposition
    ``attachment``, its name in RFC 5987's ``filename*`` and an ASCII fallback), served as the type
    its bytes prove (``served_type``), with nosniff (the app adds its sandbox CSP)."""
    name = attachment.filename
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    response = Response(attachment.data, content_type=served_type(name, attachment.data))
    response.headers["Content-Disposition"] = disposition
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def ticket_detail(ticket: Ticket, user: User) -> dict[str, Any]:
    """The record with its open tasks, the links ``user`` may see and its files' metadata (one
    query, without their bytes)."""
    svc = services()
    out = ticket_dict(ticket)
    out["opened_by"] = ticket.opened_by_name
    instance = svc.records.instance_for(ticket)
    out["open_tasks"] = [task_dict(t) for t in svc.instances.open_tasks(instance)] if instance else []
    out["links"] = svc.records.links(ticket, user)
    out["attachments"] = [attachment_dict(a, ticket.number) for a in svc.attachments.of_record(ticket)]
    return out


@blp.route("")
class TicketsView(MethodView):
    @blp.arguments(TicketQuery, location="query")
    @blp.response(200, TicketListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Records the caller may see; filter by kind, status, priority, group, assignee, requester, q; sort.

        ``open``: true lists open records (not closed), false closed ones. ``breached``: true lists
        records with at least one breached SLA clock, false records with none breached (including
        records without any clock). Either one absent does not filter; any other value than
        true/false is a 422 naming the parameter."""
        user = current_user()
        page, per_page = page_args(args)
        rows, total = unit_of_work(lambda: services().records.list_tickets(user, args, args["sort"], page, per_page))
        return {"page": page, "per_page": per_page, "total": total, "total_exact": total < COUNT_CAP, "items": [ticket_dict(t) for t in rows]}


@blp.route("/<string:number>")
class TicketView(MethodView):
    @blp.response(200, TicketDetailOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """A record with its open tasks, instance id, links and attached files (their metadata and
        ``download_url``, not their bytes)."""
        user = current_user()
        return ticket_detail(unit_of_work(lambda: services().records.get(user, number)), user)


@blp.route("/<string:number>/comments")
class CommentsView(MethodView):
    @blp.response(200, CommentListOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        user = current_user()
        return {"items": [comment_dict(c) for c in unit_of_work(lambda: services().records.comments(user, number))]}

    @blp.arguments(CommentIn)
    @blp.response(201, CommentOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        user = current_user()
        return comment_dict(unit_of_work(lambda: services().records.comment(user, number, body["body"])))


@blp.route("/<string:number>/attachments")
class AttachmentsView(MethodView):
    @blp.response(200, AttachmentListOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """The record's attached files, oldest first (whoever may read the record)."""
        user = current_user()
        items = unit_of_work(lambda: services().attachments.attachments(user, number))
        return {"items": [attachment_dict(a, number.upper()) for a in items]}

    @blp.response(201, AttachmentOut)
    @blp.doc(security=SECURITY, requestBody={
        "required": True,
        "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}}}}}})
    def post(self, number: str) -> dict[str, Any]:
        """Attach a file (multipart field ``file``), as who may comment on the record may: 403 for
        an auditor, a watcher, or (but for the desk's staff) a closed record, as comments. 422
        naming ``file`` when it is missing or empty, or the record holds ATTACHMENT_MAX_COUNT files
        (``too_many_attachments``); 413 naming ``file`` above ATTACHMENT_MAX_BYTES (10 MiB).
        Its name is cut to a safe base name."""
        user = current_user()
        filename, content_type, data = uploaded_file()
        return attachment_dict(unit_of_work(
            lambda: services().attachments.attach(user, number, filename, content_type, data)), number.upper())


@blp.route("/<string:number>/attachments/<int:attachment_id>")
class AttachmentView(MethodView):
    @blp.doc(security=SECURITY, responses={"200": {
        "description": "The file's bytes, always as a download (Content-Disposition: attachment); "
                       "Content-Type image/png, image/jpeg, image/gif, application/pdf or text/plain "
                       "when its bytes are one, else application/octet-stream",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, number: str, attachment_id: int) -> Response:
        """Download one attached file (404 for an id of another record's file)."""
        user = current_user()
        return attachment_response(unit_of_work(lambda: services().attachments.attachment(user, number, attachment_id)))

    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, number: str, attachment_id: int) -> None:
        """Delete one attached file: who attached it while the record is not closed, the agents of
        the record's group and admins (else 403); 404 for an id of another record's file or one
        deleted already. Its bytes go; the audit history keeps ``attachment_deleted`` with its
        name, size and SHA-256."""
        user = current_user()
        unit_of_work(lambda: services().attachments.delete(user, number, attachment_id))


@blp.route("/<string:number>/links")
class LinksView(MethodView):
    @blp.arguments(LinkIn)
    @blp.response(201, TicketLinkOut(many=True), description="Linked: this record's links")
    @blp.alt_response(200, schema=TicketLinkOut(many=True),
                      description="Already linked (an existing link states the relation): this record's links")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> tuple[list[dict[str, Any]], int]:
        """Link this record to another (by number); answers with this record's links (those the
        caller may see): 201 when the link is new, 200 when one already stated the relation."""
        user = current_user()
        svc = services()
        link, created = unit_of_work(lambda: svc.records.link_numbers(user, number, body["number"], body["link_type"]))
        here = link.source if link.source.number == number.upper() else link.target
        return svc.records.links(here, user), 201 if created else 200


@blp.route("/close-as-duplicate")
class DuplicatesView(MethodView):
    @blp.arguments(DuplicatesIn)
    @blp.response(200, DuplicatesOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Close up to 100 records as duplicates of the open record ``of`` (a major incident's
        reports), each as ``/tickets/<number>/close-as-duplicate`` closes one: all of them, or none.
        A refused record refuses the call: 409 ``bulk_refused`` with ``details.records`` naming each
        refused number with the ``status``, ``error`` and ``message`` closing it alone would answer."""
        user = current_user()
        svc = services()

        def close() -> dict[str, Any]:
            done = svc.duplicates.close_many(user, body["numbers"], body["of"], body.get("note"))
            return {"of": done[0].of.number, "items": [
                {"number": d.record.number, "status": d.record.status, "watcher_added": d.watcher_added} for d in done]}

        return unit_of_work(close)


@blp.route("/<string:number>/close-as-duplicate")
class DuplicateView(MethodView):
    @blp.arguments(DuplicateIn)
    @blp.response(200, TicketDetailOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Close this record as the duplicate of another open record of its kind (the desk's staff):
        linked ``duplicate_of``, its requester added to the other's watchers, its process cancelled
        with the reason "duplicate of <number> (<title>)" and ``note``; all, or nothing. Answers
        with this record, closed."""
        user = current_user()
        svc = services()

        def close() -> dict[str, Any]:
            done = svc.duplicates.close(user, number, body["number"], body.get("note"))
            return ticket_detail(done.record, user)

        return unit_of_work(close)


def _watchers(done: Any) -> dict[str, Any]:
    return {"users": done.users, "groups": done.groups, "watching": done.watching, "changed": done.changed,
            "others": done.others}


@blp.route("/<string:number>/watchers")
class WatchersView(MethodView):
    @blp.response(200, WatchersOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """Who watch the record: they read it and hear its comments, resolution and closing. The
        staff get every name; anyone else whether they watch it and how many ``others`` do."""
        user = current_user()
        return _watchers(unit_of_work(lambda: services().watching.of_record(user, number)))


@blp.route("/<string:number>/watchers/me")
class MyWatchView(MethodView):
    @blp.response(200, WatchersOut)
    @blp.doc(security=SECURITY)
    def put(self, number: str) -> dict[str, Any]:
        """Watch the record (the desk's staff: agents, process owners, admins; 403 for anyone else);
        ``changed`` false when the caller watched it already."""
        user = current_user()
        return _watchers(unit_of_work(lambda: services().watching.watch(user, number)))

    @blp.response(200, WatchersOut)
    @blp.doc(security=SECURITY)
    def delete(self, number: str) -> dict[str, Any]:
        """Stop watching the record (``changed`` false for one not watching). Who read it only as a
        watcher no longer reads it: the answer lists nobody."""
        user = current_user()
        return _watchers(unit_of_work(lambda: services().watching.unwatch(user, number)))


@blp.route("/<string:number>/watchers/<string:username>")
class WatcherView(MethodView):
    @blp.response(200, WatchersOut)
    @blp.doc(security=SECURITY)
    def delete(self, number: str, username: str) -> dict[str, Any]:
        """Take someone off the record's watchers: the desk's staff (403 for anyone else, but for
        oneself); 404 for a name that does not watch it."""
        user = current_user()
        return _watchers(unit_of_work(lambda: services().watching.unwatch(user, number, username)))


@blp.route("/<string:number>/articles")
class ArticlesView(MethodView):
    @checked_first(lambda svc, user: svc.knowledge.require_attacher(user))
    @blp.arguments(ArticleRefIn)
    @blp.response(201, AttachedArticlesOut, description="Attached: the record's articles")
    @blp.alt_response(200, schema=AttachedArticlesOut, description="Already attached: the record's articles")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> tuple[dict[str, Any], int]:
        """Attach a published knowledge article (by number) to this record, as the desk's staff do
        for the article that describes its fault: 201 when new on it, 200 when it was there; 422
        naming ``number`` for an article that is not there or not published."""
        user = current_user()
        ticket, attached = unit_of_work(lambda: services().knowledge.attach(user, number, body["number"]))
        return {"knowledge_articles": list((ticket.details or {}).get("knowledge_articles") or []),
                "attached": attached}, 201 if attached else 200
