"""A course's integrity settings: campus ranges, command recording, snapshot folder, similarity threshold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.integrity.evidence import parse_ranges
from classroom.models import IntegritySettings
from classroom.models.integrity import DEFAULT_SNAPSHOT_PATH

COLLECTING = "plagiarism_support"  # the wizard's integrity option (a course policy's) that turns activity collection on


def collects_activity(integrity: Mapping[str, Any] | None) -> bool:
    """Whether a course policy's integrity options (None: no policy) ask for activity events. Pure."""
    return bool((integrity or {}).get(COLLECTING))


def activity_flags(integrity: Mapping[str, Any] | None, record_commands: bool) -> tuple[bool, bool]:
    """(collects activity, records typed commands), told to the agent with each heartbeat: commands are recorded
    only where activity is collected. Pure."""
    collects = collects_activity(integrity)
    return collects, collects and record_commands


@dataclass(frozen=True)
class Settings:
    """The values in use (defaults when the course saved none)."""

    campus_ranges: tuple[str, ...] = ()
    record_commands: bool = False
    snapshot_path: str = DEFAULT_SNAPSHOT_PATH
    similarity_threshold: int = 60

    def folder(self, slug: str) -> str:
        """The assignment's folder in the home for this course (`{assignment}` is the assignment's slug)."""
        return self.snapshot_path.replace("{assignment}", slug).strip("/")


def load(session: Session, course_id: int) -> Settings:
    """The course's settings, or the defaults."""
    row = session.get(IntegritySettings, course_id)
    if row is None:
        return Settings()
    return Settings(tuple(row.campus_ranges), row.record_commands, row.snapshot_path, row.similarity_threshold)


def parse_form(form: dict[str, str]) -> tuple[Settings | None, dict[str, str]]:
    """Pure: validate the settings form; (values, {}) or (None, errors by field)."""
    errors: dict[str, str] = {}
    ranges = tuple(r.strip() for r in form.get("campus_ranges", "").replace(",", "\n").splitlines() if r.strip())
    try:
        parse_ranges(ranges)
    except ValueError as exc:
        errors["campus_ranges"] = str(exc)
    if len(ranges) > 50:
        errors["campus_ranges"] = "At most 50 ranges."
    path = form.get("snapshot_path", "").strip().strip("/") or DEFAULT_SNAPSHOT_PATH
    if "{assignment}" not in path or ".." in path.split("/") or len(path) > 128 or path.startswith("."):
        errors["snapshot_path"] = "A folder in the home that contains {assignment}, such as homework/{assignment}."
    try:
        threshold = int(form.get("similarity_threshold", "60"))
        if not 1 <= threshold <= 100:
            raise ValueError
    except ValueError:
        errors["similarity_threshold"] = "A whole percentage from 1 to 100."
        threshold = 60
    if errors:
        return None, errors
    return Settings(ranges, form.get("record_commands") == "on", path, threshold), {}


def save(session: Session, course_id: int, values: Settings) -> None:
    """Store the course's settings (flush, never commit)."""
    row = {
        "course_id": course_id,
        "campus_ranges": list(values.campus_ranges),
        "record_commands": values.record_commands,
        "snapshot_path": values.snapshot_path,
        "similarity_threshold": values.similarity_threshold,
        "updated_at": utcnow(),
    }
    stmt = insert(IntegritySettings).values(row)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["course_id"], set_={k: v for k, v in row.items() if k != "course_id"}
        )
    )


def records_commands(session: Session, course_id: int) -> bool:
    """Whether the course records the commands typed in interactive sessions."""
    return bool(
        session.scalar(select(IntegritySettings.record_commands).where(IntegritySettings.course_id == course_id))
    )


def set_record_commands(session: Session, course_id: int, on: bool, by: int) -> bool:
    """The set-up wizard's "audit logging" choice: record typed commands or not, the other settings unchanged;
    audited when it changes (flush, never commit). Returns whether it changed."""
    current = load(session, course_id)
    if current.record_commands == on:
        return False
    save(session, course_id, replace(current, record_commands=on))
    details = {"record_commands": on, "from": "setup wizard"}
    append_event(session, "integrity.settings_saved", actor_person_id=by, course_id=course_id,
                 subject="integrity.settings_saved", details=details)  # fmt: skip
    return True
