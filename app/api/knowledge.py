"""The knowledge base: search and read articles; the desk's staff write, edit, publish and retire
them (app/services/knowledge.py decides who may and what happens)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.models import KnowledgeArticle, User
from app.schemas.knowledge import (
    FeedbackIn,
    FeedbackOut,
    KnowledgeActionIn,
    KnowledgeIn,
    KnowledgeListOut,
    KnowledgeOut,
    KnowledgePatch,
    KnowledgeQuery,
    KnowledgeRevisionListOut,
    RelatedOut,
    RelatedQuery,
)

from . import checked_first, current_user, page_args, services, unit_of_work

blp = Blueprint("knowledge", __name__, url_prefix="/api/v1", description="Knowledge articles")
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]



def _one(user: User, work: Any) -> dict[str, Any]:
    """Run ``work`` (returning an article) in one unit of work; the article as answered to ``user``."""
    svc = services()

    def run() -> dict[str, Any]:
        article: KnowledgeArticle = work()
        return svc.knowledge.article_dicts([article], user)[0]

    return unit_of_work(run)


@blp.route("/knowledge")
class KnowledgeView(MethodView):
    @blp.arguments(KnowledgeQuery, location="query")
    @blp.response(200, KnowledgeListOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search articles by words in title, symptoms, cause, workaround or number: published ones;
        the staff may ask for drafts, retired articles or all (status). Newest first, or by how
        helpful readers found them (sort)."""
        user = current_user()
        svc = services()
        page, per_page = page_args(args)

        def read() -> tuple[list[dict[str, Any]], int]:
            rows, total = svc.knowledge.search(args.get("q"), page, per_page, user=user, status=args.get("status"),
                                               sort=args["sort"])
            return svc.knowledge.article_dicts(rows, user), total

        items, total = unit_of_work(read)
        return {"page": page, "per_page": per_page, "total": total, "items": items}

    @checked_first(lambda svc, user: svc.knowledge.require_writer(user))
    @blp.arguments(KnowledgeIn)
    @blp.response(201, KnowledgeOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Write a draft article (staff: agent, process owner, admin)."""
        user = current_user()
        return _one(user, lambda: services().knowledge.draft(user, body))


@blp.route("/knowledge/related")
class RelatedView(MethodView):
    @blp.arguments(RelatedQuery, location="query")
    @blp.response(200, RelatedOut)
    @blp.doc(security=SECURITY)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Published articles about a problem described in words (``q``, an incident's title): any
        of its words counts, best matches first, at most 5. What a portal offers a requester to read
        before raising an incident."""
        user = current_user()
        svc = services()
        return {"items": unit_of_work(lambda: svc.knowledge.article_dicts(svc.knowledge.related(args.get("q")), user))}


@blp.route("/knowledge/<string:number>")
class ArticleView(MethodView):
    @blp.response(200, KnowledgeOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """One article with its source problem's status now; drafts and retired articles are
        found by the staff only (404 for anyone else)."""
        user = current_user()
        return _one(user, lambda: services().knowledge.find(user, number))

    @blp.arguments(KnowledgePatch)
    @blp.response(200, KnowledgeOut)
    @blp.doc(security=SECURITY)
    def patch(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Edit a draft or published article (staff), naming the version edited: a stale one
        answers 409 with the current version (details.current_version). The replaced text is
        kept as a revision."""
        user = current_user()
        version = body.pop("version")
        return _one(user, lambda: services().knowledge.edit(user, number, version, body))


@blp.route("/knowledge/<string:number>/feedback")
class FeedbackView(MethodView):
    @blp.arguments(FeedbackIn)
    @blp.response(200, FeedbackOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Say whether a published article helped (``helpful``): one answer per reader, sent again
        it replaces theirs. Everyone who reads the article may; 409 ``not_published`` for a draft
        or a retired one. Answers the article's counts and the caller's answer."""
        user = current_user()
        return unit_of_work(lambda: services().knowledge.rate(user, number, body["helpful"]))


@blp.route("/knowledge/<string:number>/publish")
class PublishView(MethodView):
    @blp.arguments(KnowledgeActionIn)
    @blp.response(200, KnowledgeOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Publish a draft, or a retired article again (staff)."""
        user = current_user()
        return _one(user, lambda: services().knowledge.publish_article(user, number, body.get("version")))


@blp.route("/knowledge/<string:number>/retire")
class RetireView(MethodView):
    @blp.arguments(KnowledgeActionIn)
    @blp.response(200, KnowledgeOut)
    @blp.doc(security=SECURITY)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Retire an article (staff): from then on only the staff find it."""
        user = current_user()
        return _one(user, lambda: services().knowledge.retire(user, number, body.get("version")))


@blp.route("/knowledge/<string:number>/revisions")
class RevisionsView(MethodView):
    @blp.response(200, KnowledgeRevisionListOut)
    @blp.doc(security=SECURITY)
    def get(self, number: str) -> dict[str, Any]:
        """The article's earlier versions, newest first (staff)."""
        user = current_user()
        svc = services()

        def read() -> dict[str, Any]:
            article = svc.knowledge.find(user, number)
            rows = svc.knowledge.revisions(user, number)
            return {"number": article.number, "version": article.version, "items": [
                {"version": r.version, "title": r.title, "symptoms": r.symptoms, "cause": r.cause,
                 "workaround": r.workaround, "note": r.note, "replaced_by": r.created_by.username if r.created_by else None,
                 "replaced_at": r.created_at} for r in rows]}

        return unit_of_work(read)
