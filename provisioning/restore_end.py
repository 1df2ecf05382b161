"""Periodic: close restored students' access once their days have run out (classroom.services.restores).

Idempotent: a restore is closed once (row lock, `closed_at`); the retirement jobs it queues are deduplicated by
job id, and the retire pass queues them again if one is lost.
"""

from __future__ import annotations

from classroom.db import utcnow
from classroom.services.restores import close_expired
from provisioning import jobs


def close_restores() -> int:
    """Close every restore that has run out; returns how many workspaces were sent to retirement."""
    with jobs._session() as session:  # noqa: SLF001
        todo = close_expired(session, utcnow())
        session.commit()
    jobs.release(todo)
    return len(todo)
