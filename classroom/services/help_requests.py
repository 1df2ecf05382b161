"""Help requests: a student asks, staff claim (one wins), resolve with a note; the student is told. Audited.

Every write is one conditional statement, so two TAs clicking Claim at once, or a student clicking Ask twice,
end with one claim and one request; the loser is told who won.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, text, update
from sqlalchemy.orm import Session, aliased

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import Enrollment, EnrollmentStatus, HelpRequest, Person
from classroom.notify import Message, notify, notify_many
from classroom.roles import STAFF_LEVELS, StaffLevel
from classroom.ta_text import OfficeInputError, clean_line, clean_path, clean_text

MESSAGE_MAX = 4000
NOTE_MAX = 4000


class HelpError(OfficeInputError):
    """A help action that cannot be done; the message says why (shown as a 4xx page)."""


class HelpNotFound(HelpError):
    status = 404


class HelpConflict(HelpError):
    """Someone else got there first (claimed or resolved it)."""

    status = 409


@dataclass(frozen=True)
class HelpRow:
    """One request as staff see it in the queue."""

    request: HelpRequest
    student_name: str
    student_email: str
    claimed_by_name: str
    resolved_by_name: str

    @property
    def time_to_resolution(self) -> timedelta | None:
        r = self.request
        return r.resolved_at - r.created_at if r.resolved_at else None


# Why raw: ON CONFLICT on a partial unique index (one unresolved request per student) needs its predicate.
ASK_SQL = text("""
INSERT INTO help_requests (course_id, person_id, workspace_id, message, file_path, line, status, created_at,
                           resolution_note)
VALUES (:course, :person, :ws, :message, :path, :line, 'open', :now, '')
ON CONFLICT (course_id, person_id) WHERE status <> 'resolved' DO NOTHING
RETURNING id
""")


def ask_for_help(
    session: Session,
    course_id: int,
    person_id: int,
    *,
    message: str,
    file_path: str = "",
    line: str | int | None = None,
    workspace_id: int | None = None,
) -> tuple[HelpRequest, bool]:
    """Open a request (or return the student's unresolved one: False); audited. HelpError on bad input."""
    body = clean_text(message, MESSAGE_MAX, "Your question")
    if not body:
        raise HelpError("Please say what you need help with.")
    path, line_no = clean_path(file_path), clean_line(line)
    if line_no is not None and not path:
        raise HelpError("A line number needs a file path.")
    params = {"course": course_id, "person": person_id, "ws": workspace_id, "message": body, "path": path}
    new_id = session.scalar(ASK_SQL, {**params, "line": line_no, "now": utcnow()})
    if new_id is None:
        existing = session.scalar(
            select(HelpRequest).where(
                HelpRequest.course_id == course_id, HelpRequest.person_id == person_id, HelpRequest.status != "resolved"
            )
        )
        assert existing is not None  # the conflict was this row; requests are never deleted
        return existing, False
    details = {"help_request": new_id, "workspace": workspace_id, "file": path, "line": line_no}
    append_event(
        session,
        "help.requested",
        actor_person_id=person_id,
        course_id=course_id,
        subject=str(person_id),
        details=details,
    )
    req = session.get(HelpRequest, new_id)
    assert req is not None
    _tell_staff(session, req)
    return req, True


def _tell_staff(session: Session, req: HelpRequest) -> None:
    """Every staff member of the course sees the new request in the tool (no email: the queue is the place)."""
    staff = session.scalars(
        select(Enrollment.person_id).where(
            Enrollment.course_id == req.course_id,
            Enrollment.level.in_(STAFF_LEVELS),
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
    ).all()
    student = _name(session, req.person_id)
    where = f" ({req.file_path}" + (f", line {req.line}" if req.line else "") + ")" if req.file_path else ""
    notify_many(session, [Message(p, req.course_id, f"{student} asked for help"[:255],
                                  f"{req.message}{where}\n\nOpen the Help queue to claim it.") for p in staff],
                email=False)  # fmt: skip


def _load(session: Session, course_id: int, request_id: int) -> HelpRequest:
    req = session.scalar(select(HelpRequest).where(HelpRequest.id == request_id, HelpRequest.course_id == course_id))
    if req is None:
        raise HelpNotFound("There is no such help request in this course.")
    return req


def _name(session: Session, person_id: int | None) -> str:
    person = session.get(Person, person_id) if person_id else None
    return person.display_name if person else "someone"


def claim_help(session: Session, course_id: int, request_id: int, staff_id: int) -> HelpRequest:
    """Claim an open request (one conditional UPDATE: of two clicks, one wins); claiming one's own again is a no-op."""
    now = utcnow()
    won = session.scalar(
        update(HelpRequest)
        .where(HelpRequest.id == request_id, HelpRequest.course_id == course_id, HelpRequest.status == "open")
        .values(status="claimed", claimed_by=staff_id, claimed_at=now)
        .returning(HelpRequest.id)
    )
    req = _load(session, course_id, request_id)
    session.refresh(req)
    if won is None:
        if req.status == "claimed" and req.claimed_by == staff_id:
            return req
        if req.status == "resolved":
            raise HelpConflict(f"{_name(session, req.resolved_by)} already resolved this request.")
        raise HelpConflict(f"{_name(session, req.claimed_by)} already claimed this request.")
    staff = _name(session, staff_id)
    append_event(session, "help.claimed", actor_person_id=staff_id, course_id=course_id, subject=str(req.person_id),
                 details={"help_request": req.id, "waited_s": int((now - req.created_at).total_seconds())})  # fmt: skip
    notify(session, person_id=req.person_id, course_id=course_id, email=False,
           subject=f"{staff} is looking at your help request",
           body=f"{staff} claimed your request “{req.message[:120]}” and will get back to you.")  # fmt: skip
    return req


def resolve_help(session: Session, course_id: int, request_id: int, staff_id: int, note: str) -> HelpRequest:
    """Resolve with a note (claiming it too if nobody had); the student is told in the tool and by email."""
    text_ = clean_text(note, NOTE_MAX, "The note")
    if not text_:
        raise HelpError("Please write a note for the student: what was wrong and what to do.")
    now = utcnow()
    done = session.scalar(
        update(HelpRequest)
        .where(HelpRequest.id == request_id, HelpRequest.course_id == course_id, HelpRequest.status != "resolved")
        .values(
            status="resolved",
            resolved_by=staff_id,
            resolved_at=now,
            resolution_note=text_,
            claimed_by=func.coalesce(HelpRequest.claimed_by, staff_id),
            claimed_at=func.coalesce(HelpRequest.claimed_at, now),
        )
        .returning(HelpRequest.id)
    )
    req = _load(session, course_id, request_id)
    session.refresh(req)
    if done is None:
        raise HelpConflict(f"{_name(session, req.resolved_by)} already resolved this request.")
    minutes = round((now - req.created_at).total_seconds() / 60, 1)
    append_event(session, "help.resolved", actor_person_id=staff_id, course_id=course_id, subject=str(req.person_id),
                 details={"help_request": req.id, "minutes_to_resolution": minutes})  # fmt: skip
    staff = _name(session, staff_id)
    notify(session, person_id=req.person_id, course_id=course_id,
           subject=f"Your help request was resolved by {staff}",
           body=f"You asked: {req.message}\n\n{staff} wrote: {text_}\n\n"
                f"Resolved {minutes:g} minutes after you asked.")  # fmt: skip
    return req


def help_queue(session: Session, course_id: int, *, resolved_limit: int = 20) -> list[HelpRow]:
    """Open and claimed requests, oldest first, then the newest resolved ones (one statement)."""
    student, claimer, resolver = aliased(Person), aliased(Person), aliased(Person)
    unresolved = select(HelpRequest.id).where(HelpRequest.course_id == course_id, HelpRequest.status != "resolved")
    recent = (
        select(HelpRequest.id)
        .where(HelpRequest.course_id == course_id, HelpRequest.status == "resolved")
        .order_by(HelpRequest.resolved_at.desc())
        .limit(resolved_limit)
    )
    rows = session.execute(
        select(HelpRequest, student, claimer.name, resolver.name)
        .join(student, student.id == HelpRequest.person_id)
        .outerjoin(claimer, claimer.id == HelpRequest.claimed_by)
        .outerjoin(resolver, resolver.id == HelpRequest.resolved_by)
        .where(HelpRequest.id.in_(unresolved.union(recent)))
        .order_by(case((HelpRequest.status == "resolved", 1), else_=0), HelpRequest.created_at)
    ).all()
    return [HelpRow(r, s.display_name, s.email, c or "", v or "") for r, s, c, v in rows]


def requests_of(session: Session, course_id: int, person_id: int) -> list[HelpRequest]:
    """A student's own requests, newest first."""
    return list(
        session.scalars(
            select(HelpRequest)
            .where(HelpRequest.course_id == course_id, HelpRequest.person_id == person_id)
            .order_by(HelpRequest.id.desc())
        )
    )


def median_resolution(rows: list[HelpRow]) -> timedelta | None:
    """The median time to resolution of the resolved rows shown (pure)."""
    times = sorted(t for t in (r.time_to_resolution for r in rows) if t is not None)
    return times[len(times) // 2] if times else None


def is_student_of(session: Session, course_id: int, person_id: int) -> bool:
    """Whether the person is a student of the course (staff act only on their own course's students)."""
    level = session.scalar(
        select(Enrollment.level).where(Enrollment.course_id == course_id, Enrollment.person_id == person_id)
    )
    return level is StaffLevel.STUDENT


def waited(req: HelpRequest, now: datetime | None = None) -> timedelta:
    """How long a request has been waiting (or took, once resolved)."""
    return (req.resolved_at or now or utcnow()) - req.created_at
