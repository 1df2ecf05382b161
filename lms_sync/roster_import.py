"""Apply a parsed roster CSV: enroll new people (as placeholders until their LMS account is known), reactivate,
set sections, welcome new students. Set-based; flushes, the caller commits (and the outbox job sends email)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import Course, Enrollment, EnrollmentStatus, Person
from classroom.roles import StaffLevel
from classroom.services.allocation_alerts import check_allocation
from lms_sync.csv_import import ImportRow
from lms_sync.placeholders import placeholder_sub
from lms_sync.roster import PLACEHOLDER_PREFIX
from lms_sync.roster_sync import lock_course_roster
from lms_sync.welcome_send import welcome_students


@dataclass(frozen=True)
class ImportResult:
    """What the import did."""

    added: int = 0
    reactivated: int = 0
    sections: int = 0
    unchanged: int = 0
    welcomed: int = 0


def _existing(session: Session, course: Course, emails: Sequence[str]) -> dict[str, tuple[int, Enrollment | None]]:
    """email -> (person id, enrollment in this course or None); enrolled and real people preferred."""
    rows = session.execute(
        select(Person.id, func.lower(Person.email), Person.sub, Enrollment)
        .outerjoin(Enrollment, (Enrollment.person_id == Person.id) & (Enrollment.course_id == course.id))
        .where(Person.platform_id == course.platform_id, func.lower(Person.email).in_(emails))
        .order_by(Enrollment.id.is_(None), Person.sub.startswith(PLACEHOLDER_PREFIX), Person.id)
    ).all()
    found: dict[str, tuple[int, Enrollment | None]] = {}
    for person_id, email, _sub, enrollment in rows:
        found.setdefault(email, (person_id, enrollment))
    return found


def import_roster(
    session: Session, course: Course, rows: Sequence[ImportRow], *, actor_person_id: int, file_format: str
) -> ImportResult:
    """Enroll the rows as students (staff keep their level); flushes."""
    lock_course_roster(session, course.id)
    existing = _existing(session, course, [r.email for r in rows])
    new_people = [r for r in rows if r.email not in existing]
    now = utcnow()
    created: dict[str, int] = {}
    if new_people:
        created = {
            sub[len(PLACEHOLDER_PREFIX) :]: pid
            for pid, sub in session.execute(
                text(
                    """
                    INSERT INTO people (platform_id, sub, name, given_name, family_name, email, is_test_user,
                                        created_at, updated_at)
                    SELECT :platform, v.sub, v.name, '', '', v.email, false, :now, :now
                    FROM unnest(CAST(:subs AS text[]), CAST(:names AS text[]), CAST(:emails AS text[]))
                         AS v(sub, name, email)
                    ON CONFLICT ON CONSTRAINT uq_people_platform_sub DO UPDATE SET name = EXCLUDED.name
                    RETURNING id, sub
                    """
                ),
                {
                    "platform": course.platform_id,
                    "now": now,
                    "subs": [placeholder_sub(r.email) for r in new_people],
                    "names": [r.name for r in new_people],
                    "emails": [r.email for r in new_people],
                },
            ).all()
        }
    to_enroll: list[tuple[int, ImportRow]] = []
    reactivated: list[tuple[int, ImportRow]] = []
    sections, unchanged = 0, 0
    for row in rows:
        person_id, enrollment = existing.get(row.email, (created.get(row.email), None))
        assert person_id is not None
        if enrollment is None:
            to_enroll.append((person_id, row))
            continue
        touched = False
        if enrollment.status is EnrollmentStatus.DROPPED:
            enrollment.status = EnrollmentStatus.ACTIVE
            if enrollment.level is StaffLevel.STUDENT:
                reactivated.append((person_id, row))
            touched = True
        if row.section and row.section != enrollment.section:
            enrollment.section = row.section
            sections += 1
            touched = True
        unchanged += 0 if touched else 1
    if to_enroll:
        session.execute(
            insert(Enrollment),
            [
                {
                    "course_id": course.id,
                    "person_id": pid,
                    "lti_roles": [],
                    "level": StaffLevel.STUDENT,
                    "status": EnrollmentStatus.ACTIVE,
                    "section": row.section,
                    "created_at": now,
                }
                for pid, row in to_enroll
            ],
        )
    session.flush()
    welcomed = welcome_students(session, course, [pid for pid, _ in to_enroll + reactivated])
    check_allocation(session, course.id, now)  # students came: alert if the allocation crossed the course total
    append_event(
        session,
        "roster.imported",
        actor_person_id=actor_person_id,
        course_id=course.id,
        subject=file_format,
        details={
            "added": len(to_enroll),
            "reactivated": len(reactivated),
            "sections": sections,
            "unchanged": unchanged,
            "rows": len(rows),
        },
    )
    return ImportResult(len(to_enroll), len(reactivated), sections, unchanged, welcomed)
