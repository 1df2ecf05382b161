"""The term-end job, every 2 minutes: warn before a term ends, then apply each course's term-end actions once."""

from __future__ import annotations

from classroom.db import utcnow
from classroom.jobs.context import current
from provisioning.term_end import run_term_end


def close_terms() -> dict[str, int]:
    """Every 2 minutes: warn 24 hours and 10 minutes before term end, then apply each course's term-end actions once."""
    ctx = current()
    with ctx.session() as session:
        result = run_term_end(session, utcnow(), agent_archives=ctx.backend.agent_archives)
        session.commit()
    ctx.release(result.jobs)
    return {"warned": result.warned, "closed": len(result.closed), "jobs": len(result.jobs)}
