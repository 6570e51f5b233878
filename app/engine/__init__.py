"""The engine gate: the only package that imports SpiffWorkflow.

Everything else talks to ``ProcessLibrary`` (deploy-time compile and checks), ``ProcessEngine``
and ``WorkflowRun`` (run time), and receives our own frozen values and errors.
"""

from .errors import (
    DefinitionError,
    EngineError,
    MessageNotExpected,
    StateVersionError,
    TaskNotFound,
    TaskNotReady,
    XmlRejected,
)
from .library import (
    ACCESS_SUFFIX,
    APPROVAL_YES,
    RECORD_SUFFIX,
    TRANSLATION_SUFFIX,
    CompiledProcess,
    LiteralParam,
    ProcessLibrary,
    SourceFile,
    UserTaskDef,
)
from .migration import MigrationPlan, MigrationRefused
from .operation_call import OperationCall, current_operation_call, literal_text
from .runtime import (
    STATUS_CANCELLED,
    STATUS_COMPLETED,
    STATUS_ERROR,
    STATUS_RUNNING,
    OperationFailed,
    Operations,
    ProcessEngine,
    SpecBundle,
    WorkflowRun,
)
from .sandbox import ScriptIdentity, backtracking_problem, compile_as_re
from .types import EngineFailure, UserTaskView
from .xml import drawing_only, process_ids

__all__ = [
    "ACCESS_SUFFIX",
    "APPROVAL_YES",
    "RECORD_SUFFIX",
    "TRANSLATION_SUFFIX",
    "STATUS_CANCELLED",
    "STATUS_COMPLETED",
    "STATUS_ERROR",
    "STATUS_RUNNING",
    "CompiledProcess",
    "DefinitionError",
    "EngineError",
    "EngineFailure",
    "LiteralParam",
    "MigrationPlan",
    "MigrationRefused",
    "MessageNotExpected",
    "OperationCall",
    "OperationFailed",
    "Operations",
    "ProcessEngine",
    "ProcessLibrary",
    "ScriptIdentity",
    "compile_as_re",
    "current_operation_call",
    "SourceFile",
    "SpecBundle",
    "StateVersionError",
    "TaskNotFound",
    "TaskNotReady",
    "UserTaskDef",
    "UserTaskView",
    "WorkflowRun",
    "XmlRejected",
    "backtracking_problem",
    "drawing_only",
    "literal_text",
    "process_ids",
]
