"""Roster sync, the shell around `diff_roster`: fetch every page, diff, apply in one transaction (flush, no commit).

Writes are set-based (one statement per kind of change, arrays bound with unnest), so a 5,000-member course
costs the same handful of statements as a 50-member one, and an unchanged roster writes no rows at all. The
statements live in `classroom.sql.enrollments`, with the launch's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from classroom.audit import NewEvent, append_events
from classroom.db import utcnow
from classroom.models import Course, CourseLms, Enrollment, EnrollmentStatus, Person
from classroom.roles import StaffLevel, is_test_user
from classroom.services.allocation_alerts import check_allocation
from classroom.sql.enrollments import (
    ROSTER_ADD_ENROLLMENTS,
    ROSTER_ADD_PEOPLE,
    ROSTER_CLAIM_SUBS,
    ROSTER_SET_LEVELS,
    ROSTER_SET_ROLES,
    ROSTER_SET_SECTIONS,
    ROSTER_UPDATE_PEOPLE,
)
from lms_sync.http import LmsError
from lms_sync.ports import LmsServices, RemoteMember
from lms_sync.roster import LocalMember, RosterChanges, diff_roster
from lms_sync.welcome_send import welcome_students
from lms_sync.workspaces_hook import StopJob, stop_dropped_workspaces

PAGE_LIMIT = 100
MAX_PAGES = 1000  # 100,000 members: a loop guard against a platform whose next link never ends
_LOCK_NS = 0x4C4D5331  # "LMS1": advisory lock namespace for per-course roster writes


class SyncError(Exception):
    """The roster cannot be synced; the message says why (shown to the instructor)."""


@dataclass
class SyncResult:
    """What one sync did."""

    pages: int = 0
    members: int = 0
    full: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    jobs: list[StopJob] = field(default_factory=list)
    differences_url: str | None = None

    @property
    def changed(self) -> bool:
        return any(self.counts.values())


def first_page_url(nrps_url: str, limit: int = PAGE_LIMIT) -> str:
    """The membership URL with `limit` added (kept if the platform already put one there)."""
    parts = urlsplit(nrps_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "limit" for k, _ in query):
        query.append(("limit", str(limit)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def fetch_roster(
    lms: LmsServices, url: str, on_page: Callable[[int, int], None] | None = None
) -> tuple[list[RemoteMember], str | None, int]:
    """Follow `next` links to the end; returns members, the last differences link, and the page count."""
    members: list[RemoteMember] = []
    differences: str | None = None
    pages = 0
    next_url: str | None = url
    while next_url:
        if pages >= MAX_PAGES:
            raise SyncError(f"The LMS roster did not end after {MAX_PAGES} pages; nothing was changed.")
        page = lms.roster_page(next_url)
        pages += 1
        members.extend(page.members)
        differences = page.differences_url or differences
        next_url = page.next_url
        if on_page:
            on_page(pages, len(members))
    return members, differences, pages


def load_local(session: Session, course_id: int) -> list[LocalMember]:
    """Every enrollment of the course with its person (one query, plain rows: no ORM objects to build)."""
    rows = session.execute(
        select(
            Enrollment.id,
            Person.id,
            Person.sub,
            Enrollment.level,
            Enrollment.status,
            Enrollment.section,
            Person.name,
            Person.given_name,
            Person.family_name,
            Person.email,
            Enrollment.level_pinned,
            Enrollment.nrps_roles,
        )
        .join(Person, Person.id == Enrollment.person_id)
        .where(Enrollment.course_id == course_id)
    ).all()
    return [LocalMember(*row[:-1], tuple(row[-1] or ())) for row in rows]


def lock_course_roster(session: Session, course_id: int) -> None:
    """Serialise roster writers of one course (sync, CSV import) until the transaction ends."""
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": _LOCK_NS, "id": course_id})


def _add_members(session: Session, course: Course, changes: RosterChanges) -> list[int]:
    """Insert the new people and their enrollments; returns the person ids of the students added."""
    if not changes.adds:
        return []
    members = [a.member for a in changes.adds]
    now = utcnow()
    ids = session.execute(
        ROSTER_ADD_PEOPLE,
        {
            "platform": course.platform_id,
            "now": now,
            "subs": [m.user_id for m in members],
            "names": [m.name for m in members],
            "givens": [m.given_name for m in members],
            "families": [m.family_name for m in members],
            "emails": [m.email for m in members],
            "tests": [is_test_user(m.roles) for m in members],
        },
    ).all()
    person_of = {sub: pid for pid, sub in ids}
    session.execute(
        ROSTER_ADD_ENROLLMENTS,
        {
            "course": course.id,
            "now": now,
            "people": [person_of[a.member.user_id] for a in changes.adds],
            "roles": [chr(31).join(a.member.roles) for a in changes.adds],
            "levels": [a.level.value for a in changes.adds],
            "sections": [a.member.section or "" for a in changes.adds],
        },
    )
    return [person_of[a.member.user_id] for a in changes.adds if a.level is StaffLevel.STUDENT]


def _claim_placeholders(session: Session, course: Course, claims: Sequence[tuple[int, str]]) -> None:
    """Give CSV-imported people their LMS identity (or fold them into an existing person of the platform)."""
    if not claims:
        return
    taken = dict(
        session.execute(
            select(Person.sub, Person.id).where(
                Person.platform_id == course.platform_id, Person.sub.in_([sub for _, sub in claims])
            )
        ).all()
    )
    free = [(pid, sub) for pid, sub in claims if sub not in taken]
    if free:
        session.execute(
            ROSTER_CLAIM_SUBS,
            {"ids": [p for p, _ in free], "subs": [s for _, s in free]},
        )
    for placeholder, sub in claims:
        if sub in taken:
            from lms_sync.placeholders import fold_placeholder

            fold_placeholder(session, course.id, placeholder, taken[sub])


def _update_rows(session: Session, changes: RosterChanges) -> None:
    if changes.person_updates:
        u = changes.person_updates
        session.execute(
            ROSTER_UPDATE_PEOPLE,
            {
                "ids": [x.person_id for x in u],
                "names": [x.name for x in u],
                "givens": [x.given_name for x in u],
                "families": [x.family_name for x in u],
                "emails": [x.email for x in u],
            },
        )
    active, dropped = EnrollmentStatus.ACTIVE.value, EnrollmentStatus.DROPPED.value
    levels = [(c.enrollment_id, c.after.value, active) for c in changes.level_changes]
    levels += [(c.enrollment_id, c.level.value, active) for c in changes.reactivations]
    levels += [(c.enrollment_id, c.level.value, dropped) for c in changes.drops]
    if levels:
        session.execute(
            ROSTER_SET_LEVELS,
            {"ids": [x[0] for x in levels], "levels": [x[1] for x in levels], "statuses": [x[2] for x in levels]},
        )
    if changes.roles_seen:
        session.execute(
            ROSTER_SET_ROLES,
            {"ids": [i for i, _ in changes.roles_seen], "roles": [chr(31).join(r) for _, r in changes.roles_seen]},
        )
    if changes.sections:
        session.execute(
            ROSTER_SET_SECTIONS,
            {"ids": [i for i, _ in changes.sections], "sections": [s[:255] for _, s in changes.sections]},
        )


def _audit(session: Session, course_id: int, changes: RosterChanges, actor: int | None, source: str) -> None:
    events = [
        NewEvent("enrollment.dropped", actor, course_id, str(c.person_id), {"reason": c.reason, "source": source})
        for c in changes.drops
    ]
    events += [
        NewEvent("enrollment.reactivated", actor, course_id, str(c.person_id), {"source": source})
        for c in changes.reactivations
    ]
    events += [
        NewEvent(
            "enrollment.level_changed",
            actor,
            course_id,
            str(c.person_id),
            {"from": c.before.value, "to": c.after.value, "source": source},
        )
        for c in changes.level_changes
    ]
    events.append(NewEvent("roster.synced", actor, course_id, source, changes.counts()))
    append_events(session, events)


def apply_changes(
    session: Session, course: Course, changes: RosterChanges, *, actor_person_id: int | None, source: str
) -> list[StopJob]:
    """Write the changes (nothing at all when there are none); returns workspace stops to enqueue after commit."""
    if changes.empty:
        return []
    _claim_placeholders(session, course, changes.claims)
    added = _add_members(session, course, changes)
    _update_rows(session, changes)
    _audit(session, course.id, changes, actor_person_id, source)
    session.flush()
    welcome_students(session, course, added)  # once each: an enrollment that existed keeps its welcomed_at
    check_allocation(session, course.id, utcnow())  # students came or went: alert if the allocation crossed the total
    session.expire_all()
    dropped = [c.person_id for c in changes.drops]
    return stop_dropped_workspaces(session, course.id, dropped, reason=f"dropped from the course ({source})")


def sync_roster(
    session: Session,
    course_id: int,
    *,
    lms: LmsServices,
    full: bool = True,
    differences_url: str | None = None,
    on_page: Callable[[int, int], None] | None = None,
    actor_person_id: int | None = None,
) -> SyncResult:
    """Fetch the course's NRPS roster (or only its differences) and apply it (flushes; the caller commits)."""
    course = session.get(Course, course_id)
    lms_row = session.get(CourseLms, course_id)
    if course is None or lms_row is None or not lms_row.nrps_url:
        raise SyncError(
            "The LMS has not offered a roster service (NRPS) for this course. Launch Cloud Workstation from the "
            "course as an instructor, or import a CSV roster."
        )
    use_differences = bool(differences_url) and not full
    try:
        remote, new_differences, pages = fetch_roster(
            lms,
            differences_url if use_differences else first_page_url(lms_row.nrps_url),
            on_page,  # type: ignore[arg-type]
        )
    except LmsError as exc:
        if not use_differences or not exc.permanent:
            raise SyncError(f"The LMS roster could not be read: {exc.message}") from exc
        use_differences = False  # the differences link expired: read the whole roster instead
        remote, new_differences, pages = fetch_roster(lms, first_page_url(lms_row.nrps_url), on_page)
    lock_course_roster(session, course_id)
    changes = diff_roster(load_local(session, course_id), remote, complete=not use_differences)
    source = "nrps-differences" if use_differences else "nrps"
    jobs = apply_changes(session, course, changes, actor_person_id=actor_person_id, source=source)
    return SyncResult(pages, len(remote), not use_differences, changes.counts(), jobs, new_differences)
