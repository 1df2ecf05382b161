"""All models, imported here so Alembic and the app see one metadata."""

from classroom.models.audit import AuditChainHead, AuditEvent
from classroom.models.budget import (
    AlertSent,
    BudgetGrant,
    CourseCharge,
    CoursePolicy,
    LedgerEntry,
    RequestStatus,
    SpendDaily,
    SpendTotal,
    TemplateAccess,
    TemplateRequest,
)
from classroom.models.debug import (
    CourseResetSettings,
    DebugRecording,
    DebugSession,
    WorkspaceBackup,
    WorkspaceReset,
)
from classroom.models.integrity import AuditPurge, DeadlineSnapshot, IntegritySettings, SimilarityRun
from classroom.models.invites import RegistrationInvite
from classroom.models.keys import KeyStatus, ToolKey
from classroom.models.lms_sync import (
    CanvasToken,
    CourseLms,
    DueDate,
    DueSource,
    GradeStatus,
    LineItemKind,
    LmsGrade,
    LmsLineItem,
    UsageMode,
)
from classroom.models.notifications import Notification, OutboxAttachment, OutboxEmail
from classroom.models.people import Course, Enrollment, EnrollmentStatus, Person, StaffLevel
from classroom.models.platform import Deployment, DeploymentStatus, Platform
from classroom.models.restores import StudentRestore
from classroom.models.ssh_access import ActivityEvent, CourseSshCa, StaffSshCert
from classroom.models.ta import HelpRequest, StaffMessage
from classroom.models.workshops import Workshop, WorkshopParticipant
from classroom.models.workspaces import (
    ArchivePurge,
    CourseCloud,
    Heartbeat,
    SshKey,
    SshKeyFingerprint,
    Workspace,
    WorkspaceArchive,
    WorkspaceEvent,
    WorkspaceFolder,
)

__all__ = [
    "CourseResetSettings",
    "DebugRecording",
    "DebugSession",
    "WorkspaceBackup",
    "WorkspaceReset",
    "AuditPurge",
    "DeadlineSnapshot",
    "IntegritySettings",
    "SimilarityRun",
    "StudentRestore",
    "ActivityEvent",
    "CourseSshCa",
    "StaffSshCert",
    "CanvasToken",
    "CourseLms",
    "DueDate",
    "DueSource",
    "GradeStatus",
    "LineItemKind",
    "UsageMode",
    "LmsGrade",
    "LmsLineItem",
    "AlertSent",
    "BudgetGrant",
    "CoursePolicy",
    "LedgerEntry",
    "RequestStatus",
    "SpendDaily",
    "SpendTotal",
    "CourseCharge",
    "TemplateAccess",
    "TemplateRequest",
    "CourseCloud",
    "Heartbeat",
    "SshKey",
    "SshKeyFingerprint",
    "Workspace",
    "WorkspaceEvent",
    "WorkspaceArchive",
    "ArchivePurge",
    "WorkspaceFolder",
    "AuditChainHead",
    "AuditEvent",
    "Course",
    "Deployment",
    "DeploymentStatus",
    "Enrollment",
    "EnrollmentStatus",
    "KeyStatus",
    "Notification",
    "OutboxAttachment",
    "OutboxEmail",
    "Person",
    "Platform",
    "RegistrationInvite",
    "StaffLevel",
    "ToolKey",
    "Workshop",
    "WorkshopParticipant",
    "HelpRequest",
    "StaffMessage",
]
