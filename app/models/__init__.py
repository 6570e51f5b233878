"""Tables. Import every model here so Alembic and the services see one metadata."""

from .audit import AuditEvent, AuditHead
from .base import Base, utcnow
from .catalog import CatalogCategory, CatalogItem, ItemStatus
from .cmdb import CiClass, CiMaintenanceWindow, CiRelationKind, CiRelationship, CiStatus, ConfigurationItem
from .definition import DefinitionFile, Deployment, ProcessDefinition
from .housekeeping import HousekeepingRun
from .instance import HumanTask, InstanceStatus, ProcessInstance, TaskStatus
from .mail import InboundMail
from .notify import DeliveryAttempt, OutboxMessage, Webhook
from .record import (
    KnowledgeArticle,
    KnowledgeFeedback,
    KnowledgeRevision,
    Notification,
    RecordSequence,
    RecordWatcher,
    Ticket,
    TicketAttachment,
    TicketComment,
    TicketLink,
)
from .recurring import RecurringRequest
from .response import ResponseTemplate
from .schedule import ChangeFreeze, ScheduleFeed
from .sla import SlaClock, SlaEvent, SlaPolicy
from .status import StatusAffected, StatusNotice, StatusUpdate
from .submission import SubmissionToken
from .user import (
    ApiToken,
    Group,
    LoginFailure,
    PasswordResetToken,
    RecoveryCode,
    Role,
    TwoStep,
    User,
    UserRole,
    WebSession,
    user_group,
)
from .view import SavedView
from .worklog import WorkLog

__all__ = [
    "RecoveryCode",
    "TwoStep",
    "ChangeFreeze",
    "ResponseTemplate",
    "RecurringRequest",
    "SavedView",
    "WorkLog",
    "StatusAffected",
    "StatusNotice",
    "StatusUpdate",
    "ScheduleFeed",
    "ApiToken",
    "PasswordResetToken",
    "InboundMail",
    "HousekeepingRun",
    "DeliveryAttempt",
    "OutboxMessage",
    "SlaClock",
    "SlaEvent",
    "SlaPolicy",
    "SubmissionToken",
    "Webhook",
    "CatalogCategory",
    "CiClass",
    "CiRelationKind",
    "CiMaintenanceWindow",
    "CiRelationship",
    "CiStatus",
    "ConfigurationItem",
    "CatalogItem",
    "ItemStatus",
    "KnowledgeArticle",
    "KnowledgeFeedback",
    "KnowledgeRevision",
    "Notification",
    "RecordSequence",
    "RecordWatcher",
    "Ticket",
    "TicketAttachment",
    "TicketComment",
    "TicketLink",
    "AuditEvent",
    "AuditHead",
    "Base",
    "DefinitionFile",
    "Deployment",
    "Group",
    "HumanTask",
    "InstanceStatus",
    "ProcessDefinition",
    "ProcessInstance",
    "Role",
    "TaskStatus",
    "User",
    "UserRole",
    "WebSession",
    "LoginFailure",
    "user_group",
    "utcnow",
]
