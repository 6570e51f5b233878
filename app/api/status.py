"""Service status: notices of outages, degraded services and planned maintenance, their updates,
and "this affects me" (app/services/status.py decides)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import StatusNotice, StatusUpdate, User
from app.schemas.status import AffectedIn, NoticeIn, NoticeOut, NoticeResolveIn, NoticeUpdateIn, StatusBoardOut
from app.services.status import StatusBoard

from . import checked_first, current_user, services, unit_of_work

blp = Blueprint("status", __name__, url_prefix="/api/v1", description="Service status")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def update_dict(row: StatusUpdate) -> dict[str, Any]:
    return {"kind": row.kind, "level": row.level, "body": row.body, "created_at": row.created_at,
            "author": row.author.username if row.author is not None else None}


def notice_dict(notice: StatusNotice, board: StatusBoard, state: str,
                updates: list[StatusUpdate] | None = None) -> dict[str, Any]:
    latest = board.latest.get(notice.id)
    answer = {"id": notice.id, "title": notice.title, "level": notice.level, "state": state,
              "service": notice.service, "record": board.records.get(notice.id), "starts_at": notice.starts_at,
              "expected_end_at": notice.expected_end_at, "resolved_at": notice.resolved_at,
              "version": notice.version, "created_at": notice.created_at, "updated_at": notice.updated_at,
              "created_by": notice.created_by.username if notice.created_by is not None else None,
              "latest": latest.body if latest is not None else "",
              "affected": board.affected_counts.get(notice.id, 0), "affects_me": notice.id in board.mine,
              "record_done": notice.id in board.record_done}
    if updates is not None:
        answer["updates"] = [update_dict(u) for u in updates]
    return answer


def board_dict(board: StatusBoard) -> dict[str, Any]:
    return {part: [notice_dict(n, board, part) for n in getattr(board, part)] for part in ("current", "planned", "resolved")}


def _one(user: User, notice_id: int) -> dict[str, Any]:
    svc = services()
    notice, board, updates = svc.status.one(user, notice_id)
    return notice_dict(notice, board, svc.status.state(notice), updates)


@blp.route("/status")
class StatusBoardView(MethodView):
    @blp.response(200, StatusBoardOut)
    @blp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        """The service status (everyone signed in): current notices worst first, planned ones
        soonest first, and those resolved in the last 7 days, each with what the desk said last,
        how many said it affects them and whether it affects the caller."""
        user = current_user()
        svc = services()

        def read() -> dict[str, Any]:
            return board_dict(svc.status.board(user))

        return unit_of_work(read)

    @checked_first(lambda svc, user: svc.status.require_poster(user))
    @blp.arguments(NoticeIn)
    @blp.response(201, NoticeOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Post a notice (agents, process owners, admins): 422 naming each field that is wrong (an
        unknown level, a record the caller may not read, an estimate before the start). Audited."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: _one(user, svc.status.post(user, body).id))


@blp.route("/status/<int:notice_id>")
class NoticeView(MethodView):
    @blp.response(200, NoticeOut)
    @blp.doc(security=SECURITY)
    def get(self, notice_id: int) -> dict[str, Any]:
        """One notice with its timeline, oldest first (everyone signed in); 404 for an unknown id."""
        user = current_user()
        return unit_of_work(lambda: _one(user, notice_id))


@blp.route("/status/<int:notice_id>/updates")
class NoticeUpdatesView(MethodView):
    @checked_first(lambda svc, user: svc.status.require_poster(user, "status_notice_update"))
    @blp.arguments(NoticeUpdateIn)
    @blp.response(200, NoticeOut)
    @blp.alt_response(409, description="Resolved, or updated since the version sent (details.current_version)")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], notice_id: int) -> dict[str, Any]:
        """Post an update (the desk's staff): what the desk says now, and optionally a new level,
        title and estimate of the end (null: none). Those who said it affects them are told.
        Audited."""
        user = current_user()
        svc = services()
        values = {key: value for key, value in body.items() if key != "version"}
        return unit_of_work(lambda: _one(user, svc.status.update(user, notice_id, body["version"], values).id))


@blp.route("/status/<int:notice_id>/resolve")
class NoticeResolveView(MethodView):
    @checked_first(lambda svc, user: svc.status.require_poster(user, "status_notice_resolve"))
    @blp.arguments(NoticeResolveIn)
    @blp.response(200, NoticeOut)
    @blp.alt_response(409, description="Resolved already, or updated since the version sent")
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], notice_id: int) -> dict[str, Any]:
        """Resolve a notice with the desk's last word (the desk's staff): it leaves the banners.
        Those who said it affects them are told. Audited."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: _one(user, svc.status.resolve(user, notice_id, body["version"],
                                                                  {"body": body["body"]}).id))


@blp.route("/status/<int:notice_id>/affected")
class AffectedView(MethodView):
    @blp.arguments(AffectedIn)
    @blp.response(200, NoticeOut)
    @blp.alt_response(409, description="The notice is resolved")
    @blp.doc(security=SECURITY)
    def put(self, body: dict[str, Any], notice_id: int) -> dict[str, Any]:
        """Say the notice affects the caller (they are told its updates and its resolution), or
        take it back (everyone signed in). 409 for a resolved notice."""
        user = current_user()
        svc = services()
        return unit_of_work(lambda: _one(user, svc.status.set_affected(user, notice_id, body["affected"]).id))


@blp.route("/tickets/<string:number>/status")
class RecordNoticesView(MethodView):
    @blp.response(200, StatusBoardOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """The service status notices posted about a record (404 unless the caller may read it):
        current ones worst first, planned ones soonest first, then every resolved one newest first."""
        user = current_user()
        svc = services()

        def read() -> dict[str, Any]:
            return board_dict(svc.status.of_record(user, number))

        return unit_of_work(read)
