"""Debug sessions: a time-boxed SSH session of the head TA or an instructor on a student's workspace.

The session gets its own course-CA certificate (key id names the staff member and the session), opens view-only
unless "full control" was chosen with its own reason, and is recorded. A view-only certificate's principal is
`ws<id>-view` (EC2: only the read-only view user accepts it; the local runtime binds the home read-only); every
debug certificate forces EC2's recorder (`force-command`, provisioning.debug_shell), which the local runtime
ignores because it records the session itself. Starting and ending are audited (`debug.session.start` / `.end`) and
told to the student (tool and email). Services flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import DebugRecording, DebugSession, Person, StaffSshCert, Workspace
from classroom.notify import notify
from classroom.services.staff_actions import ReasonError, parse_reason
from classroom.workspaces.lifecycle import WorkspaceState
from config.settings import Settings
from provisioning.debug_shell import recorder_command
from provisioning.ssh_ca import issue_staff_certificate, revoke_staff_certificate, view_principal

DEFAULT_MINUTES = 30
MODES = ("view", "full")


class DebugRefused(ValueError):
    """The session cannot be opened or ended as asked (the message says why)."""


@dataclass(frozen=True)
class DebugRequest:
    """What the staff member asked for, parsed."""

    reason: str
    mode: str
    full_reason: str
    minutes: int


def parse_request(reason: str | None, mode: str | None, full_reason: str | None, minutes: str | None) -> DebugRequest:
    """Check the form: a reason always, a second reason for full control, 1 to 120 minutes. Pure."""
    if any("\x00" in (v or "") for v in (reason, mode, full_reason, minutes)):
        raise DebugRefused("The form holds a character text cannot carry (NUL): retype it.")
    try:
        why = parse_reason(reason)
    except ReasonError as exc:
        raise DebugRefused(str(exc)) from None
    chosen = mode or "view"
    if chosen not in MODES:
        raise DebugRefused("Choose view-only or full control.")
    second = ""
    if chosen == "full":
        try:
            second = parse_reason(full_reason)
        except ReasonError:
            raise DebugRefused("Full control needs its own reason: why must you change the files?") from None
    raw = (minutes or str(DEFAULT_MINUTES)).strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= 120:
        raise DebugRefused("A session lasts between 1 and 120 minutes.")
    return DebugRequest(why, chosen, second, int(raw))


def session_label(debug_id: int) -> str:
    """How a session is named to people: in the certificate's key id, the banner and the audit."""
    return f"D{debug_id}"


def open_session(
    session: Session, *, settings: Settings, ws: Workspace, staff: Person, public_key: str, req: DebugRequest,
    now: datetime | None = None,
) -> tuple[str, DebugSession]:  # fmt: skip
    """Issue the session's certificate, record the session, audit it and tell the student."""
    if ws.state is not WorkspaceState.RUNNING or not ws.instance_id:
        raise DebugRefused(f"The workspace is {ws.state.value}: a debug session needs it running.")
    now = now or utcnow()
    debug_id = int(session.scalar(text("SELECT nextval(pg_get_serial_sequence('debug_sessions', 'id'))")))  # type: ignore[arg-type]
    student = session.get(Person, ws.person_id)
    until = now + timedelta(minutes=req.minutes)
    forced = recorder_command(session_label(debug_id), req.mode, until, student.name if student else "")
    cert, row = issue_staff_certificate(
        session, settings=settings, workspace=ws, staff_person_id=staff.id, staff_name=staff.name,
        public_key=public_key, minutes=req.minutes, now=now, session_label=session_label(debug_id),
        principal=view_principal(ws.id) if req.mode == "view" else None, force_command=forced,
    )  # fmt: skip
    ds = DebugSession(
        id=debug_id, course_id=ws.course_id, workspace_id=ws.id, student_person_id=ws.person_id,
        staff_person_id=staff.id, cert_id=row.id, mode=req.mode, reason=req.reason, full_reason=req.full_reason,
        started_at=now, expires_at=row.valid_before,
    )  # fmt: skip
    session.add(ds)
    session.flush()
    label, until = session_label(ds.id), row.valid_before.strftime("%H:%M UTC")
    append_event(
        session, "debug.session.start", actor_person_id=staff.id, course_id=ws.course_id, subject=str(ws.person_id),
        details={"session": label, "workspace": ws.id, "mode": req.mode, "reason": req.reason,
                 "full_reason": req.full_reason, "expires_at": row.valid_before.isoformat(), "serial": str(row.serial)},
    )  # fmt: skip
    what = "with full control (they can change your files)" if req.mode == "full" else "view-only"
    notify(
        session, person_id=ws.person_id, course_id=ws.course_id,
        subject=f"{staff.display_name} opened a debug session on your workspace",
        body=(f"{staff.display_name} opened debug session {label} on your workspace, {what}, until {until}. "
              f"Reason: {req.reason}. Everything typed and shown in it is recorded."),
    )  # fmt: skip
    return cert, ds


def end_session(session: Session, ds: DebugSession, *, actor_person_id: int | None, why: str) -> bool:
    """End the session (revoking its certificate); audited and told to the student. False when already ended."""
    locked = session.scalar(select(DebugSession).where(DebugSession.id == ds.id).with_for_update())
    if locked is None or locked.ended_at is not None:
        return False
    locked.ended_at, locked.ended_by_person_id = utcnow(), actor_person_id
    revoke_staff_certificate(session, cert_id=locked.cert_id, actor_person_id=actor_person_id or locked.staff_person_id)
    label = session_label(locked.id)
    append_event(
        session, "debug.session.end", actor_person_id=actor_person_id, course_id=locked.course_id,
        subject=str(locked.student_person_id), details={"session": label, "workspace": locked.workspace_id, "why": why},
    )  # fmt: skip
    notify(
        session, person_id=locked.student_person_id, course_id=locked.course_id,
        subject=f"Debug session {label} on your workspace has ended",
        body=f"Debug session {label} on your workspace ended ({why}). Its recording is kept for your instructor.",
    )  # fmt: skip
    return True


def end_expired(session: Session, now: datetime | None = None) -> int:
    """End every session past its expiry (the student is told); returns how many."""
    now = now or utcnow()
    due = session.scalars(select(DebugSession).where(DebugSession.ended_at.is_(None), DebugSession.expires_at <= now))
    return sum(end_session(session, ds, actor_person_id=None, why="its time ran out") for ds in list(due))


def sessions_of(
    session: Session, course_id: int, student_id: int, limit: int = 20
) -> list[tuple[DebugSession, Person, int]]:
    """The student's newest debug sessions with who opened them and how many recordings each has."""
    counts = (
        select(DebugRecording.debug_session_id, func.count().label("n"))
        .group_by(DebugRecording.debug_session_id)
        .subquery()
    )
    rows = session.execute(
        select(DebugSession, Person, func.coalesce(counts.c.n, 0))
        .join(Person, Person.id == DebugSession.staff_person_id)
        .outerjoin(counts, counts.c.debug_session_id == DebugSession.id)
        .where(DebugSession.course_id == course_id, DebugSession.student_person_id == student_id)
        .order_by(DebugSession.id.desc())
        .limit(limit)
    ).all()
    return [(d, p, int(n)) for d, p, n in rows]


def is_live(ds: DebugSession, now: datetime) -> bool:
    """Open: not ended and not expired."""
    return ds.ended_at is None and now < ds.expires_at


def cert_of(session: Session, ds: DebugSession) -> StaffSshCert | None:
    """The session's certificate row."""
    return session.get(StaffSshCert, ds.cert_id)


def open_labels(session: Session, workspace_id: int, now: datetime | None = None) -> list[str]:
    """The workspace's live sessions (not ended, not expired) by label: the EC2 agent ends any other's processes."""
    now = now or utcnow()
    live = (DebugSession.workspace_id == workspace_id, DebugSession.ended_at.is_(None), DebugSession.expires_at > now)
    ids = session.scalars(select(DebugSession.id).where(*live).order_by(DebugSession.id))
    return [session_label(i) for i in ids]
