"""Warnings about dates already past, saying what saving them will do. Pure."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def course_today(now: datetime, time_zone: str) -> date:
    """Today in the course's time zone."""
    return now.astimezone(ZoneInfo(time_zone)).date()


def last_day_warning(term_end: date, today: date) -> str:
    """A last day before today closes the course at once; "" when the last day is today or later."""
    if term_end >= today:
        return ""
    return (
        f"The last day, {term_end:%B %-d, %Y}, is already past: saving closes the course at once. Every running "
        "workspace stops within a minute, no workspace can start, and the end-of-term actions you chose run now."
    )


def due_date_warning(due: datetime, now: datetime) -> str:
    """A due date already past: the assignment is late from the moment it is added; "" otherwise."""
    if due >= now:
        return ""
    return (
        "This due date is already past: students will see the assignment as late as soon as it is added "
        "(with per-assignment workspaces set to close after the due date, they are archived and removed at once)."
    )
