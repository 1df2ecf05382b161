"""Per-course SSH certificate authorities and the short-lived certificates staff get for one session.

Staff never get a student's key: they get an OpenSSH user certificate signed by the course's CA, for one
workspace (principal = the workspace's login), valid for the session only, with a key id naming the staff member
and the session. Workspaces trust the course CA (EC2: sshd's TrustedUserCAKeys; locally: the runtime), and the
runtime also refuses a certificate whose serial is revoked or unknown. The CA's private key is stored encrypted.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import CourseSshCa, StaffSshCert, Workspace
from config.settings import Settings
from provisioning.ssh_keys import SshKeyError, fingerprint, normalise_public_key

MAX_SESSION = timedelta(hours=2)
CLOCK_SKEW = timedelta(minutes=1)  # valid_after is backdated this much, as ssh-keygen users do
EXTENSIONS = (b"permit-pty", b"permit-port-forwarding")  # a debugging session: a terminal and Jupyter's tunnel
VIEW_USER = "cwc-view"  # on EC2: the OS user of view-only debug sessions (the student's home, read-only)


def workspace_login(workspace_id: int) -> str:
    """The workspace's SSH login (local runtime) and the certificate principal staff get for it."""
    return f"ws{workspace_id}"


def view_principal(workspace_id: int) -> str:
    """A view-only debug session's certificate principal: on EC2 only the view user accepts it (the user data's
    AuthorizedPrincipalsFile), so such a certificate never opens the student's own, writable account."""
    return f"ws{workspace_id}-view"


def workspace_id_from_login(login: str) -> int | None:
    """The workspace id a login names, or None (no difference is shown to the client)."""
    digits = login[2:] if login.startswith("ws") else ""
    return int(digits) if digits.isdigit() and len(digits) < 10 and not digits.startswith("0") else None


def _fernet(settings: Settings) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cwc-ssh-ca-v1")
    key = hkdf.derive(settings.secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def ensure_course_ca(session: Session, course_id: int, *, settings: Settings) -> CourseSshCa:
    """The course's CA, created on first use (one per course, even under concurrent first uses)."""
    ca = session.get(CourseSshCa, course_id)
    if ca is not None:
        return ca
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())  # fmt: skip
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    session.execute(
        insert(CourseSshCa)
        .values(
            course_id=course_id,
            public_key=public.decode() + f" cwc-course-{course_id}-ca",
            private_key_enc=_fernet(settings).encrypt(raw),
            created_at=utcnow(),
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["course_id"])
    )
    ca = session.get(CourseSshCa, course_id, populate_existing=True)
    assert ca is not None
    return ca


def issue_staff_certificate(
    session: Session,
    *,
    settings: Settings,
    workspace: Workspace,
    staff_person_id: int,
    staff_name: str,
    public_key: str,
    minutes: int = 30,
    now: datetime | None = None,
    purpose: str = "staff",
    session_label: str | None = None,
    principal: str | None = None,
    force_command: str | None = None,
) -> tuple[str, StaffSshCert]:
    """Sign the staff member's public key for this workspace's login, for `minutes`; record and audit it.

    `purpose` "terminal" is the browser terminal gateway's certificate for one connection (the person is then the
    one who opened it, a student for their own workspace); the key id starts with it, so logs tell them apart.
    `principal` replaces the workspace's login (a view-only debug session's `view_principal`); `force_command`
    becomes the OpenSSH critical option sshd runs instead of anything the client asks (EC2's recorder).
    """
    line = normalise_public_key(public_key)
    duration = timedelta(minutes=minutes)
    if not timedelta(minutes=1) <= duration <= MAX_SESSION:
        raise SshKeyError(f"A session lasts between 1 and {int(MAX_SESSION.total_seconds() // 60)} minutes.")
    now = now or utcnow()
    ca = ensure_course_ca(session, workspace.course_id, settings=settings)
    ca_key = serialization.load_ssh_private_key(_fernet(settings).decrypt(ca.private_key_enc), password=None)
    serial = secrets.randbits(62)
    login = principal or workspace_login(workspace.id)
    key_id = f"{purpose}:{staff_person_id}:{' '.join(staff_name.split())[:80]} session:{session_label or serial}"
    after, before = now - CLOCK_SKEW, now + duration
    builder = (
        serialization.SSHCertificateBuilder()
        .public_key(serialization.load_ssh_public_key(line.encode()))  # type: ignore[arg-type]
        .serial(serial)
        .type(serialization.SSHCertificateType.USER)
        .key_id(key_id.encode())
        .valid_principals([login.encode()])
        .valid_after(int(after.timestamp()))
        .valid_before(int(before.timestamp()))
    )
    for ext in EXTENSIONS:
        builder = builder.add_extension(ext, b"")
    if force_command:
        builder = builder.add_critical_option(b"force-command", force_command.encode())
    cert = builder.sign(ca_key)  # type: ignore[arg-type]
    row = StaffSshCert(serial=serial, course_id=workspace.course_id, workspace_id=workspace.id,
                       staff_person_id=staff_person_id, key_id=key_id, principal=login,
                       public_key_fingerprint=fingerprint(line), valid_after=after, valid_before=before,
                       created_at=now)  # fmt: skip
    session.add(row)
    session.flush()
    append_event(session, "ssh_cert.issued", actor_person_id=staff_person_id, course_id=workspace.course_id,
                 subject=login, details={"key_id": key_id, "serial": str(serial), "minutes": minutes})  # fmt: skip
    return cert.public_bytes().decode(), row


def revoke_staff_certificate(session: Session, *, cert_id: int, actor_person_id: int) -> StaffSshCert | None:
    """Revoke one certificate (the runtime refuses it from the next login); audited. Idempotent."""
    row = session.scalar(select(StaffSshCert).where(StaffSshCert.id == cert_id))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        append_event(session, "ssh_cert.revoked", actor_person_id=actor_person_id, course_id=row.course_id,
                     subject=row.principal, details={"key_id": row.key_id, "serial": str(row.serial)})  # fmt: skip
        session.flush()
    return row


TOOL_READ_COMMAND = "internal-sftp -R"  # sshd's own SFTP server, read-only: no shell, no command, no writes
# A restore's SFTP: it may create folders and files, never remove, rename or link anything (the client also opens
# every file with O_EXCL, so nothing the student has is overwritten).
TOOL_RESTORE_COMMAND = (
    "internal-sftp -p open,close,read,write,lstat,fstat,setstat,fsetstat,opendir,readdir,mkdir,realpath,stat,"
    "readlink,statvfs,fstatvfs,fsync,limits,expand-path,home-directory"
)


def issue_tool_certificate(
    session: Session,
    *,
    settings: Settings,
    workspace: Workspace,
    public_key: str,
    why: str,
    person_id: int | None,
    minutes: int = 5,
    now: datetime | None = None,
    command: str = TOOL_READ_COMMAND,
) -> str:
    """A certificate for the tool itself to read a workspace's home over SSH, for one connection: the course CA
    signs `public_key` for the workspace's principal with the critical option force-command "internal-sftp -R"
    (sshd serves read-only SFTP and nothing else: no shell, no pty, no forwarding), for a few minutes. The key id
    says why and for whom ("tool:export:12 ws7"), so the instance's sshd log names it. Not recorded as a staff
    certificate: the action it serves (export, backup) is audited itself. SshKeyError when the course has no CA.
    A backup's restore passes TOOL_RESTORE_COMMAND (create only) instead."""
    ca = session.get(CourseSshCa, workspace.course_id)
    if ca is None:
        raise SshKeyError("This course has no SSH certificate authority, so its workspaces trust no tool login.")
    ca_key = serialization.load_ssh_private_key(_fernet(settings).decrypt(ca.private_key_enc), password=None)
    now = now or utcnow()
    login = workspace_login(workspace.id)
    builder = (
        serialization.SSHCertificateBuilder()
        .public_key(serialization.load_ssh_public_key(normalise_public_key(public_key).encode()))  # type: ignore[arg-type]
        .serial(secrets.randbits(62))
        .type(serialization.SSHCertificateType.USER)
        .key_id(f"tool:{why}:{person_id or '-'} {login}".encode())
        .valid_principals([login.encode()])
        .valid_after(int((now - CLOCK_SKEW).timestamp()))
        .valid_before(int((now + timedelta(minutes=minutes)).timestamp()))
        .add_critical_option(b"force-command", command.encode())
    )
    return builder.sign(ca_key).public_bytes().decode()  # type: ignore[arg-type]


def revoked_serials(session: Session, workspace_id: int, now: datetime | None = None) -> list[int]:
    """Serials of this workspace's certificates revoked while still inside their validity: EC2's agent writes them
    to sshd's RevokedKeys (a KRL), so "End session" refuses new logins before the certificate expires."""
    now = now or utcnow()
    rows = session.scalars(
        select(StaffSshCert.serial)
        .where(StaffSshCert.workspace_id == workspace_id, StaffSshCert.revoked_at.is_not(None))
        .where(StaffSshCert.valid_before > now)
        .order_by(StaffSshCert.serial)
    )
    return [int(serial) for serial in rows]
