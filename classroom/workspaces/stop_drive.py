"""How hard to push a wanted stop that AWS has not carried out yet. Pure: no I/O.

A stop is retried with exponential backoff (30 s, 1, 2, 4 minutes, then every 5), forced (`Force=True`, the
instance loses its memory and unflushed writes) once it has been wanted for FORCE_AFTER, and reported to the
course's staff once it has been wanted for ALERT_AFTER without AWS reporting the instance down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from classroom.workspaces.lifecycle import DesiredState, WorkspaceState, stop_converged

RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(minutes=5)
FORCE_AFTER = timedelta(minutes=5)
ALERT_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class StopProgress:
    """What the database knows about one workspace's wanted stop."""

    desired: DesiredState
    observed: WorkspaceState
    has_instance: bool
    wanted_since: datetime
    attempts: int
    next_try_at: datetime | None
    alerted: bool


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after `attempts` tries (doubling from RETRY_BASE, at most RETRY_MAX)."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


def should_force(wanted_since: datetime, now: datetime) -> bool:
    """A stop wanted for FORCE_AFTER or more is forced."""
    return now - wanted_since >= FORCE_AFTER


def retry_due(p: StopProgress, now: datetime) -> bool:
    """True when reconcile should issue the stop again (AWS still runs it and the backoff has passed)."""
    if stop_converged(p.desired, p.observed) or not p.has_instance or p.observed is WorkspaceState.TERMINATING:
        return False
    return p.next_try_at is None or now >= p.next_try_at


def alert_due(p: StopProgress, now: datetime) -> bool:
    """True once, when a wanted stop has not taken effect for ALERT_AFTER."""
    return not stop_converged(p.desired, p.observed) and not p.alerted and now - p.wanted_since >= ALERT_AFTER
