"""Staff get a certificate from a page (head TA: yes; TA: refused), and it logs in through the runtime."""

from __future__ import annotations

import asyncssh
from sqlalchemy import func, select

from classroom.db import utcnow
from classroom.models import Course, Enrollment, Person, StaffSshCert
from classroom.roles import StaffLevel
from lti_app.auth import csrf_token
from provisioning.ssh_keys import add_key, generate_key_pair
from tests.runtime.conftest import ssh_run
from tests.support.budget import make_running
from tests.support.lti import launch, tool_token
from tests.support.outage import launch_instance


def _staff(client, canvas, session, level):  # type: ignore[no-untyped-def]
    token = tool_token(launch(client, canvas, canvas.user("ta")))
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1"))
    enrollment.level = level
    session.commit()
    return token


def _student_workspace(client, canvas, session, backend):  # type: ignore[no-untyped-def]
    launch(client, canvas, canvas.user("student", 1))
    course = session.scalar(select(Course))
    sophie = session.scalar(select(Person).where(Person.sub == "student-1"))
    private, public = generate_key_pair("sophie")
    add_key(session, person_id=sophie.id, course_id=course.id, public_key=public, source="generated")
    ws = make_running(session, course.id, sophie.id, utcnow(), link="hw1")
    session.flush()
    ws.instance_id = launch_instance(backend, ws.id, f"tok-{ws.id}", grace_s=3600)
    session.commit()
    return ws


def _post(app, client, ws_id, token, **form):  # type: ignore[no-untyped-def]
    with app.app_context():
        csrf = csrf_token(token)
    return client.post(f"/app/workspaces/{ws_id}/ssh-certificate", data={"t": token, "csrf_token": csrf, **form})


def test_head_ta_gets_a_certificate_that_logs_in(app, client, canvas, session, backend, runtime):
    ws = _student_workspace(client, canvas, session, backend)
    alex = _staff(client, canvas, session, StaffLevel.HEAD_TA)
    assert client.get(f"/app/workspaces/{ws.id}/ssh-certificate", query_string={"t": alex}).status_code == 200
    private, public = generate_key_pair("alex")
    resp = _post(app, client, ws.id, alex, public_key=public, minutes="20")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    cert_line = body.split('<code id="ssh-cert">', 1)[1].split("</code>", 1)[0]
    assert cert_line.startswith("ssh-ed25519-cert-v01@openssh.com ")
    row = session.scalar(select(StaffSshCert))
    assert row.principal == f"ws{ws.id}" and (row.valid_before - row.valid_after).total_seconds() == 21 * 60
    creds = (asyncssh.import_private_key(private), asyncssh.import_certificate(cert_line))
    assert ssh_run(runtime.rt.port, f"ws{ws.id}", [creds], "whoami")[1] == "ubuntu\n"


def test_read_only_ta_and_bad_input_get_no_certificate(app, client, canvas, session, backend):
    ws = _student_workspace(client, canvas, session, backend)
    priya = _staff(client, canvas, session, StaffLevel.TA)
    public = generate_key_pair("priya")[1]
    assert _post(app, client, ws.id, priya, public_key=public).status_code == 403
    session.query(Enrollment).filter(Enrollment.person_id.in_(select(Person.id).where(Person.sub == "ta-1"))).update(
        {"level": StaffLevel.HEAD_TA}, synchronize_session=False
    )
    session.commit()
    assert _post(app, client, ws.id, priya, public_key="not a key").status_code == 400
    assert _post(app, client, ws.id, priya, public_key=public, minutes="500").status_code == 400
    assert _post(app, client, ws.id, priya, public_key=public, minutes="-3").status_code == 400
    assert client.post(f"/app/workspaces/{ws.id}/ssh-certificate",
                       data={"t": priya, "public_key": public}).status_code in (400, 403)  # fmt: skip
    assert _post(app, client, ws.id + 999, priya, public_key=public).status_code == 404
    assert session.scalar(select(func.count()).select_from(StaffSshCert)) == 0
