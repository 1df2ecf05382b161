"""The workspace lifecycle as a table of allowed transitions. Pure: no I/O.

requested → provisioning → running ⇄ stopping → stopped | hibernated → starting → running
any live state → terminating → terminated; requested/provisioning/starting → failed (with a reason).
Applying a transition to the state it leads to is a no-op, so retried jobs are harmless.
"""

from __future__ import annotations

import enum


class WorkspaceState(enum.StrEnum):
    """Where a workspace is in its life."""

    REQUESTED = "requested"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    HIBERNATED = "hibernated"
    STARTING = "starting"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"


S = WorkspaceState
ALLOWED: dict[WorkspaceState, frozenset[WorkspaceState]] = {
    S.REQUESTED: frozenset({S.PROVISIONING, S.FAILED, S.TERMINATED}),
    S.PROVISIONING: frozenset({S.RUNNING, S.STOPPING, S.STOPPED, S.FAILED, S.TERMINATING, S.TERMINATED}),
    S.RUNNING: frozenset({S.STOPPING, S.STOPPED, S.HIBERNATED, S.TERMINATING, S.TERMINATED}),
    S.STOPPING: frozenset({S.STOPPED, S.HIBERNATED, S.RUNNING, S.TERMINATING, S.TERMINATED}),
    S.STOPPED: frozenset({S.STARTING, S.RUNNING, S.TERMINATING, S.TERMINATED}),
    S.HIBERNATED: frozenset({S.STARTING, S.RUNNING, S.STOPPED, S.TERMINATING, S.TERMINATED}),
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.STOPPED, S.FAILED, S.TERMINATING, S.TERMINATED}),
    S.TERMINATING: frozenset({S.TERMINATED}),
    S.TERMINATED: frozenset(),
    S.FAILED: frozenset({S.TERMINATING, S.TERMINATED}),
}
LIVE = frozenset(
    {S.REQUESTED, S.PROVISIONING, S.RUNNING, S.STOPPING, S.STOPPED, S.HIBERNATED, S.STARTING, S.TERMINATING}
)
ENDED = frozenset({S.TERMINATED, S.FAILED})

# What costs what: the ONE definition. The metering SQL, the sweep and the budget figures all read these sets
# (SQL through `classroom.sql.sql_states`), so Python and SQL cannot drift.
BILLING_COMPUTE = frozenset({S.RUNNING, S.STOPPING})  # the instance (and its public IPv4) is billed
BILLING_DISK = LIVE - {S.REQUESTED}  # a volume exists, running or not, until terminated
RESERVED_DISK = BILLING_DISK - {S.TERMINATING}  # disks that will still cost money until the term ends
COMMITTED_DISK = RESERVED_DISK | {S.REQUESTED}  # ...and those a Start has committed to: a requested one's is coming
CONCURRENT = frozenset({S.REQUESTED, S.PROVISIONING, S.RUNNING, S.STARTING})  # counted against max_concurrent
SWEEP_STOPS = frozenset({S.RUNNING})  # what the sweep stops: a stopping one is billed but already on its way down


class DesiredState(enum.StrEnum):
    """What we want a workspace to be (intent), apart from what AWS last reported (`WorkspaceState`)."""

    RUNNING = "running"
    STOPPED = "stopped"
    HIBERNATED = "hibernated"
    TERMINATED = "terminated"


D = DesiredState
WANTS_DOWN = frozenset({D.STOPPED, D.HIBERNATED})
DOWN = frozenset({S.STOPPED, S.HIBERNATED, S.TERMINATED, S.FAILED})  # observed states that satisfy a stop
UP_IN_AWS = frozenset({S.RUNNING, S.STOPPING, S.STARTING, S.PROVISIONING})  # an instance may still run


def stop_converged(desired: DesiredState, observed: WorkspaceState) -> bool:
    """True when a wanted stop is done (AWS reports it down), or when no stop is wanted."""
    return desired not in WANTS_DOWN or observed in DOWN


def intent_note(desired: DesiredState, observed: WorkspaceState, attempts: int) -> str:
    """A short note for lists when a wanted stop is not what AWS reports yet ("" when they agree)."""
    if stop_converged(desired, observed):
        return ""
    return f"stopping: AWS still reports {observed.value}" + (f", attempt {attempts}" if attempts else "")


class TransitionError(ValueError):
    """The lifecycle does not allow this change."""


def can_transition(current: WorkspaceState, target: WorkspaceState) -> bool:
    """True if `target` may follow `current` (or equals it: idempotent)."""
    return target == current or target in ALLOWED[current]


def next_state(current: WorkspaceState, target: WorkspaceState) -> WorkspaceState:
    """Return `target` if allowed, else raise TransitionError naming both states."""
    if not can_transition(current, target):
        raise TransitionError(f"A workspace that is {current.value} cannot become {target.value}.")
    return target


# What AWS reports, mapped to our states (None: transient AWS state we do not mirror).
AWS_STATES: dict[str, WorkspaceState | None] = {
    "pending": None,
    "running": S.RUNNING,
    "stopping": S.STOPPING,
    "stopped": S.STOPPED,
    "shutting-down": S.TERMINATING,
    "terminated": S.TERMINATED,
}
