"""Platform operations that service tasks in diagrams call (docs/PROCESSES.md).

Each runs inside the engine step of the instance that called it, in the same transaction, so
what it creates (linked records, articles, comments, notifications) commits or rolls back with
the step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.engine import OperationFailed, current_operation_call
from app.errors import ProcessdeskError, ValidationFailed
from app.languages import ContentTemplate, duration_words, render
from app.models import CatalogItem, ItemStatus, ProcessInstance, Ticket, User
from app.services import policy
from app.services.audit import json_safe
from app.services.forms import FormMessage, validate_start_data
from app.services.instructions import TemplateFailed, render_text
from app.services.notifications import Person
from app.services.users import group_members

if TYPE_CHECKING:
    from . import Services

OPERATIONS = frozenset({
    "start_process", "link_records", "create_knowledge_article", "comment_linked_records", "notify",
    "get_group_members", "get_manager", "catalog_item", "get_linked_record",
})


#: A record kind as a sentence names one.
_KIND_WORDS = {"incident": "an incident", "change": "a change", "problem": "a problem", "request": "a request"}


def linkable_records(services: Services, user: User, numbers: Iterable[Any], kind: str | None = None
                     ) -> tuple[list[Ticket], list[FormMessage]]:
    """The records ``numbers`` name that ``user`` may link (each once, in the order given; numbers
    are read without surrounding spaces and in any case), and why each other one may not be:
    ``"INC-999999 does not exist"`` (said too of a record the user may not see, so that nobody
    learns of it this way) or, with ``kind``, ``"CHG-000003 is not an incident"``.

    The one rule for linking named records, before a process starts (:func:`start_with_references`)
    and when its diagram links them (``link_records``)."""
    found: list[Ticket] = []
    problems: list[FormMessage] = []
    wanted: list[str] = []
    for given in numbers:
        number = str(given).strip().upper()
        if number and number not in wanted:
            wanted.append(number)
    # one query, however many numbers; a record the user only watches is read, not linked
    visible = services.records.visible_by_number(user, wanted, watched=False)
    for number in wanted:
        other = visible.get(number)
        if other is None:
            problems.append(FormMessage(f"{number} does not exist", "no_record", number=number))
        elif kind is not None and other.kind != kind:
            problems.append(FormMessage(f"{number} is not {_KIND_WORDS.get(kind, kind)}", "not_kind",
                                        number=number, record_kind=kind))
        else:
            found.append(other)
    return found, problems


StartValidator = Callable[[User, dict[str, Any]], dict[str, Any]]


def start_with_references(services: Services, process_id: str, references: Mapping[str, str]) -> StartValidator:
    """A start contract (``InstanceService.start_validators``) for a process whose start form names
    records: the start form as usual (:func:`~app.services.forms.validate_start_data`), then each
    field of ``references`` (field -> record kind, e.g. ``{"related_incidents": "incident"}``)
    must hold only numbers of existing records of that kind the starter may see; they are kept
    upper-cased, each once. So a process is refused before anything is stored, rather than started
    with links that are skipped or wrong.

    The validator raises ValidationFailed naming each refused field and, in it, each refused
    entry ("INC-999999 does not exist", "CHG-000003 is not an incident")."""
    def validate(user: User, data: dict[str, Any]) -> dict[str, Any]:
        form = services.instances.start_form_for(user, process_id)
        now = services.runtime.clock.now()
        cleaned = validate_start_data(form[0], form[1], data, today=now.date(), now=now) if form is not None else dict(data)
        problems: dict[str, list[str]] = {}
        for field, kind in references.items():
            given = cleaned.get(field)
            if given is None:
                continue
            found, refused = linkable_records(services, user, given if isinstance(given, list) else [given], kind)
            if refused:
                problems[field] = list(refused)
            cleaned[field] = [ticket.number for ticket in found]
        if problems:
            raise ValidationFailed("form data is invalid", details={"fields": problems})
        return cleaned

    return validate


class PlatformOperations:
    """The operations handler for one instance's engine step."""

    def __init__(self, services: Services, instance: ProcessInstance | None, actor: User | None) -> None:
        self.services = services
        self.instance = instance
        self.actor = actor

    def __call__(self, name: str, params: dict[str, Any]) -> Any:
        handler: Callable[[dict[str, Any]], Any] | None = getattr(self, f"op_{name}", None)
        if name not in OPERATIONS or handler is None:
            raise OperationFailed(f"unknown operation {name}")
        try:
            return handler(params)
        except ProcessdeskError as err:
            raise OperationFailed(err.message) from None
        except (KeyError, TypeError, ValueError) as err:
            raise OperationFailed(f"bad parameters: {err}") from None

    @property
    def ticket(self) -> Ticket | None:
        if self.instance is None or self.instance.id is None:
            return None
        # Once per transaction, or as read with the task the request works on.
        return self.services.runner.ticket_for(self.instance)

    def _starter(self) -> User:
        if self.instance is not None and self.instance.started_by is not None:
            return self.instance.started_by
        if self.actor is None:
            raise OperationFailed("no user to act for")
        return self.actor

    # -- operators ------------------------------------------------------------------------------------

    def op_start_process(self, params: dict[str, Any]) -> dict[str, Any]:
        process_id = str(params["process_id"])
        data = params.get("data") or {}
        if not isinstance(data, dict):
            raise OperationFailed("data must be a dict")
        child = self.services.instances.start_process(self.actor or self._starter(), process_id, data, as_system=True)
        child_ticket = self.services.records.for_instance(child.id)
        here = self.ticket
        if here is not None and child_ticket is not None:
            self.services.records.link(self.actor, here, child_ticket, str(params.get("link_type") or "related"))
        return {"instance_id": child.id, "number": child_ticket.number if child_ticket else None}

    def op_link_records(self, params: dict[str, Any]) -> dict[str, Any]:
        """Link the named records (``numbers``: a list, or one number), each once; with ``kind``
        (e.g. ``"incident"``) only records of that kind. A number that does not exist, one the
        instance's starter may not see and one of another kind are skipped (``skipped`` says which,
        as given), so a diagram cannot be used to probe or reveal records, nor link a change where
        an incident is meant (:func:`linkable_records`, which a start contract applies first)."""
        here = self.ticket
        if here is None:
            raise OperationFailed("this instance has no record to link from")
        numbers = params.get("numbers") or []
        if isinstance(numbers, str):
            numbers = [numbers]
        kind = params.get("kind")
        found, refused = linkable_records(self.services, self._starter(), numbers, str(kind) if kind else None)
        for other in found:
            self.services.records.link(self.actor, here, other, str(params.get("link_type") or "related"))
        return {"linked": [other.number for other in found],
                "skipped": [str(problem.parts["number"]) for problem in refused]}

    def op_create_knowledge_article(self, params: dict[str, Any]) -> dict[str, Any]:
        """Publish a known-error article from this record; with ``article`` (the number of one this
        record published before), revise that one instead (``KnowledgeService.revise_known_error``)."""
        here = self.ticket
        texts = {"title": str(params["title"]), "symptoms": str(params.get("symptoms") or ""),
                 "cause": str(params.get("cause") or ""), "workaround": str(params.get("workaround") or "")}
        existing = params.get("article")
        if existing and here is not None:
            article = self.services.knowledge.revise_known_error(self.actor, str(existing), source=here, **texts)
        else:
            article = self.services.knowledge.publish(self.actor, source=here, **texts)
        return {"id": article.id, "number": article.number}

    def op_comment_linked_records(self, params: dict[str, Any]) -> dict[str, Any]:
        """Comment ``body`` on each open record linked to this one (of ``kind``); an empty body
        comments nothing (a diagram's way to say there is nothing new to tell)."""
        here = self.ticket
        if here is None or not str(params.get("body") or "").strip():
            return {"count": 0}
        kind = params.get("kind")
        count = 0
        for other in self.services.records.linked_tickets(here, str(kind) if kind else None):
            if other.closed_at is None:
                self.services.records.add_comment(None, other, str(params["body"]), author_name=f"{here.number}")
                count += 1
        return {"count": count}

    def op_notify(self, params: dict[str, Any]) -> dict[str, Any]:
        """Tell ``user`` and/or the members of ``group`` (``subject``, ``body``). With a record, the
        user and the group become its watchers (``RecordService.watch``): told about the record,
        they may read it; a group's watch is read by its members whose queue it is
        (``policy.watching_groups``), and of the group only those who may read the record are
        told (``RecordService.readers``: not a member who only requests, whom the body, often the
        record's description, is not for). Who was added is audited with the notification
        (``watchers``).

        A subject or body the diagram writes as one string literal is a template of the process's
        words (app/services/content_texts.py): each recipient gets it translated into their
        language by the process's translation file, then filled in from the step's data
        (:func:`~app.services.instructions.render_text`); the audit and webhooks keep the English.
        A template that does not render fails the step, naming it. One an expression computes is
        sent as computed, to everyone alike."""
        notifier = self.services.notifications
        person = notifier.user(params.get("user"))
        recipients: list[Person] = [person] if person is not None else []
        recipients += notifier.members(params.get("group"))
        ticket = self.ticket
        # as every other notice about a record (QA: none had one)
        suffix = f"\n\n{notifier.link(ticket)}" if ticket is not None else ""
        subject = self._notice_text(params, "subject", "")
        body = self._notice_text(params, "body" if params.get("body") else "subject", suffix)
        english: dict[str, str] = {}
        for what, text in (("subject", subject), ("body", body)):
            try:
                english[what] = render(text, "en")
            except TemplateFailed as err:
                raise OperationFailed(f"the {what} does not render: {err}") from None
        added: dict[str, list[str]] = {"users": [], "groups": []}
        if ticket is not None:
            group = params.get("group")
            added = self.services.records.watch(ticket, user=person, group=str(group) if group else None)
            recipients = self.services.records.readers(ticket, recipients)  # once they watch it
        count = notifier.notify(recipients, "process.notify", subject, body,
                                ticket=ticket, payload={"to_user": params.get("user"), "to_group": params.get("group")})
        payload: dict[str, Any] = {"to_user": params.get("user"), "to_group": params.get("group"),
                                   "subject": english["subject"], "recipients": count}
        if ticket is not None and (added["users"] or added["groups"]):
            payload["watchers"] = {"number": ticket.number, **added}
        self.services.audit.record("notification_sent", self.actor, instance_id=self.instance.id if self.instance else None,
                                   payload=payload, actor_name="engine" if self.actor is None else None)
        return {"notified": count}

    def _notice_text(self, params: dict[str, Any], name: str, suffix: str) -> str | ContentTemplate:
        """Parameter ``name`` of a ``notify`` step, followed by ``suffix``: a template of the
        instance's process when the diagram wrote it as one string literal (the engine says so:
        ``current_operation_call``), else the text as evaluated, never read as a template (it may
        hold what somebody typed)."""
        call, instance = current_operation_call(), self.instance
        template = call.literals.get(name) if call is not None else None
        if call is None or instance is None or not template or not template.strip():
            return str(params.get(name) or "") + suffix
        data = call.data

        def fill(text: str, language: str) -> str:
            # An ISO 8601 duration printed whole ("{{ auto_close_after }}") in the reader's words.
            return render_text(text, data, word=lambda value: duration_words(value, language)) + suffix

        return ContentTemplate(instance.process_id, template, fill)

    def op_get_group_members(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"members": sorted(username for username, _name in group_members(self.services.session, str(params["group"])))}

    def op_get_manager(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.services.session.scalar(select(User).where(User.username == str(params["username"])))
        manager = user.manager if user is not None else None
        # an inactive manager or a read-only auditor approves nothing: the request goes to the budget owners
        return {"manager": manager.username if manager is not None and policy.works_tasks(manager) else None}

    def op_catalog_item(self, params: dict[str, Any]) -> dict[str, Any]:
        item = self.services.session.scalar(select(CatalogItem).where(CatalogItem.code == str(params["code"])))
        if item is None or item.status != ItemStatus.PUBLISHED:
            raise OperationFailed(f"no published catalog item {params['code']}")
        return self.services.catalog.item_dict(item)

    def op_get_linked_record(self, params: dict[str, Any]) -> dict[str, Any]:
        """The current state of a record linked to this instance's record (e.g. the fix change a
        problem raised): its number, kind, title, status, whether it is still open (not closed),
        its resolved and closed times, and the ``details`` named in ``params["details"]``.

        Only linked records are read, whoever may see them: a link is made by the platform or by
        someone who could see both records. A record that does not exist and one that is not linked
        are refused alike, so a diagram cannot be used to probe or reveal records.
        """
        here = self.ticket
        if here is None:
            raise OperationFailed("this instance has no record to read linked records from")
        number = str(params["number"] or "").strip().upper()
        wanted = params.get("details") or []
        if isinstance(wanted, str):
            wanted = [wanted]
        if not isinstance(wanted, list):
            raise OperationFailed("details must be a list of detail names")
        other = next((t for t in self.services.records.linked_tickets(here) if t.number == number), None)
        if other is None:
            raise OperationFailed(f"no record {number} is linked to {here.number}")
        details = other.details or {}
        return {
            "number": other.number,
            "kind": other.kind,
            "title": other.title,
            "status": other.status,
            "open": other.closed_at is None,
            "resolved_at": other.resolved_at.isoformat() if other.resolved_at else None,
            "closed_at": other.closed_at.isoformat() if other.closed_at else None,
            "details": {str(name): json_safe(details.get(str(name))) for name in wanted},
        }
