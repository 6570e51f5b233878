"""Section d: do list and history queries stay fast as the database grows?

Ten real incident instances are made through the API in a spread of states (2 waiting for triage,
2 being investigated, 1 waiting for the requester's confirmation, 5 closed), then copied with SQL
(``INSERT ... SELECT`` joined with a helper table of copy numbers, in batches) until the database
holds the wanted number of instances: their ``process_instance``, ``human_task``, ``ticket`` and
``audit_event`` rows, with new ids, new record numbers (``B<copy>-INC-...``) and new audit ``seq``
values. The engine is not involved. Copied audit events keep the hashes of the rows they were
copied from, so the chain does not verify after a bulk fill; ``seq`` stays unique and the chain
head is moved past the largest ``seq`` so later real events would still get unique numbers.
After each fill the tables are ANALYZEd (as autovacuum would eventually do).

Measured at each size, as the agent (ServiceDesk) through the test client: the task inbox
``GET /tasks``, the filtered record list ``GET /tickets?kind=incident&status=in_progress&sort=-opened_at``
and the history of one closed template instance ``GET /instances/<id>/history`` (its own history
has the same length at every size). The two sizes are two databases, built the same way; the calls
alternate between them (after warm-up calls), so that a noisy machine's drift hits both sizes
alike. Median of the repeated calls.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from .common import Desk, Seeds, fresh_database, log, median, open_task
from .lifecycle import CONFIRM, RESOLVE, TRIAGE, complete, start_incident

#: Template instances by state: how many, and how far each gets through the lifecycle.
TEMPLATE_MIX = (("new", 2), ("in_progress", 2), ("resolved", 1), ("closed", 5))
QUERIES = {
    "inbox": "/api/v1/tasks",
    "record_list": "/api/v1/tickets?kind=incident&status=in_progress&sort=-opened_at",
    "history": "/api/v1/instances/{history_id}/history",
}
COPY_BATCH = 500  # copies per INSERT ... SELECT (x 10 instances, ~100 audit events per copy)


def make_templates(desk: Desk) -> dict[str, Any]:
    ids: dict[str, list[int]] = {}
    for state, count in TEMPLATE_MIX:
        for _ in range(count):
            instance = start_incident(desk)
            if state != "new":
                instance = complete(desk, "alex", open_task(instance, "triage"), TRIAGE)
            if state in ("resolved", "closed"):
                instance = complete(desk, "alex", open_task(instance, "investigate"), RESOLVE)
            if state == "closed":
                instance = complete(desk, "rita", open_task(instance, "confirm_resolution"), CONFIRM)
            ids.setdefault(state, []).append(instance["id"])
    return ids


class BulkFiller:
    """Copies the template rows; ``fill_to(n)`` grows the instance count to exactly ``n``."""

    def __init__(self, desk: Desk) -> None:
        from app.models import Base

        self.desk = desk
        self.tables = Base.metadata.tables
        with desk.ext.db_engine.begin() as conn:
            scalar = lambda sql: int(conn.execute(text(sql)).scalar() or 0)  # noqa: E731
            self.templates = scalar("SELECT count(*) FROM process_instance")
            self.max = {
                "process_instance": scalar("SELECT max(id) FROM process_instance"),
                "human_task": scalar("SELECT max(id) FROM human_task"),
                "ticket": scalar("SELECT max(id) FROM ticket"),
                "audit_event": scalar("SELECT max(id) FROM audit_event"),
                "seq": scalar("SELECT max(seq) FROM audit_event"),
            }
            if self.templates != self.max["process_instance"]:
                raise RuntimeError("bulk fill expects a fresh database whose instance ids are 1..n")
            conn.execute(text("CREATE TABLE bench_copy (c INTEGER PRIMARY KEY)"))
        self.copies = 0

    def _columns(self, table: str, overrides: dict[str, str]) -> tuple[str, str]:
        names = [c.name for c in self.tables[table].columns]
        quoted = ", ".join(f'"{n}"' for n in names)
        select = ", ".join(overrides.get(n, f't."{n}"') for n in names)
        return quoted, select

    def _statements(self) -> list[str]:
        m = self.max
        plans = {
            "process_instance": ({"id": f"t.id + k.c * {m['process_instance']}"}, "t.id <= {pi}"),
            "human_task": ({"id": f"t.id + k.c * {m['human_task']}",
                            "instance_id": f"t.instance_id + k.c * {m['process_instance']}"}, "t.id <= {ht}"),
            "ticket": ({"id": f"t.id + k.c * {m['ticket']}",
                        "instance_id": f"t.instance_id + k.c * {m['process_instance']}",
                        "number": "'B' || k.c || '-' || t.number"}, "t.id <= {tk}"),
            "audit_event": ({"id": f"t.id + k.c * {m['audit_event']}",
                             "seq": f"t.seq + k.c * {m['seq']}",
                             "instance_id": f"t.instance_id + k.c * {m['process_instance']}",
                             "task_id": f"t.task_id + k.c * {m['human_task']}"},
                            "t.id <= {ae} AND t.instance_id IS NOT NULL"),
        }
        limits = {"pi": m["process_instance"], "ht": m["human_task"], "tk": m["ticket"], "ae": m["audit_event"]}
        out = []
        for table, (overrides, where) in plans.items():
            cols, select = self._columns(table, overrides)
            out.append(f'INSERT INTO "{table}" ({cols}) SELECT {select} FROM "{table}" t, bench_copy k '
                       f"WHERE k.c BETWEEN :lo AND :hi AND {where.format(**limits)}")
        return out

    def fill_to(self, instances: int) -> dict[str, Any]:
        wanted = instances // self.templates - 1
        if wanted * self.templates + self.templates != instances:
            raise ValueError(f"{instances} is not a multiple of {self.templates} templates")
        started = time.perf_counter()
        engine = self.desk.ext.db_engine
        statements = self._statements()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_copy (c) VALUES (:c)"),
                         [{"c": c} for c in range(self.copies + 1, wanted + 1)])
        lo = self.copies + 1
        while lo <= wanted:
            hi = min(lo + COPY_BATCH - 1, wanted)
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(text(statement), {"lo": lo, "hi": hi})
            lo = hi + 1
        self.copies = wanted
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_head SET last_seq = (SELECT max(seq) FROM audit_event) WHERE id = 1"))
            if engine.dialect.name == "postgresql":
                for table in ("process_instance", "human_task", "ticket", "audit_event"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT max(id) FROM \"{table}\"))"))
        with engine.begin() as conn:  # both SQLite and PostgreSQL run ANALYZE inside a transaction
            conn.execute(text("ANALYZE"))
        with engine.connect() as conn:
            counts: dict[str, float] = {
                table: int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar() or 0)
                for table in ("process_instance", "human_task", "ticket", "audit_event")}
        counts["fill_seconds"] = round(time.perf_counter() - started, 1)
        return counts


def time_queries(desks: dict[str, Desk], history_ids: dict[str, int], repeats: int, warmup: int = 2) -> dict[str, Any]:
    """Each query on every database in turn (small, large, small, ...), so that drift of a noisy
    machine hits both sizes alike; the median per database and query."""
    durations: dict[str, dict[str, list[float]]] = {size: {q: [] for q in QUERIES} for size in desks}
    totals: dict[str, dict[str, Any]] = {size: {} for size in desks}
    for round_no in range(warmup + repeats):
        for name, path in QUERIES.items():
            for size, desk in desks.items():
                reply = desk.call("GET", path.format(history_id=history_ids[size]), "alex")
                if round_no >= warmup:
                    durations[size][name].append(reply.seconds)
                    body = reply.body
                    totals[size][name] = body["total"] if "total" in body else len(body.get("events", []))
    return {size: {name: {"median_ms": median(values) * 1000, "samples": len(values),  # type: ignore[operator]
                          "result_total": totals[size][name]}
                   for name, values in per_query.items()}
            for size, per_query in durations.items()}


def run_scale(seeds: Seeds, kind: str, sizes: tuple[int, int], repeats: int) -> dict[str, Any]:
    """Two databases filled to the small and the large size from the same templates, queried in turn.

    The templates are made once (in a copy of the seed), then that database is copied for the
    large size, so both hold the very same ten real instances before the bulk fill."""
    small, large = (str(n) for n in sizes)
    results: dict[str, Any] = {"database": kind, "sizes": {}}
    with seeds.copy(kind, "scale_small") as small_url:
        desks: dict[str, Desk] = {}
        try:
            desks[small] = Desk(small_url, create_users=False)
            templates = make_templates(desks[small])
            desks[small].ext.db_engine.dispose()  # nobody may be connected to a template database
            with fresh_database(kind, "scale_large", source=small_url) as large_url:
                desks[large] = Desk(large_url, create_users=False)
                for size, desk in desks.items():
                    counts = BulkFiller(desk).fill_to(int(size))
                    log(f"    scale: {int(size):,} instances ({counts['audit_event']:,} audit events) "
                        f"filled in {counts['fill_seconds']} s")
                    results["sizes"][size] = {"rows": counts}
                history_id = templates["closed"][0]
                results.update({"templates": templates, "history_instance": history_id})
                for size, timings in time_queries(desks, {small: history_id, large: history_id}, repeats).items():
                    results["sizes"][size]["queries"] = timings
        finally:
            for desk in desks.values():
                desk.close()
    return results
