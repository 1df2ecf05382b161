"""Short human durations for the office-hours pages ("2 h 05 min", "3 days ago"). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta


def span(delta: timedelta | None) -> str:
    """A duration: "45 s", "12 min", "2 h 05 min", "3 d 4 h"; "" for None."""
    if delta is None:
        return ""
    s = max(0, int(delta.total_seconds()))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def ago(at: datetime | None, now: datetime) -> str:
    """How long ago: "just now", "12 min ago", "3 h ago", "5 days ago"; "never" for None."""
    if at is None:
        return "never"
    s = int((now - at).total_seconds())
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    days = s // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"
