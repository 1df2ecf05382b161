"""Pure rules for archiving a home before its disk ends (no I/O): the last hour before term end, a stale
report, a start for the archive only, and what the sweep and the lease spare while it runs.

- In the lead window (`CWC_ARCHIVE_LEAD_S`, an hour by default) a running workspace's agent is asked for its
  home's archive, so most homes are archived before the term-over rule stops them.
- A heartbeat that counts changed files at or after the report makes the report stale: the agent is asked
  again (at most every `REASK_AFTER`) while it runs; once stopped, a stale report is not trusted.
- A stopped workspace without a fresh archive is started for its archive only, when the course's money covers
  `ARCHIVE_WINDOW` of running; the sweep and the lease spare it until then, after which it stops regardless.
- That run is the course's cost, not the student's: from the start's request (`archive_started_at`) to the first
  stop or end recorded after it, its running seconds are a course line ('archive_run'), and the student's ledger
  skips them (classroom.sql.metering uses `ARCHIVE_RUN_ENDS` and the same overlap as `archive_run_share`).
- The final archive is the last thing that happens to the home: at term end (agent's path) a running workspace is
  not stopped at once but locked out first (the heartbeat answer ends the student's sessions and carries no keys)
  and asked for its archive; a report is taken only from a heartbeat after the one whose answer carried the
  lockout (the agent acts on an answer before it tars), so a report made before the lockout is stale. No final
  archive within the window: it stops and its disk is kept (fail closed), as for any failed try. The lockout is
  cleared when that run ends (the stop after the final archive is recorded, or the give-up's stop) and when the
  course is reopened; a later start for the archive only locks out anew. It is taken only when the course's money
  covers ARCHIVE_WINDOW (`start_allowed`, as for a start for the archive only); else the workspace stops at once,
  its last reported archive kept if fresh, else its disk kept and staff told.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from classroom.workspaces.lifecycle import ENDED, WorkspaceState

REASK_AFTER = timedelta(minutes=10)
ARCHIVE_RUN_ENDS = frozenset({WorkspaceState.STOPPED, WorkspaceState.HIBERNATED}) | ENDED  # a state ending that run
ARCHIVE_WINDOW = timedelta(minutes=30)  # the hard limit of a start for the archive only
LOCKOUT_ENDS = ARCHIVE_RUN_ENDS  # a lockout ends with the run it kept the student out of (a stopped one has no session)


def in_lead(now: datetime, term_end_at: datetime | None, lead: timedelta) -> bool:
    """True in the last `lead` before the term ends (never after it)."""
    return term_end_at is not None and lead > timedelta(0) and term_end_at - lead <= now <= term_end_at


def stale(reported_at: datetime | None, home_changed_at: datetime | None) -> bool:
    """A report is stale when the home changed in the heartbeat that carried it or later (the agent counts
    changes per minute, so changes in the minute of the tar may not be in it: the safe side)."""
    return reported_at is not None and home_changed_at is not None and home_changed_at >= reported_at


def ask_in_lead(
    requested_at: datetime | None, reported_at: datetime | None, home_changed_at: datetime | None, now: datetime
) -> bool:
    """In the lead window: ask once, and again when the reported archive went stale (at most every REASK_AFTER)."""
    if requested_at is None:
        return True
    return stale(reported_at, home_changed_at) and now - requested_at >= REASK_AFTER


def window_cost(running_hourly: Decimal, storage_hourly: Decimal, window: timedelta = ARCHIVE_WINDOW) -> Decimal:
    """What a start for the archive only can cost at most: the window of running (compute, IPv4, disk)."""
    return (running_hourly + storage_hourly) * Decimal(window // timedelta(seconds=1)) / 3600


def start_allowed(committed: Decimal | None, total: Decimal | None, cost: Decimal) -> bool:
    """The course's money covers the window (fail closed: no position, no start)."""
    return committed is not None and total is not None and committed + cost <= total


def spared(archiving_until: datetime | None, now: datetime) -> bool:
    """True while a workspace runs for its archive only: the sweep's rules and the lease leave it running."""
    return archiving_until is not None and now < archiving_until


def archive_run_end(started_at: datetime | None, events: Iterable[tuple[datetime, WorkspaceState]]) -> datetime | None:
    """The end of the run a start for the archive only began: the first stop or end recorded after its request
    (None: not started for its archive, or still running)."""
    if started_at is None:
        return None
    ends = [at for at, state in events if at > started_at and state in ARCHIVE_RUN_ENDS]
    return min(ends, default=None)


def archive_run_share(
    start: datetime, end: datetime, run_from: datetime | None, run_until: datetime | None
) -> timedelta:
    """How much of a billed running interval [start, end) belongs to the archive-only run [run_from, run_until)
    (the course's); the rest is the student's."""
    if run_from is None:
        return timedelta(0)
    lo, hi = max(start, run_from), end if run_until is None else min(end, run_until)
    return max(hi - lo, timedelta(0))


MAX_ARCHIVE_TRIES = 3
RETRY_AFTER = (timedelta(minutes=30), timedelta(hours=2))  # after the first and the second failed try


def next_try_at(failed_tries: int, failed_at: datetime, transient: bool) -> datetime | None:
    """When to try the archive again after `failed_tries` failed tries (this one included), or None: give up (the
    disk is kept, staff told). A refusal for money is not retried by itself; staff can retry it from the page."""
    if not transient or not 1 <= failed_tries < MAX_ARCHIVE_TRIES:
        return None
    return failed_at + RETRY_AFTER[failed_tries - 1]


def retry_due(retry_at: datetime | None, now: datetime) -> bool:
    """A failed try whose backoff has passed is tried again (from the start: a new request, a new start)."""
    return retry_at is not None and now >= retry_at


def report_after_lockout(locked_out_at: datetime | None, lockout_answered_at: datetime | None) -> bool:
    """A heartbeat's archive report may be taken: no lockout, or an earlier heartbeat's answer already carried it
    (the agent ends sessions and removes keys on that answer, then tars; what it reports in that same heartbeat,
    or before it, was made before the lockout)."""
    return locked_out_at is None or lockout_answered_at is not None


def lockout_answer(locked_out_at: datetime | None, keys: list[str]) -> tuple[list[str], bool]:
    """The keys a heartbeat answer carries and whether it tells the agent to end the student's sessions."""
    return ([], True) if locked_out_at is not None else (keys, False)


LOCKED_FOR_ARCHIVE = "Your workspace is being archived for the end of the term; it can no longer be opened."


def locked_for_archive(locked_out_at: datetime | None, archiving_until: datetime | None, now: datetime) -> bool:
    """Nobody opens a session on it: its student was locked out for the final archive (for good), or it runs for
    its archive only (a shell could change the home after the tar)."""
    return locked_out_at is not None or spared(archiving_until, now)


def may_open(
    state: WorkspaceState, locked_out_at: datetime | None, archiving_until: datetime | None, now: datetime
) -> bool:
    """A terminal or a login may open on the workspace now: it runs and it is not locked for its archive."""
    return state is WorkspaceState.RUNNING and not locked_for_archive(locked_out_at, archiving_until, now)
