"""Knowledge articles: known errors published from problems, searchable by everyone signed in."""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db import LIKE_ESCAPE, SEARCH_WORDS, like_literal
from app.errors import NotFound, ValidationFailed
from app.models import KnowledgeArticle, Ticket, User

from .audit import AuditLog
from .records import RecordService


class KnowledgeService:
    def __init__(self, session: Session, audit: AuditLog, clock: Clock, records: RecordService) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.records = records

    def publish(self, actor: User | None, *, title: str, symptoms: str, cause: str, workaround: str,
                source: Ticket | None) -> KnowledgeArticle:
        """Publish a known-error article; link it from its source record and that record's incidents."""
        title = title.strip()
        if not title:
            raise ValidationFailed("article title is empty", details={"fields": {"title": ["is required"]}})
        number = self.records.allocate_number("knowledge")
        article = KnowledgeArticle(number=number, title=title[:500], symptoms=symptoms, cause=cause, workaround=workaround,
                                   status="published", source_ticket_id=source.id if source else None,
                                   created_at=self.clock.now(), created_by_id=actor.id if actor else None)
        self.session.add(article)
        self.session.flush()
        if source is not None:
            targets = [source, *self.records.linked_tickets(source, "incident")]
            for ticket in targets:
                details = dict(ticket.details or {})
                articles = list(details.get("knowledge_articles", []))
                if number not in articles:
                    details["knowledge_articles"] = [*articles, number]
                    ticket.details = details
        self.audit.record("knowledge_published", actor, instance_id=source.instance_id if source else None,
                          payload={"number": number, "title": article.title, "source": source.number if source else None},
                          actor_name=None if actor else "engine")
        return article

    def search(self, q: str | None, page: int, per_page: int) -> tuple[list[KnowledgeArticle], int]:
        query: Select[tuple[KnowledgeArticle]] = select(KnowledgeArticle).where(KnowledgeArticle.status == "published")
        for word in (q or "").lower().split()[:SEARCH_WORDS]:
            # the words are literal text: a % or _ in them matches only itself (as in ticket search)
            needle = f"%{like_literal(word)}%"
            query = query.where(or_(*(func.lower(col).like(needle, escape=LIKE_ESCAPE) for col in (
                KnowledgeArticle.title, KnowledgeArticle.symptoms, KnowledgeArticle.cause, KnowledgeArticle.workaround,
                KnowledgeArticle.number))))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(self.session.scalars(query.order_by(KnowledgeArticle.id.desc()).offset((page - 1) * per_page).limit(per_page)))
        return rows, total

    def get(self, number: str) -> KnowledgeArticle:
        article = self.session.scalar(select(KnowledgeArticle).where(KnowledgeArticle.number == number.upper()))
        if article is None:
            raise NotFound(f"no article {number}")
        return article

    def source_number(self, article: KnowledgeArticle) -> str | None:
        if article.source_ticket_id is None:
            return None
        ticket = self.session.get(Ticket, article.source_ticket_id)
        return ticket.number if ticket else None
