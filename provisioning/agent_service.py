"""Agent tokens and heartbeats: each workspace's agent reports with its own, revocable token."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.integrity.settings import activity_flags
from classroom.models import Heartbeat, Workspace, WorkspaceReset
from classroom.services.resets import ACTIVE
from classroom.services.term_notices import term_notice, term_of_row
from classroom.services.workspaces import set_state
from classroom.workspaces.archive_rules import lockout_answer, report_after_lockout
from classroom.workspaces.host_keys import MAX_KEY_CHARS, MAX_KEYS, parse_host_keys
from classroom.workspaces.lifecycle import WorkspaceState
from config.prices import RegionPrices
from provisioning.agent_archive import note_report, wanted_archive_key
from provisioning.host_key_pins import apply_host_key_report, apply_reset_host_key_report
from provisioning.lease import LeaseAnswer, lease_for, student_row
from provisioning.restore_boot import RestoreOutcome, record_outcome
from provisioning.ssh_keys import active_keys

S = WorkspaceState
PG_INT_MAX = 2**31 - 1  # workspaces.id and the heartbeat counters are PostgreSQL integers
ACTIVE_CPU = Decimal(10)


class HeartbeatRejected(PermissionError):
    """Unknown or revoked token, or a report for another workspace."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_agent_token(ws: Workspace) -> str:
    """A new token for this workspace's agent (the old one stops working)."""
    token = secrets.token_urlsafe(32)
    ws.agent_token_hash, ws.agent_token_revoked_at = token_hash(token), None
    return token


def revoke_agent_token(ws: Workspace) -> None:
    """Stop accepting reports from this workspace's agent."""
    ws.agent_token_revoked_at = utcnow()


@dataclass(frozen=True)
class Report:
    """A validated heartbeat body."""

    workspace_id: int
    ssh_sessions: int
    jupyter_active: bool
    cpu_pct: Decimal
    changed_files: int
    archived: tuple[str, str, int] | None = None  # the home archive it uploaded: key, SHA-256 (hex), bytes
    mem_pct: Decimal | None = None  # memory in use; None from an agent that does not report it
    disk_pct: Decimal | None = None  # the home's file system in use
    restore: RestoreOutcome | None = None  # how the first boot's restore of an archived home went
    host_keys: tuple[str, ...] = ()  # the instance's SSH host public keys ("type base64"), pinned on first report

    @property
    def active(self) -> bool:
        return self.ssh_sessions > 0 or self.jupyter_active or self.cpu_pct >= ACTIVE_CPU or self.changed_files > 0


class ArchivedBody(BaseModel):
    """The agent's report of the home archive it uploaded."""

    key: str = Field(min_length=1, max_length=1024)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0, le=2**62)


class RestoreBody(BaseModel):
    """The agent's report of its first boot's restore (provisioning.agent.cwc_agent.restore_home)."""

    bytes: int = Field(ge=0, le=2**62)
    sha256_ok: bool
    extracted: bool
    error: str = Field(default="", max_length=1000)


class HeartbeatBody(BaseModel):
    """The agent's JSON, bounded to what the columns hold: ids are PostgreSQL integers, numbers are finite."""

    model_config = ConfigDict(extra="ignore")

    workspace_id: int = Field(ge=1, le=PG_INT_MAX)
    ssh_sessions: int = Field(default=0, le=PG_INT_MAX)
    jupyter_active: bool = False
    cpu_pct: Decimal = Field(default=Decimal(0), allow_inf_nan=False, ge=-1_000_000, le=1_000_000)
    changed_files: int = Field(default=0, le=PG_INT_MAX)
    archived: ArchivedBody | None = None
    restore: RestoreBody | None = None
    mem_pct: Decimal | None = Field(default=None, allow_inf_nan=False, ge=-1_000_000, le=1_000_000)
    disk_pct: Decimal | None = Field(default=None, allow_inf_nan=False, ge=-1_000_000, le=1_000_000)
    host_keys: list[Annotated[str, Field(max_length=MAX_KEY_CHARS)]] = Field(default=[], max_length=MAX_KEYS)


def _pct(value: Decimal | None) -> Decimal | None:
    return None if value is None else min(Decimal(100), max(Decimal(0), value)).quantize(Decimal("0.01"))


def parse_report(body: Any) -> Report:
    """Validate the agent's JSON; ValueError naming the field when malformed or out of range."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    try:
        data = HeartbeatBody.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"bad heartbeat: {where}: {first['msg']}") from exc
    try:
        host_keys = parse_host_keys(data.host_keys)
    except ValueError as exc:
        raise ValueError(f"bad heartbeat: host_keys: {exc}") from exc
    return Report(
        data.workspace_id,
        max(0, data.ssh_sessions),
        data.jupyter_active,
        min(Decimal(100), max(Decimal(0), data.cpu_pct)).quantize(Decimal("0.01")),
        max(0, data.changed_files),
        (data.archived.key, data.archived.sha256, data.archived.bytes) if data.archived else None,
        _pct(data.mem_pct),
        _pct(data.disk_pct),
        _restore(data.restore),
        host_keys,
    )


def _restore(body: RestoreBody | None) -> RestoreOutcome | None:
    """The restore report, its error text printable only (it is stored and shown to the instructor)."""
    if body is None:
        return None
    error = "".join(c for c in body.error if c.isprintable())[:300]
    return RestoreOutcome(body.bytes, body.sha256_ok, body.extracted, error)


@dataclass(frozen=True)
class AgentAnswer:
    """What the agent is told: the keys to install, and whether to stop now or until when it may run."""

    authorized_keys: list[str]
    lease: LeaseAnswer
    archive_key: str | None = None  # where the agent should upload the home's archive now (the retire flow asks)
    banner: str = ""  # the term-end warning, shown after SSH login (the agent's motd, never sshd's Banner)
    restore_recorded: bool = False  # the report's restore outcome is recorded: the agent stops reporting it
    resume_reset: int | None = None  # a reset's new instance is pinned: the caller queues that reset's job
    owner: tuple[int, int] = (0, 0)  # the reporting workspace's course and student (for the caller's other reads)
    # From the course's settings read with the lease; False for a reset's new instance (its token is not the
    # workspace's yet): it collects nothing.
    collect_activity: bool = False
    record_commands: bool = False  # typed commands, only where activity is collected
    end_sessions: bool = False  # locked out for the final archive: end the student's sessions before any archive

    def as_json(self) -> dict[str, object]:
        """The heartbeat's JSON answer (lease_until as an ISO instant and as epoch seconds for the agent)."""
        return (
            {
                "authorized_keys": self.authorized_keys,
                "stop": self.lease.stop,
                "reason": self.lease.reason,
                "lease_until": self.lease.lease_until.isoformat(),
                "lease_until_epoch": int(self.lease.lease_until.timestamp()),
                "banner": self.banner,
                "collect_activity": self.collect_activity,
                "record_commands": self.record_commands,
            }
            | ({"restore_recorded": True} if self.restore_recorded else {})
            | ({"end_sessions": True} if self.end_sessions else {})
        )


def record_heartbeat(
    session: Session,
    token: str,
    report: Report,
    *,
    prices: RegionPrices | None,
    lease: timedelta,
    now: datetime | None = None,
) -> AgentAnswer:
    """Store a report from the token's own workspace; answer with its keys and its lease."""
    ws = session.scalar(
        select(Workspace).where(Workspace.agent_token_hash == token_hash(token or "-")).with_for_update()
    )
    now = now or utcnow()
    if ws is None:
        new_instance = _reset_heartbeat(session, token, report, prices=prices, lease=lease, now=now)
        if new_instance is not None:
            return new_instance
    if ws is None or ws.agent_token_revoked_at is not None:
        raise HeartbeatRejected("unknown or revoked agent token")
    if ws.id != report.workspace_id:
        raise HeartbeatRejected("this token belongs to another workspace")
    session.add(
        Heartbeat(
            workspace_id=ws.id,
            at=now,
            ssh_sessions=report.ssh_sessions,
            jupyter_active=report.jupyter_active,
            cpu_pct=report.cpu_pct,
            mem_pct=report.mem_pct,
            disk_pct=report.disk_pct,
            changed_files=report.changed_files,
        )
    )
    if report.active or ws.last_activity_at is None:
        ws.last_activity_at = now
    if ws.state in (S.PROVISIONING, S.STARTING):
        set_state(session, ws, S.RUNNING, actor="agent", reason="agent reported in")
    if report.changed_files > 0:  # a later change makes an archive reported before it stale
        ws.home_changed_at = now
    if report.archived is not None and report_after_lockout(ws.locked_out_at, ws.lockout_answered_at):
        note_report(ws, *report.archived)  # else made before the lockout: stale, the answer asks again
    if ws.locked_out_at is not None and ws.lockout_answered_at is None:
        ws.lockout_answered_at = now  # this answer carries the lockout: the next report comes after it
    if report.restore is not None:  # recorded once; acknowledged every time, so the agent stops reporting it
        record_outcome(session, ws, report.restore, now)
    apply_host_key_report(session, ws, report.host_keys, now)
    session.flush()
    keys, end_sessions = lockout_answer(ws.locked_out_at, [k.public_key for k in active_keys(session, ws.person_id)])
    row = student_row(session, ws.course_id, ws.person_id, now)  # the course and policy, read once for all below
    answer = lease_for(session, ws.course_id, ws.person_id, ws.state.value, now, prices, lease,
                       archiving_until=ws.archiving_until, row=row)  # fmt: skip
    banner = term_notice(session, term_of_row(ws.course_id, row), ws.person_id, now) or ""
    collects, records = activity_flags(row.integrity, bool(row.record_commands))
    return AgentAnswer(keys, answer, wanted_archive_key(ws), banner, restore_recorded=report.restore is not None,
                       owner=(ws.course_id, ws.person_id), collect_activity=collects,
                       record_commands=records, end_sessions=end_sessions)  # fmt: skip


def _reset_heartbeat(
    session: Session, token: str, report: Report, *, prices: RegionPrices | None, lease: timedelta, now: datetime
) -> AgentAnswer | None:
    """A report from a reset's new EC2 instance (its token is on the reset row until the switch): note that its
    agent runs and pin its host keys on the reset row (first report wins; a different later one is kept apart,
    audited, and fails the reset). No heartbeat row: the student's activity is on the old instance until the switch.
    None when the token is no active reset's."""
    row = session.scalar(
        select(WorkspaceReset)
        .where(WorkspaceReset.new_agent_token_hash == token_hash(token or "-"), WorkspaceReset.state.in_(ACTIVE))
        .with_for_update()
    )
    if row is None:
        return None
    ws = session.get(Workspace, row.workspace_id)
    if ws is None or ws.id != report.workspace_id:
        raise HeartbeatRejected("this token belongs to another workspace")
    row.new_agent_seen_at = now
    apply_reset_host_key_report(session, row, ws, report.host_keys, now)
    session.flush()
    keys = [k.public_key for k in active_keys(session, ws.person_id)]
    answer = lease_for(session, ws.course_id, ws.person_id, WorkspaceState.RUNNING.value, now, prices, lease)
    # pinned (or refused: the job then fails the reset at once): the reset carries on (a running job absorbs it)
    resume = row.state in ("restoring", "switching") and bool(row.new_host_keys)
    return AgentAnswer(keys, answer, resume_reset=row.id if resume else None, owner=(ws.course_id, ws.person_id))
