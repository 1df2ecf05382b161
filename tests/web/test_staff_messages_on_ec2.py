"""On EC2 the agent gets the unread staff messages in its heartbeat answer and writes them where sshd's PAM shows
them at login (/etc/motd.d); once read in the tool, the next heartbeat removes them."""

from __future__ import annotations

from datetime import UTC, date, datetime

from classroom.roles import StaffLevel
from classroom.services.messages import Draft, mark_read, send_message
from provisioning.agent import cwc_agent
from provisioning.agent.cwc_agent import LeaseKeeper, heartbeat
from provisioning.agent_service import issue_agent_token
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person
from tests.support.outage import flask_post


class _Poweroff:
    def schedule(self, at: float) -> None:
        pass

    def now(self, reason: str) -> None:
        raise AssertionError(reason)


def test_the_real_agent_writes_unread_messages_to_the_motd_and_removes_them_once_read(session, client, tmp_path):
    course = make_course(session, term_start=date(2026, 9, 1), term_end=date(2026, 12, 20))
    make_policy(session, course)
    sophie = make_person(session, course, name="Sophie Martin")
    alex = make_person(session, course, level=StaffLevel.HEAD_TA, name="Alex Thompson")
    ws = make_running(session, course.id, sophie.id, datetime.now(UTC))
    token = issue_agent_token(ws)
    session.commit()
    motd = tmp_path / "motd.d" / "cwc-messages"
    cfg = {"url": "http://localhost/api/agent/heartbeat", "token": token, "workspace_id": ws.id,
           "user": "nobody-here", "home": str(tmp_path / "home"), "motd": str(motd)}  # fmt: skip
    keeper = LeaseKeeper(_Poweroff(), 900)
    post = flask_post(client, lambda: True)
    body = {"workspace_id": ws.id}
    assert heartbeat(cfg, keeper, body, 60.0, post=post) == "renewed"
    assert not motd.exists()  # nothing unread: no banner
    send_message(session, course.id, author_id=alex.id, student_id=sophie.id,
                 draft=Draft("Batch size", "Use 64.", client_key="k1"))  # fmt: skip
    session.commit()
    heartbeat(cfg, keeper, body, 120.0, post=post)
    assert "1 unread message" in motd.read_text() and "Batch size (from Alex Thompson)" in motd.read_text()
    assert oct(motd.stat().st_mode & 0o777) == "0o644"
    mark_read(session, course.id, sophie.id, by_student=True)
    session.commit()
    heartbeat(cfg, keeper, body, 180.0, post=post)
    assert not motd.exists()
    assert cwc_agent.MOTD == "/etc/motd.d/cwc-messages"
