"""The lease rule (pure), the agent's real code holding it, and what a student without sudo cannot change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from classroom.models import IntegritySettings
from provisioning.agent import cwc_agent
from provisioning.agent.cwc_agent import LeaseKeeper, heartbeat
from provisioning.agent_service import issue_agent_token
from provisioning.lease import LeaseInputs, lease_decision
from provisioning.userdata import UserDataInput, render_user_data
from tests.support.budget import make_policy, make_running
from tests.support.factories import make_course, make_person
from tests.support.outage import flask_post
from tests.support.statements import statements

NOW = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)


def _inputs(**overrides: object) -> LeaseInputs:
    values: dict[str, object] = dict(
        state="running",
        cap=Decimal(24),
        spent=Decimal(10),
        storage_reserve=Decimal(1),
        unmetered=Decimal(0),
        hourly=Decimal("0.05"),
        term_end_at=NOW + timedelta(days=30),
    )
    values.update(overrides)
    return LeaseInputs(**values)  # type: ignore[arg-type]


def test_lease_is_the_earliest_of_the_lease_the_budget_and_the_term_end():
    assert lease_decision(NOW, LEASE, _inputs()).lease_until == NOW + LEASE
    budget = lease_decision(NOW, LEASE, _inputs(spent=Decimal("22.99"), unmetered=Decimal("0.005")))
    assert not budget.stop and budget.lease_until == NOW + timedelta(seconds=360)  # $0.005 left at $0.05/h
    term = lease_decision(NOW, LEASE, _inputs(term_end_at=NOW + timedelta(minutes=4)))
    assert term.lease_until == NOW + timedelta(minutes=4)


def test_lease_says_stop_when_out_of_budget_term_over_unpriced_or_not_meant_to_run():
    assert lease_decision(NOW, LEASE, _inputs(unmetered=Decimal(13))).reason == "budget used up"
    assert lease_decision(NOW, LEASE, _inputs(term_end_at=NOW)).reason == "term over"
    assert lease_decision(NOW, LEASE, _inputs(cap=None)).reason == "the budget cannot be evaluated"
    for state in ("stopping", "stopped", "hibernated", "terminated", "failed"):
        answer = lease_decision(NOW, LEASE, _inputs(state=state))
        assert answer.stop and answer.lease_until == NOW
    assert not lease_decision(NOW, LEASE, _inputs(state="provisioning")).stop


class RecordedPoweroff:
    """The agent's poweroff, recorded instead of run (the agent code is otherwise the real one)."""

    def __init__(self) -> None:
        self.scheduled: list[float] = []
        self.stopped: list[str] = []

    def schedule(self, at: float) -> None:
        self.scheduled.append(at)

    def now(self, reason: str) -> None:
        self.stopped.append(reason)


def test_agent_boot_schedules_a_poweroff_and_a_restart_in_the_same_boot_does_not_extend_it(tmp_path: Path):
    state = str(tmp_path / "lease.json")
    first = LeaseKeeper(RecordedPoweroff(), 900, state, boot_id="boot-1")
    first.boot(1000.0)
    assert first.poweroff.scheduled == [1900.0]
    first.answer({"stop": False, "lease_until_epoch": 2500}, 1100.0)
    again = LeaseKeeper(RecordedPoweroff(), 900, state, boot_id="boot-1")  # agent restarted (crash, kill)
    again.boot(2400.0)
    assert again.poweroff.scheduled == [2500.0]  # the lease it held, not 2400 + 900
    fresh = LeaseKeeper(RecordedPoweroff(), 900, state, boot_id="boot-2")  # started again by the tool
    fresh.boot(5000.0)
    assert fresh.poweroff.scheduled == [5900.0]


def test_agent_only_moves_the_poweroff_on_an_answer_carrying_a_lease_and_stops_when_told():
    keeper = LeaseKeeper(RecordedPoweroff(), 900)
    keeper.boot(0.0)
    for junk in ({}, {"lease_until_epoch": "9999999"}, {"lease_until_epoch": True}, {"stop": "yes"}):
        assert keeper.answer(junk, 10.0) == "kept"
    assert keeper.poweroff.scheduled == [900.0] and not keeper.check(899.0)
    assert keeper.check(900.0) and keeper.poweroff.stopped == ["lease expired"]
    told = LeaseKeeper(RecordedPoweroff(), 900)
    assert told.answer({"stop": True, "reason": "budget used up"}, 5.0) == "stop"
    assert told.poweroff.stopped == ["budget used up"]


def _agent_for(session, backend_home: Path):  # type: ignore[no-untyped-def]
    course = make_course(session, term_start=date(2026, 9, 1), term_end=date(2026, 12, 20))
    make_policy(session, course)
    person = make_person(session, course)
    ws = make_running(session, course.id, person.id, datetime.now(UTC))
    token = issue_agent_token(ws)
    session.commit()
    home = backend_home / "home"
    cfg = {"url": "http://localhost/api/agent/heartbeat", "token": token, "workspace_id": ws.id,
           "user": "nobody-here", "home": str(home)}  # fmt: skip
    return ws, cfg, home


def test_real_agent_renews_only_on_the_tools_answer_and_a_refused_token_wipes_the_keys(session, client, tmp_path):
    ws, cfg, home = _agent_for(session, tmp_path)
    keys = home / ".ssh" / "authorized_keys"
    keys.parent.mkdir(parents=True)
    keys.write_text("ssh-ed25519 AAAAC3Nza old-student-key\n")
    keeper = LeaseKeeper(RecordedPoweroff(), 900)
    keeper.boot(0.0)
    up = {"tool": False}
    post = flask_post(client, lambda: up["tool"])
    body = {"workspace_id": ws.id, "ssh_sessions": 1}
    assert heartbeat(cfg, keeper, body, 60.0, post=post).startswith("no answer")
    assert keeper.poweroff.scheduled == [900.0]  # the tool is down: nothing moved
    assert (
        heartbeat(cfg, keeper, body, 60.0, post=lambda *a: (500, {"lease_until_epoch": 10**10}))
        == "answer 500: lease kept"
    )
    up["tool"] = True
    assert heartbeat(cfg, keeper, body, 60.0, post=post) == "renewed"
    until = keeper.poweroff.scheduled[-1]
    assert abs(until - (datetime.now(UTC) + LEASE).timestamp()) < 60
    assert keys.read_text() == cwc_agent.KEYS_HEADER  # the student has no active key in the tool
    keys.write_text("ssh-ed25519 AAAAC3Nza added-by-hand\n")
    ws.agent_token_revoked_at = ws.created_at  # term end: the agent's token is revoked
    session.commit()
    assert heartbeat(cfg, keeper, body, 120.0, post=post) == "refused: keys wiped"
    assert keys.read_text() == cwc_agent.KEYS_HEADER and "added-by-hand" not in keys.read_text()
    assert keeper.poweroff.scheduled[-1] == until  # a refused answer never extends the lease


def test_user_data_gives_the_student_no_sudo_and_the_agent_root():
    text = render_user_data(
        UserDataInput(
            workspace_id=7,
            agent_url="https://tool.example/api/agent/heartbeat",
            agent_token="tok-7",
            os_user="ubuntu",
            ssh_public_keys=(),
            course_slug="cs229",
            region="us-east-1",
            file_system_id="fs-1",
            access_point_id="fsap-1",
            boot_grace_s=900,
        )  # fmt: skip
    )
    assert "for group in sudo admin wheel lxd docker; do gpasswd -d ubuntu" in text
    assert "rm -f /etc/sudoers.d/90-cloud-init-users" in text and "NOPASSWD" not in text
    assert "ubuntu ALL" not in text and "usermod -aG" not in text
    unit = text[text.index("<<'CWC_UNIT'") : text.index("\nCWC_UNIT\n")]
    assert "User=root" in unit and "Restart=always" in unit
    assert 'action.id.indexOf("org.freedesktop.login1.") == 0 && subject.user != "root"' in text  # no poweroff API
    assert "-d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT" in text  # the token is not in reach via IMDS
    assert "umask 077\ncat > /etc/cwc-agent.json" in text  # the agent's config (its token): root only
    assert "install -d -m 700 /var/lib/cwc-agent" in text  # the held lease: root only
    assert "InstanceInitiatedShutdownBehavior" not in text  # that is a launch parameter (test_aws_adapter)


def test_a_course_time_zone_nobody_knows_stops_the_lease_fail_closed(session):
    from config.prices import load_prices
    from provisioning.lease import lease_for

    now = datetime.now(UTC)
    course = make_course(session, time_zone="Mars/Olympus_Mons", term_end=(now + timedelta(days=10)).date())
    person = make_person(session, course)
    make_policy(session, course)
    ws = make_running(session, course.id, person.id, now - timedelta(minutes=5))
    session.flush()
    answer = lease_for(session, course.id, person.id, ws.state.value, now, load_prices().region("us-east-1"), LEASE)
    assert answer.stop and answer.reason == "the budget cannot be evaluated"
    course.time_zone = "America/Los_Angeles"  # the same student in a course whose term can be placed runs on
    session.flush()
    answer = lease_for(session, course.id, person.id, ws.state.value, now, load_prices().region("us-east-1"), LEASE)
    assert not answer.stop


def test_a_heartbeat_costs_at_most_ten_statements_and_answers_the_course_settings(session, client, app):
    """Every running workspace beats each minute: the route reads the workspace, the course and its policy once
    (lease, term notice, activity flags from one row) and each other table once. A bound, not a timing: a lookup
    added per beat fails it."""
    now = datetime.now(UTC)
    course = make_course(session, term_start=now.date() - timedelta(days=30), term_end=now.date() + timedelta(days=30))
    make_policy(session, course, integrity={"plagiarism_support": True})
    session.add(IntegritySettings(course_id=course.id, record_commands=True))
    person = make_person(session, course)
    ws = make_running(session, course.id, person.id, now - timedelta(minutes=5))
    token = issue_agent_token(ws)
    session.commit()
    with statements(app.extensions["cwc"].engine) as seen:
        for beat in range(3):
            seen.clear()
            body = {"workspace_id": ws.id, "ssh_sessions": 1, "cpu_pct": 50, "changed_files": beat}
            resp = client.post("/api/agent/heartbeat", json=body, headers={"Authorization": f"Bearer {token}"})
            answer = resp.get_json()
            assert resp.status_code == 200 and not answer["stop"], answer
            assert answer["collect_activity"] is True and answer["record_commands"] is True
            assert answer["banner"] == answer["motd"] == "" and answer["folders"] == answer["debug_open"] == []
            assert len(seen) <= 10, "\n".join(seen)  # was 16 (token, course and policy read again)
