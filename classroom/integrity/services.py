"""Assemble an integrity report: every chosen student's evidence for an assignment and time frame, the
class's figures, the similarity pairs, and the indicators. Reads only; the caller audits the viewing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.integrity import settings as integrity_settings
from classroom.integrity.chain import hashes_for
from classroom.integrity.evidence import Event, Evidence, build_evidence, parse_ranges
from classroom.integrity.flags import DISCLAIMER, Flag, Subject, class_figures, flags_for
from classroom.integrity.pairs import Pair
from classroom.integrity.snapshots import assignments_of
from classroom.models import ActivityEvent, Course, Enrollment, Person, SimilarityRun, Workspace, WorkspaceFolder
from classroom.roles import StaffLevel


class ReportError(ValueError):
    """The report cannot be made as asked (unknown assignment or student, bad time frame)."""


@dataclass
class StudentReport:
    """One student's part of the report."""

    person: Person
    workspace: str
    created_at: datetime | None
    evidence: Evidence
    flags: list[Flag] = field(default_factory=list)


@dataclass
class Report:
    """The whole report."""

    course: Course
    link_key: str
    title: str
    folder: str
    due_at: datetime | None
    start: datetime
    end: datetime
    students: list[StudentReport]
    median_work: float
    threshold: int
    pairs: list[Pair]
    disclaimer: str = DISCLAIMER

    @property
    def cited(self) -> list[str]:
        """Every audit hash the report cites, in order, once."""
        seen: dict[str, None] = {}
        for s in self.students:
            for h in s.evidence.hashes + [h for f in s.flags for h in f.hashes]:
                seen.setdefault(h, None)
        return list(seen)


def students_of(session: Session, course_id: int) -> list[Person]:
    """The course's students (the people a report may be about), by name."""
    return list(
        session.scalars(
            select(Person)
            .join(Enrollment, Enrollment.person_id == Person.id)
            .where(Enrollment.course_id == course_id, Enrollment.level == StaffLevel.STUDENT)
            .order_by(Person.name, Person.id)
        )
    )


def latest_pairs(session: Session, course_id: int, link_key: str) -> list[Pair]:
    """The pairs of the assignment's latest finished similarity run."""
    run = session.scalar(
        select(SimilarityRun)
        .where(SimilarityRun.course_id == course_id, SimilarityRun.link_key == link_key, SimilarityRun.status == "done")
        .order_by(SimilarityRun.id.desc())
        .limit(1)
    )
    if run is None:
        return []
    return [Pair(p["a"], p["b"], p["score"], p["score_a"], p["score_b"], tuple(p["files"])) for p in run.pairs]


def build_report(
    session: Session, course_id: int, link_key: str, person_ids: list[int], start: datetime, end: datetime
) -> Report:
    """The report for these students (empty: every student) over [start, end)."""
    if end <= start:
        raise ReportError("The time frame must end after it starts.")
    assignment = next((a for a in assignments_of(session, course_id) if a[0] == link_key), None)
    if assignment is None:
        raise ReportError("No such assignment in this course.")
    _, title, folder, due_at = assignment
    cfg = integrity_settings.load(session, course_id)
    campus = parse_ranges(cfg.campus_ranges)
    everyone = students_of(session, course_id)
    by_id = {p.id: p for p in everyone}
    chosen = person_ids or list(by_id)
    if any(pid not in by_id for pid in chosen):
        raise ReportError("A chosen person is not a student of this course.")
    spaces = _workspaces(session, course_id, link_key)
    events = _events(session, course_id, [w.id for ws in spaces.values() for w in ws], start, end)
    evidence: dict[int, Evidence] = {}
    for pid, ws in spaces.items():
        mine = [e for w in ws for e in events.get(w.id, [])]
        evidence[pid] = build_evidence(mine, campus, record_commands=cfg.record_commands, folder=folder, due_at=due_at)
    median, with_commits = class_figures([e for pid, e in evidence.items() if pid in by_id])
    pairs = latest_pairs(session, course_id, link_key)
    names = {str(p.id): p.display_name for p in everyone}
    out = []
    for pid in chosen:
        ws = spaces.get(pid, [])
        ev = evidence.get(pid, Evidence())
        created = min((w.created_at for w in ws), default=None)
        label = ", ".join(w.link_title or w.template_id for w in ws) or "no workspace"
        subject = Subject(str(pid), by_id[pid].display_name, created, ev)
        flags = flags_for(subject, due_at, median, with_commits, pairs, names, cfg.similarity_threshold)
        out.append(StudentReport(by_id[pid], label, created, ev, flags))
    course = session.get(Course, course_id)
    assert course is not None
    return Report(course, link_key, title, folder, due_at, start, end, out, median, cfg.similarity_threshold, pairs)


def _workspaces(session: Session, course_id: int, link_key: str) -> dict[int, list[Workspace]]:
    """Each student's workspaces that hold the assignment's folder (else all their workspaces in the course)."""
    rows = session.scalars(select(Workspace).where(Workspace.course_id == course_id).order_by(Workspace.id)).all()
    with_folder = set(session.scalars(select(WorkspaceFolder.workspace_id).where(WorkspaceFolder.link_key == link_key)))
    out: dict[int, list[Workspace]] = defaultdict(list)
    for w in rows:
        out[w.person_id].append(w)
    return {pid: ([w for w in ws if w.id in with_folder] or ws) for pid, ws in out.items()}


def _events(
    session: Session, course_id: int, workspace_ids: list[int], start: datetime, end: datetime
) -> dict[int, list[Event]]:
    rows = session.scalars(
        select(ActivityEvent).where(
            ActivityEvent.workspace_id.in_(workspace_ids), ActivityEvent.at >= start, ActivityEvent.at < end
        )
    )
    rows = list(rows)
    hashes = hashes_for(session, course_id, [r.id for r in rows])
    out: dict[int, list[Event]] = defaultdict(list)
    for r in rows:
        out[r.workspace_id].append(Event(r.id, r.kind, r.at, dict(r.details), hashes.get(r.id, "")))
    return out


def own_record(session: Session, course_id: int, person_id: int, start: datetime, end: datetime) -> Evidence:
    """A student's own evidence over a time frame (their activity record page)."""
    cfg = integrity_settings.load(session, course_id)
    ids = list(
        session.scalars(select(Workspace.id).where(Workspace.course_id == course_id, Workspace.person_id == person_id))
    )
    events = [e for ws in _events(session, course_id, ids, start, end).values() for e in ws]
    return build_evidence(events, parse_ranges(cfg.campus_ranges), record_commands=cfg.record_commands)
