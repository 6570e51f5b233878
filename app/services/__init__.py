"""Services: the use cases. Built per unit of work by ``Services`` (the one composition point)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from app.clock import Clock
from app.engine import ProcessEngine, ProcessLibrary
from app.models import Ticket, User

from .attachments import AttachmentService
from .audit import AuditLog, audit_key
from .away import AwayService
from .bulk_tasks import BulkTaskService
from .catalog import CatalogService
from .cmdb import CmdbService
from .definitions import DefinitionService
from .duplicates import DuplicateService
from .execution import InstanceRunner
from .instances import InstanceService, TaskService
from .knowledge import KnowledgeService
from .linked_updates import LinkedUpdates
from .mail import MailService
from .maintenance import MaintenanceService
from .migration import MigrationService
from .notifications import NotificationService
from .operations import PlatformOperations, start_with_references
from .password_reset import PasswordResetService
from .records import RecordService
from .recurring import RecurringService
from .reports import ReportService
from .responses import ResponseService
from .retention import RetentionService
from .schedule import ScheduleService
from .sla import SlaService
from .status import StatusService
from .submissions import SubmissionService
from .two_step import TwoStepService
from .users import UserService
from .views import ViewService
from .watching import WatchService
from .worklog import WorkLogService


@dataclass
class Runtime:
    """Long-lived, shared parts: one per application."""

    engine: ProcessEngine
    library: ProcessLibrary
    clock: Clock
    config: dict[str, Any]


class Services:
    """Everything one unit of work (a request, a CLI command, a scheduler job) needs."""

    def __init__(self, session: Session, runtime: Runtime) -> None:
        self.session = session
        self.runtime = runtime

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.session, self.runtime.clock, audit_key(self.runtime.config))

    @cached_property
    def users(self) -> UserService:
        cfg = self.runtime.config
        return UserService(self.session, self.audit, cfg["SECRET_KEY"], int(cfg["TOKEN_TTL_SECONDS"]),
                           cfg.get("PASSWORD_HASH_METHOD", "scrypt"))

    @cached_property
    def two_step(self) -> TwoStepService:
        return TwoStepService(self.session, self.audit, self.runtime.clock, self.users, self.notifications,
                              self.runtime.config)

    @cached_property
    def password_reset(self) -> PasswordResetService:
        cfg = self.runtime.config
        return PasswordResetService(self.session, self.audit, self.runtime.clock, self.users, self.notifications,
                                    secret_key=cfg["SECRET_KEY"], minutes=int(cfg["PASSWORD_RESET_MINUTES"]))

    @cached_property
    def definitions(self) -> DefinitionService:
        return DefinitionService(self.session, self.audit, self.runtime.clock, self.runtime.library,
                                 int(self.runtime.config["MAX_UPLOAD_BYTES"]))

    @cached_property
    def submissions(self) -> SubmissionService:
        return SubmissionService(self.session, self.runtime.clock)

    @cached_property
    def runner(self) -> InstanceRunner:
        return InstanceRunner(self.session, self.runtime.engine, self.audit, self.runtime.clock, self.records,
                              lambda instance, actor: PlatformOperations(self, instance, actor), self.notifications,
                              self._record_changed)

    def _record_changed(self, ticket: Ticket, changes: dict[str, Any], actor: User | None = None, /) -> None:
        """A record changed (a step, a cancellation, or a comment that answers it): its SLA clocks
        follow, and the processes of the records linked to it hear of a new status."""
        self.sla.track(ticket, changes, actor)
        self.linked_updates.record_changed(ticket, changes)

    @cached_property
    def linked_updates(self) -> LinkedUpdates:
        return LinkedUpdates(self)

    @cached_property
    def sla(self) -> SlaService:
        return SlaService(self)

    @cached_property
    def notifications(self) -> NotificationService:
        return NotificationService(self.session, self.audit, self.runtime.clock, self.runtime.config)

    @cached_property
    def records(self) -> RecordService:
        service = RecordService(self.session, self.audit, self.runtime.clock, self.notifications)
        service.on_answer = self._record_changed
        service.on_requester_reply = self.linked_updates.requester_replied
        service.ci_name = lambda name: self.cmdb.hold_name(name)
        service.window_check = lambda *planned: self.schedule.check_window(*planned)
        return service

    @cached_property
    def attachments(self) -> AttachmentService:
        cfg = self.runtime.config
        return AttachmentService(self.session, self.audit, self.runtime.clock, self.records,
                                 max_bytes=int(cfg["ATTACHMENT_MAX_BYTES"]), max_count=int(cfg["ATTACHMENT_MAX_COUNT"]))

    @cached_property
    def mail(self) -> MailService:
        return MailService(self.session, self.runtime.clock, self.records, self.attachments, self.instances,
                           self.runtime.config, notifications=self.notifications, knowledge=self.knowledge,
                           tasks=self.tasks)

    @cached_property
    def retention(self) -> RetentionService:
        return RetentionService(self.session, self.audit, self.runtime.clock, self.runtime.config)

    @cached_property
    def knowledge(self) -> KnowledgeService:
        return KnowledgeService(self.session, self.audit, self.runtime.clock, self.records)

    @cached_property
    def cmdb(self) -> CmdbService:
        service = CmdbService(self.session, self.audit, self.runtime.clock, self.records, self.users)
        service.windows_of = lambda ci: self.maintenance.described(ci)
        return service

    @cached_property
    def schedule(self) -> ScheduleService:
        service = ScheduleService(self.session, self.audit, self.runtime.clock, self.records, self.runtime.config["SECRET_KEY"])
        # a freeze on a service holds for the CIs it depends on or runs on (app/services/cmdb.py)
        service.related_cis = lambda name, upward: self.cmdb.related_names(name, upward=upward)
        # a change outside its CI's maintenance windows shows it (app/services/maintenance.py)
        service.maintenance_rules = lambda names: self.maintenance.rules_for(names)
        return service

    @cached_property
    def status(self) -> StatusService:
        return StatusService(self.session, self.audit, self.runtime.clock, self.records)

    @cached_property
    def recurring(self) -> RecurringService:
        return RecurringService(self)

    @cached_property
    def views(self) -> ViewService:
        return ViewService(self.session, self.runtime.clock)

    @cached_property
    def work(self) -> WorkLogService:
        return WorkLogService(self.session, self.audit, self.runtime.clock, self.records)

    @cached_property
    def responses(self) -> ResponseService:
        return ResponseService(self.session, self.audit, self.runtime.clock, self.records)

    @cached_property
    def away(self) -> AwayService:
        return AwayService(self)

    @cached_property
    def maintenance(self) -> MaintenanceService:
        return MaintenanceService(self.session, self.audit, self.runtime.clock, self.cmdb)

    @cached_property
    def reports(self) -> ReportService:
        return ReportService(self.session, self.audit, self.runtime.clock, self.records)

    @cached_property
    def catalog(self) -> CatalogService:
        return CatalogService(self.session, self.audit, self.runtime.clock, self.instances, self.records)

    @cached_property
    def instances(self) -> InstanceService:
        service = InstanceService(self.session, self.runner, self.definitions, self.audit, self.runtime.clock)
        service.start_validators["catalog_request"] = lambda user, data: self.catalog.validate_start(user, data)
        # the incidents a problem is raised for: existing incidents the starter may see, or a 422
        service.start_validators["problem_management"] = start_with_references(
            self, "problem_management", {"related_incidents": "incident"})
        service.start_forms["catalog_request"] = lambda data: self.catalog.request_form(data)
        # a record's ci may not name a retired configuration item (started or worked by a person)
        service.data_checks.append(lambda definition, data: self.cmdb.check_record_data(definition, data))
        return service

    @cached_property
    def migration(self) -> MigrationService:
        return MigrationService(self.session, self.runner, self.instances, self.definitions, self.audit)

    @cached_property
    def tasks(self) -> TaskService:
        return TaskService(self.session, self.runner, self.instances, self.audit, self.runtime.clock)

    @cached_property
    def watching(self) -> WatchService:
        return WatchService(self.records, self.audit)

    @cached_property
    def duplicates(self) -> DuplicateService:
        return DuplicateService(self.records, self.instances, self.audit)

    @cached_property
    def bulk_tasks(self) -> BulkTaskService:
        return BulkTaskService(self.tasks, self.users.find)
