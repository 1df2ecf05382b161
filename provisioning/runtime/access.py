"""Who may log in to a local workspace: pure decisions over what the runtime knows at the moment of login.

The same rules as sshd on EC2: a student's own active key (AuthorizedKeysFile), or a certificate signed by the
course CA for this workspace's login (TrustedUserCAKeys + AuthorizedPrincipalsFile), inside its validity, and,
beyond sshd, not revoked. Every refusal has a reason for the runtime's log; the client sees only "denied".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

RUNNING = "running"


@dataclass(frozen=True)
class DebugFacts:
    """A staff debug session its certificate opens: recorded, time-boxed, view-only unless full control."""

    session_id: int
    label: str  # "D12": in the banner and the recording's name
    mode: str  # view | full
    expires_at: datetime
    student_name: str
    staff_name: str

    @property
    def read_only(self) -> bool:
        return self.mode != "full"


@dataclass(frozen=True)
class WorkspaceFacts:
    """One workspace at login time: its instance's state, its owner's active keys and its staff certificates."""

    workspace_id: int
    course_id: int
    instance_id: str
    instance_state: str  # as the (simulated) EC2 account reports it
    os_user: str
    mount_point: str  # the course materials, where EC2 mounts them (/mnt/<course>-materials)
    student_key_fingerprints: frozenset[str]
    ca_public_key: str | None  # "type base64" of the course CA, None before any certificate was issued
    valid_serials: frozenset[int]  # certificates issued for this workspace and not revoked
    debug: dict[int, DebugFacts] = field(default_factory=dict)  # open debug sessions by certificate serial
    notice: str = ""  # the term-end warning, shown in the login banner ("" outside the term's last day)


@dataclass(frozen=True)
class CertFacts:
    """What a presented OpenSSH user certificate says."""

    ca_public_key: str  # "type base64" of the signing key
    principals: tuple[str, ...]
    valid_after: datetime
    valid_before: datetime
    serial: int
    key_id: str


@dataclass(frozen=True)
class Decision:
    """Allowed, or refused with a reason for the log."""

    allowed: bool
    reason: str


def _reachable(facts: WorkspaceFacts | None) -> Decision | None:
    if facts is None:
        return Decision(False, "no such workspace")
    if facts.instance_state != RUNNING:
        return Decision(False, f"workspace not running ({facts.instance_state})")
    return None


def decide_key(facts: WorkspaceFacts | None, key_fingerprint: str) -> Decision:
    """A plain public key: only the workspace owner's own active keys."""
    refused = _reachable(facts)
    if refused:
        return refused
    assert facts is not None
    if key_fingerprint not in facts.student_key_fingerprints:
        return Decision(False, f"key {key_fingerprint} is not an active key of this workspace's student")
    return Decision(True, f"student key {key_fingerprint}")


def view_principal(login: str) -> str:
    """A view-only debug certificate's principal for this login (EC2 maps it to the read-only view user)."""
    return f"{login}-view"


def _view_session(facts: WorkspaceFacts, login: str, cert: CertFacts) -> bool:
    """A view-only debug session's certificate names the view principal, not the login: the runtime takes it for
    the login only when its serial opens a view-only session here (the sandbox then binds the home read-only)."""
    debug = facts.debug.get(cert.serial)
    return view_principal(login) in cert.principals and debug is not None and debug.read_only


def accepted_principal(login: str, cert: CertFacts) -> str:
    """The principal a certificate that `decide_cert` allowed was accepted for (asyncssh checks it again)."""
    return login if login in cert.principals else view_principal(login)


def decide_cert(facts: WorkspaceFacts | None, login: str, cert: CertFacts, now: datetime) -> Decision:
    """A certificate: the course CA, this login as principal, inside its validity, not revoked."""
    refused = _reachable(facts)
    if refused:
        return refused
    assert facts is not None
    if facts.ca_public_key is None or cert.ca_public_key != facts.ca_public_key:
        return Decision(False, f"certificate {cert.key_id!r} not signed by this course's CA")
    if login not in cert.principals and not _view_session(facts, login, cert):
        return Decision(False, f"certificate {cert.key_id!r} is for {list(cert.principals)}, not {login}")
    if now < cert.valid_after:
        return Decision(False, f"certificate {cert.key_id!r} not valid before {cert.valid_after.isoformat()}")
    if now >= cert.valid_before:
        return Decision(False, f"certificate {cert.key_id!r} expired at {cert.valid_before.isoformat()}")
    if cert.serial not in facts.valid_serials:
        return Decision(False, f"certificate {cert.key_id!r} (serial {cert.serial}) revoked or unknown")
    return Decision(True, f"staff certificate {cert.key_id!r}")
