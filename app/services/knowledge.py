"""Knowledge articles: known errors published from problems, and articles the desk's staff write.

Lifecycle: ``draft`` -> ``published`` -> ``retired``, and a retired article may be published
again. Drafts may be retired too (a draft nobody wants any more). The staff (``policy.
DESK_STAFF_ROLES``: agents, process owners, admins) write drafts, edit, publish and retire;
everyone signed in reads published articles. A draft or a retired article is not found
(``NotFound``) by anyone else: its existence is not revealed.

Each saved edit keeps the text it replaces as a ``KnowledgeRevision`` and raises the article's
``version``. The editor names the version they edited: a stale one is a ``Conflict`` naming the
current version (``details["current_version"]``), decided by a conditional UPDATE so that two
concurrent edits of the same version cannot both win. An edit that changes nothing saves nothing.

An article published from a problem keeps the problem as its source. What the problem is now
(its status, and its fix change with that change's status, when the problem's details name one)
is read each time an article is shown (``article_dicts``): never stored with the article.

Every change is audited: ``knowledge_drafted``, ``knowledge_edited``, ``knowledge_published``
(also when a problem publishes a known error, and for a republished article: ``republished``),
``knowledge_retired``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Select, case, func, inspect, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db import LIKE_ESCAPE, SEARCH_WORDS, like_literal
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import KnowledgeArticle, KnowledgeFeedback, KnowledgeRevision, Ticket, User

from . import policy
from .audit import AuditLog
from .forms import bidi_control_message, too_long
from .records import RecordService

DRAFT, PUBLISHED, RETIRED = "draft", "published", "retired"
STATUSES = (DRAFT, PUBLISHED, RETIRED)
#: The longest title (the column's size), text field and change note accepted.
MAX_TITLE = 500
MAX_TEXT = 20000
MAX_NOTE = 500
#: The largest version an article can reach: its ``version`` column is a 32-bit integer.
MAX_VERSION = 2**31 - 1
#: The article's texts, in the order forms and answers show them.
TEXT_FIELDS = ("title", "symptoms", "cause", "workaround")
#: Where each status may go: publish from a draft or a retired article; retire a draft or a
#: published one.
PUBLISHABLE = frozenset({DRAFT, RETIRED})
RETIRABLE = frozenset({DRAFT, PUBLISHED})


#: Words too common to tell one problem from another: left out of what :meth:`KnowledgeService.related`
#: looks for (shorter words are left out anyway).
_COMMON_WORDS = frozenset("""
    about after again all also and any are because been before but can cannot could did does doesn
    don for from get gets got had has have how into isn its just keep keeps more not now off once
    only our out over please since some still than that the their them then there these they this
    too very was wasn were what when where which while who why will with won would you your
""".split())
#: A run of Han characters (Chinese has no spaces between words: its pairs of characters are looked for).
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")
#: At most so many words of a text are looked for; at most so many articles are suggested.
RELATED_WORDS = 8
RELATED_ARTICLES = 5
#: An article nobody said was helpful or not (``KnowledgeService.feedback_of``).
_NO_FEEDBACK: Mapping[str, Any] = {"helpful_count": 0, "not_helpful_count": 0, "my_feedback": None}


def _stem(word: str) -> str:
    """``word`` without an English ending that varies between the same problem's descriptions,
    as a part of a word to look for: "dropping", "drops", "dropped": "drop"; "crashes": "crash";
    "files": "file"; "minutes": "minute". Letters English doubles before -ing and -ed are undone
    ("runn-ing"); a word's own double letter stays ("calling": "call", "missing": "miss"), as
    do "-eed" ("speed"), "-ss", "-us" and "-is" ("access", "status", "analysis")."""
    if not word.isascii():
        return word
    if word.endswith("ing") and len(word) >= 6:
        return _undouble(word[:-3])
    if word.endswith("ed") and len(word) >= 5 and not word.endswith("eed"):
        return _undouble(word[:-2])
    if word.endswith("es") and len(word) >= 5 and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]
    if word.endswith("s") and len(word) >= 4 and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _undouble(stem: str) -> str:
    return stem[:-1] if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] in "bdgmnprt" else stem


def _kept(word: str) -> list[str]:
    if len(word) < 3 or word in _COMMON_WORDS:
        return []
    stem = _stem(word)
    return [stem] if len(stem) >= 3 and stem not in _COMMON_WORDS else []


def related_terms(text: str) -> list[str]:
    """What of ``text`` (a requester's description of a problem) :meth:`KnowledgeService.related`
    looks for: its distinct words of three letters or more that are not common ones, lowercased
    and without a varying English ending (``_stem``), and each pair of adjacent Han characters;
    the first ``RELATED_WORDS``. Punctuation and "_" part words."""
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        runs = _HAN.findall(word)
        if runs:
            found = [run[i:i + 2] for run in runs for i in range(max(1, len(run) - 1))]
            found += [kept for rest in _HAN.sub(" ", word).split() for kept in _kept(rest)]
        else:
            found = _kept(word)
        for term in found:
            if term not in terms:
                terms.append(term)
    return terms[:RELATED_WORDS]


#: How :meth:`KnowledgeService.search` may order what it finds.
SORTS = ("newest", "most_helpful", "least_helpful")


def helped_count() -> Any:
    """Per group of feedback rows: how many said the article helped."""
    return func.sum(case((KnowledgeFeedback.helpful, 1), else_=0))


def not_helped_count() -> Any:
    """Per group of feedback rows: how many said the article did not help."""
    return func.sum(case((KnowledgeFeedback.helpful, 0), else_=1))


def _votes() -> Any:
    """Per article that readers answered for: helpful answers less unhelpful ones (``net``)."""
    return select(KnowledgeFeedback.article_id,
                  func.sum(case((KnowledgeFeedback.helpful, 1), else_=-1)).label("net")
                  ).group_by(KnowledgeFeedback.article_id).subquery()


def is_knowledge_staff(user: User) -> bool:
    """The user writes, edits, publishes and retires articles, and reads every status."""
    return user.has_role(*policy.DESK_STAFF_ROLES)


def visible_statuses(user: User) -> tuple[str, ...]:
    return STATUSES if is_knowledge_staff(user) else (PUBLISHED,)


def check_texts(values: Mapping[str, Any], *, title_required: bool) -> dict[str, str]:
    """The article's texts (and ``note``) from ``values``, cleaned (the title stripped), or
    ValidationFailed naming each bad field: a missing or empty title (when ``title_required``, or
    given empty), a text over its limit, bidirectional control characters (as forms refuse them)."""
    errors: dict[str, list[str]] = {}
    clean: dict[str, str] = {}
    for name in (*TEXT_FIELDS, "note"):
        if name not in values or values[name] is None:
            if name == "title" and title_required:
                errors[name] = ["is required"]
            continue
        text = str(values[name])
        if name == "title":
            text = " ".join(text.split())  # one line: a title is shown in lists and headings
            if not text:
                errors[name] = ["is required"]
                continue
        limit = MAX_TITLE if name == "title" else MAX_NOTE if name == "note" else MAX_TEXT
        problems: list[str] = []
        if len(text) > limit:
            problems.append(too_long(limit))
        if (bidi := bidi_control_message(text)) is not None:
            problems.append(bidi)
        if problems:
            errors[name] = problems
        else:
            clean[name] = text
    if errors:
        raise ValidationFailed("the article is not valid: " + ", ".join(sorted(errors)), details={"fields": errors})
    return clean


class KnowledgeService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records

    # -- known errors from problems ---------------------------------------------------------------

    def publish(self, actor: User | None, *, title: str, symptoms: str, cause: str, workaround: str,
                source: Ticket | None) -> KnowledgeArticle:
        """Publish a known-error article; link it from its source record and that record's incidents."""
        title = title.strip()
        if not title:
            raise ValidationFailed("article title is empty", details={"fields": {"title": ["is required"]}})
        number = self.records.allocate_number("knowledge")
        now = self.clock.now()
        article = KnowledgeArticle(number=number, title=title[:MAX_TITLE], symptoms=symptoms, cause=cause,
                                   workaround=workaround, status=PUBLISHED, version=1,
                                   source_ticket_id=source.id if source else None, created_at=now,
                                   created_by_id=actor.id if actor else None, published_at=now)
        self.session.add(article)
        self.session.flush()
        if source is not None:
            targets = [source, *self.records.linked_tickets(source, "incident")]
            for ticket in targets:
                if ticket is not source and not inspect(ticket).attrs.details.history.has_changes():
                    # Another process's record: read as it is now and kept so until this commits,
                    # or its own step's write at the same moment is put back (or drops this one).
                    self.session.refresh(ticket, attribute_names=["details"], with_for_update=True)
                details = dict(ticket.details or {})
                articles = list(details.get("knowledge_articles", []))
                if number not in articles:
                    details["knowledge_articles"] = [*articles, number]
                    ticket.details = details
        self.audit.record("knowledge_published", actor, instance_id=source.instance_id if source else None,
                          payload={"number": number, "title": article.title, "source": source.number if source else None},
                          actor_name=None if actor else "engine")
        return article

    def revise_known_error(self, actor: User | None, number: str, *, title: str, symptoms: str, cause: str,
                           workaround: str, source: Ticket) -> KnowledgeArticle:
        """A problem's new analysis changed its known error: its article ``number`` takes the new
        texts as its next version, the replaced ones kept as a revision, as an edit by hand would
        (audited ``knowledge_edited``; its status stays: a retired article stays retired). Only
        the article ``source`` published: for another number (or none) a new article is published
        (:meth:`publish`), so that a diagram cannot rewrite someone else's article."""
        article = self.session.scalar(select(KnowledgeArticle).where(
            KnowledgeArticle.number == str(number).upper(), KnowledgeArticle.source_ticket_id == source.id))
        if article is None:
            return self.publish(actor, title=title, symptoms=symptoms, cause=cause, workaround=workaround, source=source)
        wanted = {"title": title.strip()[:MAX_TITLE] or article.title, "symptoms": symptoms, "cause": cause,
                  "workaround": workaround}
        return self._revise(article, actor, wanted, f"{source.number}: a new analysis", instance_id=source.instance_id)

    # -- reading ----------------------------------------------------------------------------------

    def search(self, q: str | None, page: int, per_page: int, *, user: User | None = None,
               status: str | None = None, sort: str = "newest") -> tuple[list[KnowledgeArticle], int]:
        """Articles matching every word of ``q`` (literal text) in any text or the number, in the
        order ``sort`` names (``SORTS``: the newest first, or by readers' answers to "Was this
        article helpful?", helpful less unhelpful: the most helpful first, or the least, which the
        staff look at to see what needs work). Published ones only, unless ``user`` is staff and
        asks for a ``status`` (one of ``STATUSES``, or ``all``); a status the user may not read
        finds nothing."""
        wanted = (PUBLISHED,) if not status else STATUSES if status == "all" else (status,)
        allowed = visible_statuses(user) if user is not None else (PUBLISHED,)
        statuses = [s for s in wanted if s in allowed]
        query: Select[tuple[KnowledgeArticle]] = select(KnowledgeArticle).where(KnowledgeArticle.status.in_(statuses))
        for word in (q or "").lower().split()[:SEARCH_WORDS]:
            # the words are literal text: a % or _ in them matches only itself (as in ticket search)
            needle = f"%{like_literal(word)}%"
            query = query.where(or_(*(func.lower(col).like(needle, escape=LIKE_ESCAPE) for col in (
                KnowledgeArticle.title, KnowledgeArticle.symptoms, KnowledgeArticle.cause, KnowledgeArticle.workaround,
                KnowledgeArticle.number))))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        if sort in ("most_helpful", "least_helpful"):
            votes = _votes()
            net = func.coalesce(votes.c.net, 0)
            query = query.outerjoin(votes, votes.c.article_id == KnowledgeArticle.id).order_by(
                net.desc() if sort == "most_helpful" else net.asc())
        rows = list(self.session.scalars(query.order_by(KnowledgeArticle.id.desc()).offset((page - 1) * per_page).limit(per_page)))
        return rows, total

    def related(self, text: str | None, limit: int = RELATED_ARTICLES) -> list[KnowledgeArticle]:
        """Published articles about what ``text`` describes, best first: what a requester typing
        the title of an incident is offered to read before sending it (self-help).

        Unlike :meth:`search` (every word must be there), an article is found by any of the
        text's words (``related_terms``): each found in its title counts two, found in its
        symptoms, cause or workaround one, and an article counting less than two is left out (one
        shared word of the body is chance). Ties: the one more readers found helpful (:meth:`rate`:
        helpful answers less unhelpful ones), then the newest."""
        terms = related_terms(text or "")
        if not terms:
            return []
        body = (KnowledgeArticle.symptoms, KnowledgeArticle.cause, KnowledgeArticle.workaround)

        def found(column: Any, term: str) -> Any:
            return func.lower(column).like(f"%{like_literal(term)}%", escape=LIKE_ESCAPE)

        score: Any = literal(0)
        for term in terms:
            score = score + case((found(KnowledgeArticle.title, term), 2), else_=0) + case(
                (or_(*(found(column, term) for column in body)), 1), else_=0)
        scored = select(KnowledgeArticle.id, score.label("score")).where(
            KnowledgeArticle.status == PUBLISHED).subquery()
        votes = _votes()
        ranked = (select(KnowledgeArticle).join(scored, scored.c.id == KnowledgeArticle.id)
                  .outerjoin(votes, votes.c.article_id == KnowledgeArticle.id).where(scored.c.score >= 2)
                  .order_by(scored.c.score.desc(), func.coalesce(votes.c.net, 0).desc(), KnowledgeArticle.id.desc())
                  .limit(limit))
        return list(self.session.scalars(ranked))

    def get(self, number: str) -> KnowledgeArticle:
        """The article numbered ``number`` whatever its status (no check: see ``find``)."""
        article = self.session.scalar(select(KnowledgeArticle).where(KnowledgeArticle.number == number.strip().upper()[:32]))
        if article is None:
            raise NotFound(f"no article {number}")
        return article

    def find(self, user: User, number: str) -> KnowledgeArticle:
        """The article if ``user`` may read it; NotFound otherwise (also for a draft or a retired
        article that only the staff read)."""
        article = self.get(number)
        if article.status not in visible_statuses(user):
            raise NotFound(f"no article {number}")
        return article

    def revisions(self, user: User, number: str) -> list[KnowledgeRevision]:
        """The earlier texts of an article, newest first (staff only: PermissionDenied for anyone
        else who reads the article, NotFound for who does not)."""
        article = self.find(user, number)
        if not is_knowledge_staff(user):
            raise PermissionDenied("only the desk's staff read an article's earlier versions")
        return list(self.session.scalars(select(KnowledgeRevision).where(KnowledgeRevision.article_id == article.id)
                                         .order_by(KnowledgeRevision.version.desc())))

    def source_number(self, article: KnowledgeArticle) -> str | None:
        if article.source_ticket_id is None:
            return None
        ticket = self.session.get(Ticket, article.source_ticket_id)
        return ticket.number if ticket else None

    def article_dicts(self, articles: Iterable[KnowledgeArticle], viewer: User) -> list[dict[str, Any]]:
        """The articles as the API and the pages show them to ``viewer``, each with its source
        problem as it is now (``source``, ``source_status``) and that problem's fix change
        (``fix_change``: number and status, or None). The problem's status and its fix change only
        when ``viewer`` may see those records (``RecordService.may_see``): a requester reading a
        known error learns its problem's number, as before, not the records behind it. At most
        four queries whatever the number of articles."""
        rows = list(articles)
        source_ids = {a.source_ticket_id for a in rows if a.source_ticket_id is not None}
        sources = {t.id: t for t in self.session.scalars(select(Ticket).where(Ticket.id.in_(source_ids)))} if source_ids else {}
        fix_numbers = {str(n) for t in sources.values() if (n := (t.details or {}).get("fix_change"))}
        fixes = {t.number: t for t in self.session.scalars(select(Ticket).where(Ticket.number.in_(fix_numbers)))} \
            if fix_numbers else {}
        named = {t.number for t in sources.values()} | set(fixes)
        seen = set(self.records.visible_by_number(viewer, named)) if named else set()
        votes = self.feedback_of([a.id for a in rows], viewer)
        found = []
        for a in rows:
            source = sources.get(a.source_ticket_id) if a.source_ticket_id is not None else None
            shown = source is not None and source.number in seen
            fix_number = (source.details or {}).get("fix_change") if shown and source is not None else None
            fix = fixes.get(str(fix_number)) if fix_number else None
            if fix_number and str(fix_number) not in seen:
                fix_number = fix = None
            found.append({
                "number": a.number, "title": a.title, "symptoms": a.symptoms, "cause": a.cause,
                "workaround": a.workaround, "status": a.status, "version": a.version,
                "source": source.number if source else None,
                "source_status": source.status if source is not None and shown else None,
                "fix_change": {"number": str(fix_number), "status": fix.status if fix else None} if fix_number else None,
                "created_at": a.created_at, "created_by": a.created_by.username if a.created_by else None,
                "updated_at": a.updated_at, "updated_by": a.updated_by.username if a.updated_by else None,
                "published_at": a.published_at, **votes.get(a.id, _NO_FEEDBACK)})
        return found

    def feedback_of(self, article_ids: list[int], viewer: User) -> dict[int, dict[str, Any]]:
        """Per article: how many readers found it helpful (``helpful_count``) and how many did not
        (``not_helpful_count``), and ``viewer``'s own answer (``my_feedback``: true, false or None
        for none), in one query. Articles nobody answered for are left out."""
        if not article_ids:
            return {}
        answers = self.session.execute(select(
            KnowledgeFeedback.article_id,
            helped_count(),
            not_helped_count(),
            func.max(case((KnowledgeFeedback.user_id == viewer.id, case((KnowledgeFeedback.helpful, 2), else_=1)),
                          else_=0)),
        ).where(KnowledgeFeedback.article_id.in_(article_ids)).group_by(KnowledgeFeedback.article_id)).all()
        return {article_id: {"helpful_count": int(yes or 0), "not_helpful_count": int(no or 0),
                             "my_feedback": {2: True, 1: False}.get(int(mine or 0))}
                for article_id, yes, no, mine in answers}

    def rate(self, user: User, number: str, helpful: bool) -> dict[str, Any]:
        """``user``'s answer to "Was this article helpful?" for published article ``number``: one
        per reader, an answer given again replaces theirs. Everyone who reads the article may
        answer (a requester who found the fix is who the question is for). Audited
        ``knowledge_rated`` when the answer is new or changed. Returns the article's counts and
        the answer (``feedback_of``).

        NotFound for an article ``user`` may not read; PermissionDenied (audited) for a read-only
        auditor (``policy.is_read_only``), who writes nothing; Conflict ``not_published`` for a
        draft or a retired one (staff read them, readers do not answer for them)."""
        article = self.find(user, number)
        if policy.is_read_only(user):
            self.audit.refuse(user, "rate_article", reason="read-only role", number=article.number)
            raise PermissionDenied("an auditor reads the knowledge base and answers nothing")
        if article.status != PUBLISHED:
            raise Conflict(f"{article.number} is {article.status}: only a published article is rated",
                           code="not_published")
        now = self.clock.now()
        mine = select(KnowledgeFeedback).where(KnowledgeFeedback.article_id == article.id,
                                               KnowledgeFeedback.user_id == user.id)
        row = self.session.scalar(mine.with_for_update())
        changed = False
        if row is None:
            try:
                with self.session.begin_nested():
                    self.session.add(KnowledgeFeedback(article_id=article.id, user_id=user.id, helpful=helpful,
                                                       created_at=now, updated_at=now))
                changed = True
            except IntegrityError:  # the same reader's answer from another tab, a moment earlier
                row = self.session.scalar(mine.with_for_update())
        if row is not None:
            changed = row.helpful != helpful
            if changed:
                row.helpful, row.updated_at = helpful, now
        if changed:
            self.audit.record("knowledge_rated", user, payload={"article": article.number, "helpful": helpful})
        self.session.flush()
        return {"number": article.number, **self.feedback_of([article.id], user).get(article.id, _NO_FEEDBACK)}

    # -- articles on records ----------------------------------------------------------------------

    def require_attacher(self, user: User, ticket: Ticket | None = None) -> None:
        """PermissionDenied (audited, naming the record when known) unless ``user`` attaches
        articles to records: the desk's staff (``is_knowledge_staff``)."""
        if not is_knowledge_staff(user):
            self.audit.refuse(user, "attach_article", reason="needs agent, process_owner or admin",
                              number=ticket.number if ticket else None, instance_id=ticket.instance_id if ticket else None)
            raise PermissionDenied("only the desk's staff attach knowledge articles to records")

    def suggested_for(self, user: User, ticket: Ticket, limit: int = 3) -> list[KnowledgeArticle]:
        """The published articles about what ``ticket`` says (its title, then its description:
        :meth:`related`) that it does not list yet: what its page offers the desk's staff to
        attach with one click. None for anyone else, or for a closed record (its articles no
        longer change: :meth:`attach`)."""
        if not is_knowledge_staff(user) or ticket.closed_at is not None:
            return []
        listed = {str(n) for n in (ticket.details or {}).get("knowledge_articles") or []}
        found = self.related(f"{ticket.title} {ticket.description or ''}", limit=limit + len(listed))
        return [a for a in found if a.number not in listed][:limit]

    def attach(self, user: User, ticket_number: str, article_number: str) -> tuple[Ticket, bool]:
        """Attach published article ``article_number`` to record ``ticket_number`` (its details'
        ``knowledge_articles``, where a problem's known error lists itself on its incidents): the
        article that describes the record's fault or answers its question, as an agent attaches it
        in a service desk tool. The desk's staff only (``is_knowledge_staff``), on a record they act
        on (not as a mere watcher); audited ``knowledge_attached``. Returns the record and whether
        the article was new on it (attached twice, it is listed once).

        NotFound for a record the user does not see; PermissionDenied (audited) for anyone but the
        staff; Conflict ``record_closed`` for a closed record; ValidationFailed naming ``number``
        for an article that is not there or not published (a draft is not ready to point to, a
        retired one no longer holds)."""
        ticket = self.records.get(user, ticket_number, action="attach_article")
        self.require_attacher(user, ticket)
        # Its list as it is now, and kept so until this commits: two attachments at once would
        # both find the article missing (listed once, audited twice) or each drop the other's.
        self.session.refresh(ticket, attribute_names=["details", "closed_at"], with_for_update=True)
        if ticket.closed_at is not None:
            # a closed record's details no longer change (QA: an attach rewrote a closed record)
            raise Conflict(f"{ticket.number} is closed: its articles no longer change", code="record_closed")
        article = self.session.scalar(select(KnowledgeArticle).where(
            KnowledgeArticle.number == article_number.strip().upper()[:32]))
        if article is None or article.status != PUBLISHED:
            why = "no such article" if article is None else f"it is {article.status}: only a published article is attached"
            raise ValidationFailed("article cannot be attached", details={"fields": {"number": [
                f"{article_number.strip().upper()[:32]}: {why}"]}})
        details = dict(ticket.details or {})
        listed = [str(n) for n in details.get("knowledge_articles") or []]
        if article.number in listed:
            return ticket, False
        details["knowledge_articles"] = [*listed, article.number]
        ticket.details = details
        ticket.updated_at = self.clock.now()
        self.audit.record("knowledge_attached", user, instance_id=ticket.instance_id,
                          payload={"number": ticket.number, "article": article.number, "title": article.title})
        return ticket, True

    # -- writing (staff) --------------------------------------------------------------------------

    def require_writer(self, user: User, number: str | None = None) -> None:
        """PermissionDenied (audited, with the article's number when one is named) unless ``user`` writes
        knowledge articles (agents, process owners, admins)."""
        if not is_knowledge_staff(user):
            self.audit.refuse(user, "write_knowledge", reason="needs agent, process_owner or admin", number=number)
            raise PermissionDenied("only the desk's staff write knowledge articles")

    def _writable(self, user: User, number: str) -> KnowledgeArticle:
        """The article a staff member changes: NotFound for whoever may not read it, then
        PermissionDenied for a reader who may not write."""
        article = self.find(user, number)
        self.require_writer(user, article.number)
        return article

    @staticmethod
    def _current(article: KnowledgeArticle, version: int | None) -> None:
        if version is not None and version != article.version:
            raise Conflict(f"{article.number} was changed by someone else: it is at version {article.version} now, "
                           f"not {version}", details={"current_version": article.version})

    def draft(self, user: User, values: Mapping[str, Any]) -> KnowledgeArticle:
        """A new draft article from ``values`` (title required; symptoms, cause, workaround)."""
        self.require_writer(user)
        texts = check_texts(values, title_required=True)
        number = self.records.allocate_number("knowledge")
        now = self.clock.now()
        article = KnowledgeArticle(number=number, title=texts["title"], symptoms=texts.get("symptoms", ""),
                                   cause=texts.get("cause", ""), workaround=texts.get("workaround", ""),
                                   status=DRAFT, version=1, created_at=now, created_by_id=user.id)
        self.session.add(article)
        self.session.flush()
        self.audit.record("knowledge_drafted", user, payload={"number": number, "title": article.title})
        return article

    def edit(self, user: User, number: str, version: int, values: Mapping[str, Any]) -> KnowledgeArticle:
        """Save new texts over ``version`` of a draft or published article (the fields given in
        ``values``; ``note`` says why). The replaced text is kept as a revision and the version
        goes up by one. Conflict for a stale ``version`` or a retired article (publish it again
        first); ValidationFailed naming bad fields."""
        article = self._writable(user, number)
        if article.status == RETIRED:
            raise Conflict(f"{article.number} is retired: publish it again before editing it",
                           details={"status": article.status, "current_version": article.version})
        self._current(article, version)
        texts = check_texts(values, title_required=False)
        note = texts.pop("note", "")
        return self._revise(article, user, texts, note, still=(KnowledgeArticle.status != RETIRED,))

    def _revise(self, article: KnowledgeArticle, actor: User | None, texts: Mapping[str, str], note: str, *,
                still: tuple[Any, ...] = (), instance_id: int | None = None) -> KnowledgeArticle:
        """Save ``texts`` over the article's current version, if they change anything: the version
        goes up by one, the replaced texts are kept as a revision (with ``note``), and the change is
        audited as ``knowledge_edited`` (by the engine when there is no ``actor``). Only the write
        of the version still current wins (and only while ``still`` holds): a concurrent one finds
        no row (Conflict)."""
        before = {name: getattr(article, name) for name in TEXT_FIELDS}
        changed = {name: text for name, text in texts.items() if text != before[name]}
        if not changed:
            return article
        now = self.clock.now()
        version = article.version
        by = actor.id if actor is not None else None
        self._write_if_unchanged(article, (KnowledgeArticle.version == version, *still),
                                 {**changed, "version": version + 1, "updated_at": now, "updated_by_id": by})
        self.session.add(KnowledgeRevision(article_id=article.id, version=version, **before, note=note,
                                           created_at=now, created_by_id=by))
        self.session.flush()
        self.session.refresh(article)
        self.audit.record("knowledge_edited", actor, instance_id=instance_id, payload={
            "number": article.number, "version": article.version, "fields": sorted(changed), "note": note or None},
            actor_name=None if actor is not None else "engine")
        return article

    def _write_if_unchanged(self, article: KnowledgeArticle, still: tuple[Any, ...], values: dict[str, Any]) -> None:
        """Write ``values`` to ``article`` in one conditional UPDATE, only while the conditions
        ``still`` hold in the database: a concurrent change found first is a Conflict naming the
        current version, so two writers of the same version cannot both win."""
        result = self.session.execute(
            update(KnowledgeArticle).where(KnowledgeArticle.id == article.id, *still)
            .values(**values).execution_options(synchronize_session=False))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self.session.expire(article)
            raise Conflict(f"{article.number} was changed by someone else: reload it",
                           details={"current_version": article.version})

    def _move(self, user: User, number: str, version: int | None, allowed: frozenset[str], to: str,
              event: str) -> KnowledgeArticle:
        article = self._writable(user, number)
        self._current(article, version)
        was = article.status
        if was not in allowed:
            raise Conflict(f"{article.number} is {was}: it cannot be {to} now",
                           details={"status": was, "current_version": article.version})
        now = self.clock.now()
        values: dict[str, Any] = {"status": to}
        if to == PUBLISHED:
            values["published_at"] = now
        self._write_if_unchanged(article, (KnowledgeArticle.status == was, KnowledgeArticle.version == article.version),
                                 values)
        self.session.refresh(article)
        payload: dict[str, Any] = {"number": article.number, "title": article.title, "version": article.version,
                                   "from": was}
        if to == PUBLISHED:
            payload["republished"] = was == RETIRED
            payload["source"] = self.source_number(article)
        self.audit.record(event, user, payload=payload)
        return article

    def publish_article(self, user: User, number: str, version: int | None = None) -> KnowledgeArticle:
        """Publish a draft, or a retired article again (staff); Conflict when it is published
        already or ``version`` is stale."""
        return self._move(user, number, version, PUBLISHABLE, PUBLISHED, "knowledge_published")

    def retire(self, user: User, number: str, version: int | None = None) -> KnowledgeArticle:
        """Retire a published article or a draft (staff): only the staff read it from then on."""
        return self._move(user, number, version, RETIRABLE, RETIRED, "knowledge_retired")
