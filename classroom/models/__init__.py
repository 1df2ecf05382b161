"""All models, imported here so Alembic and the app see one metadata."""

from classroom.models.audit import AuditEvent
from classroom.models.invites import RegistrationInvite
from classroom.models.keys import KeyStatus, ToolKey
from classroom.models.people import Course, Enrollment, EnrollmentStatus, Person, StaffLevel
from classroom.models.platform import Deployment, DeploymentStatus, Platform

__all__ = [
    "AuditEvent",
    "Course",
    "Deployment",
    "DeploymentStatus",
    "Enrollment",
    "EnrollmentStatus",
    "KeyStatus",
    "Person",
    "Platform",
    "RegistrationInvite",
    "StaffLevel",
    "ToolKey",
]
