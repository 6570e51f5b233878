"""Time worked on a record: the desk's staff log it, auditors read it (app/services/worklog.py decides)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import WorkLog
from app.schemas.worklog import RecordWorkOut, WorkIn, WorkOut

from . import checked_first, current_user, services, unit_of_work

blp = Blueprint("worklog", __name__, url_prefix="/api/v1", description="Time worked")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def work_dict(entry: WorkLog, removable: bool) -> dict[str, Any]:
    return {"id": entry.id, "user": entry.user_name, "minutes": entry.minutes, "worked_on": entry.worked_on,
            "note": entry.note, "created_at": entry.created_at, "removable": removable}


@blp.route("/tickets/<string:number>/time-worked")
class RecordWorkView(MethodView):
    @checked_first(lambda svc, user: svc.work.require_reader(user))
    @blp.response(200, RecordWorkOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """A record's time worked, newest day first, and its total (the desk's staff and auditors;
        404 unless the caller may read the record)."""
        user = current_user()
        svc = services()

        def read() -> dict[str, Any]:
            ticket, work = svc.work.of_record(user, number)
            return {"number": ticket.number, "total_minutes": work.total_minutes,
                    "items": [work_dict(e, e.id in work.removable) for e in work.entries]}

        return unit_of_work(read)

    @checked_first(lambda svc, user: svc.work.require_writer(user))
    @blp.arguments(WorkIn)
    @blp.response(201, WorkOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Log time worked on a record (agents, process owners, admins): 422 naming the field for
        minutes outside 1 to 1,440 or past a day's 24 hours of the caller's entries, a day after
        today or more than a year back. Audited."""
        user = current_user()
        return unit_of_work(lambda: work_dict(services().work.log(user, number, body), True))


@blp.route("/tickets/<string:number>/time-worked/<int:entry_id>")
class RecordWorkEntryView(MethodView):
    @checked_first(lambda svc, user: svc.work.require_writer(user, "remove_work_log"))
    @blp.response(204)
    @blp.doc(security=SECURITY)
    def delete(self, number: str, entry_id: int) -> None:
        """Remove an entry: who logged it, or an admin (403 for anyone else; 404 for an entry of
        another record). Audited."""
        user = current_user()
        unit_of_work(lambda: services().work.remove(user, number, entry_id))
