"""Per-course cloud resources (security group, materials file system), created once and shared."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import CourseCloud
from provisioning.backend import CloudBackend


def course_key(course_id: int) -> str:
    """The name under which a course's resources are tagged and stored."""
    return f"c{course_id}"


def ensure_course_cloud(
    session: Session, course_id: int, backend: CloudBackend, allowed_ssh_cidrs: tuple[str, ...]
) -> CourseCloud:
    """Return the course's resources, creating them once even when many provision jobs race.

    The common case (resources exist) takes no lock, so one course's launches run in parallel; only the
    first creation serialises on the row lock.
    """
    ready = session.scalar(select(CourseCloud).where(CourseCloud.course_id == course_id))
    if ready is not None and ready.security_group_id and ready.file_system_id:
        return ready
    session.execute(
        insert(CourseCloud)
        .values(course_id=course_id, region=backend.region, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["course_id"])
    )
    cloud = session.scalar(select(CourseCloud).where(CourseCloud.course_id == course_id).with_for_update())
    assert cloud is not None
    if cloud.security_group_id and cloud.file_system_id:
        return cloud
    key = course_key(course_id)
    cloud.security_group_id = backend.ensure_course_network(key, allowed_ssh_cidrs)
    storage = backend.ensure_course_storage(key, cloud.security_group_id)
    cloud.file_system_id = storage.file_system_id
    cloud.student_access_point_id = storage.student_access_point_id
    cloud.staff_access_point_id = storage.staff_access_point_id
    append_event(
        session,
        "course.cloud_created",
        course_id=course_id,
        subject=cloud.security_group_id,
        details={"file_system": cloud.file_system_id, "region": backend.region},
    )
    session.flush()
    return cloud
