"""Staff get short-lived certificates from the course CA, never a student's key; the runtime checks them."""

from __future__ import annotations

from datetime import timedelta

import asyncssh
from sqlalchemy import func, select

from classroom.models import AuditEvent, StaffSshCert
from classroom.models.people import StaffLevel
from provisioning.ssh_ca import issue_staff_certificate, revoke_staff_certificate, workspace_login
from provisioning.ssh_keys import generate_key_pair
from tests.runtime.conftest import ssh_refused, ssh_run
from tests.support.factories import make_person


def _staff_cert(session, settings, course, ws, minutes=30):  # type: ignore[no-untyped-def]
    alex = make_person(session, course, name="Alex Rivera", level=StaffLevel.HEAD_TA)
    private, public = generate_key_pair("alex")
    cert_line, row = issue_staff_certificate(
        session, settings=settings, workspace=ws, staff_person_id=alex.id, staff_name=alex.name, public_key=public,
        minutes=minutes,
    )  # fmt: skip
    session.commit()
    key = asyncssh.import_private_key(private)
    return (key, asyncssh.import_certificate(cert_line)), row


def test_staff_certificate_works_inside_its_validity_and_is_refused_after(
    runtime, make_workspace, session, settings, course, clock, caplog
):
    sophie = make_workspace("Sophie Martin")
    creds, row = _staff_cert(session, settings, course, sophie.workspace, minutes=30)
    assert row.principal == sophie.login == workspace_login(sophie.workspace.id)
    assert row.key_id.startswith(f"staff:{row.staff_person_id}:Alex Rivera session:")
    status, out, _ = ssh_run(runtime.rt.port, sophie.login, [creds], "id -un")
    assert (status, out) == (0, "ubuntu\n")
    clock.shift = timedelta(minutes=31)
    assert ssh_refused(runtime.rt.port, sophie.login, [creds])
    assert any("expired" in r.getMessage() and row.key_id in r.getMessage() for r in caplog.records)
    clock.shift = timedelta(minutes=-5)
    assert ssh_refused(runtime.rt.port, sophie.login, [creds])  # not yet valid


def test_staff_certificate_for_another_workspace_is_refused(runtime, make_workspace, session, settings, course, caplog):
    sophie, david = make_workspace("Sophie Martin"), make_workspace("David Kim", link="hw2")
    creds, _ = _staff_cert(session, settings, course, sophie.workspace)
    assert ssh_refused(runtime.rt.port, david.login, [creds])
    assert any(f"not {david.login}" in r.getMessage() for r in caplog.records)


def test_revoked_certificate_is_refused_and_both_steps_are_audited(runtime, make_workspace, session, settings, course):
    sophie = make_workspace("Sophie Martin")
    creds, row = _staff_cert(session, settings, course, sophie.workspace)
    assert ssh_run(runtime.rt.port, sophie.login, [creds], "true")[0] == 0
    revoke_staff_certificate(session, cert_id=row.id, actor_person_id=row.staff_person_id)
    session.commit()
    assert ssh_refused(runtime.rt.port, sophie.login, [creds])
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subject == sophie.login)).all()
    assert sorted(actions) == ["ssh_cert.issued", "ssh_cert.revoked"]


def test_certificate_from_another_ca_is_refused(runtime, make_workspace, session, settings, course):
    sophie = make_workspace("Sophie Martin")
    creds, row = _staff_cert(session, settings, course, sophie.workspace)
    rogue_ca = asyncssh.generate_private_key("ssh-ed25519")
    forged = rogue_ca.generate_user_certificate(creds[0], row.key_id, principals=[sophie.login], serial=row.serial)
    assert ssh_refused(runtime.rt.port, sophie.login, [(creds[0], forged)])
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 1


def test_staff_never_get_in_with_their_plain_key(runtime, make_workspace, session, settings, course):
    sophie = make_workspace("Sophie Martin")
    creds, _ = _staff_cert(session, settings, course, sophie.workspace)
    assert ssh_refused(runtime.rt.port, sophie.login, [creds[0]])


def _flipped(cert: asyncssh.SSHCertificate) -> asyncssh.SSHCertificate:
    """The same certificate object sending its bytes with one bit of the signature flipped (asyncssh's import
    would refuse such bytes on the client already, so the client is made to send them)."""
    tampered = bytearray(cert.public_data)
    tampered[-5] ^= 1
    cert.public_data = bytes(tampered)
    return cert


def test_a_tampered_certificate_is_refused_and_logged(runtime, make_workspace, session, settings, course, caplog):
    sophie = make_workspace("Sophie Martin")
    (key, cert), row = _staff_cert(session, settings, course, sophie.workspace)
    assert ssh_run(runtime.rt.port, sophie.login, [(key, cert)], "true")[0] == 0  # untouched: works
    caplog.clear()
    assert ssh_refused(runtime.rt.port, sophie.login, [(key, _flipped(cert))])
    refusals = [r.getMessage() for r in caplog.records if "ssh login refused" in r.getMessage()]
    assert any(sophie.login in m and "invalid certificate" in m for m in refusals), refusals


def _refusal(port: int, login: str, keys: list[object]) -> tuple[type, str]:
    try:
        ssh_run(port, login, keys, "true")
    except asyncssh.Error as exc:
        return type(exc), str(exc)
    raise AssertionError("logged in")


def test_no_such_workspace_and_not_your_workspace_look_the_same_to_the_client(runtime, make_workspace):
    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    port = runtime.rt.port
    stranger = _refusal(port, emily.login, [david.key])
    nobody = _refusal(port, workspace_login(999999), [david.key])
    assert stranger[0] is nobody[0] is asyncssh.PermissionDenied
    # the client writes the login it asked for into the message itself; nothing else differs
    assert stranger[1].replace(emily.login, "LOGIN") == nobody[1].replace(workspace_login(999999), "LOGIN")
    assert stranger[1] == f"Permission denied for user {emily.login} on host 127.0.0.1"
