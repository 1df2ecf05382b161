"""Periodic: end the debug sessions whose time ran out, so the student is told it ended (the runtime already
refuses their certificates and disconnects them)."""

from __future__ import annotations

from classroom.jobs.context import current
from classroom.services.debug_sessions import end_expired


def end_expired_debug_sessions() -> int:
    """End every expired, still-open debug session (audited, student told); returns how many."""
    with current().session() as session:
        ended = end_expired(session)
        session.commit()
    return ended
