"""The sweep job, every minute: accrue the ledger, stop what must stop, send alerts (enforcement queue)."""

from __future__ import annotations

from classroom.db import utcnow
from classroom.jobs.context import current
from classroom.jobs.liveness import record_sweep
from classroom.services.enforcement import run_sweep
from config.prices import load_prices


def meter_and_enforce() -> dict[str, int]:
    """Every minute: accrue the ledger, stop what must stop, send alerts; stop jobs run after the commit."""
    ctx = current()
    with ctx.session() as session:
        now = utcnow()
        result = run_sweep(session, now, load_prices().region(ctx.settings.aws_region))
        session.commit()
    record_sweep(ctx.redis, now)
    ctx.release(result.jobs)
    return {
        "accrued": result.accrued,
        "students": result.students,
        "stopped": len(result.stopped),
        "alerts": len(result.alerts),
    }
