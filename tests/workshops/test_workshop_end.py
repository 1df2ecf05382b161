"""The workshop's end: every workspace stops, walk-ins without the extension lose access and their workspaces are
archived and removed, the organiser gets a report; after the 7-day extension the rest goes too. Once each."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from classroom.models import (
    AuditEvent,
    Enrollment,
    EnrollmentStatus,
    Notification,
    SpendDaily,
    Workshop,
    WorkshopParticipant,
    Workspace,
)
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState
from provisioning.workshop_end import run_workshop_ends
from tests.workshops.support import create_workshop, join, owner_token


def _running(session, course_id):  # type: ignore[no-untyped-def]
    """The simulated cloud launched every requested workspace (what provision + reconcile record)."""
    for ws in session.scalars(select(Workspace).where(Workspace.course_id == course_id)):
        ws.state, ws.instance_id = WorkspaceState.RUNNING, f"i-{ws.id:08x}"
    session.commit()


def _status(session, workshop, name):  # type: ignore[no-untyped-def]
    person = session.scalar(select(WorkshopParticipant.person_id).where(WorkshopParticipant.display_name == name))
    ws = session.scalar(select(Workspace).where(Workspace.person_id == person))
    enrolled = session.scalar(
        select(Enrollment.status).where(Enrollment.person_id == person, Enrollment.course_id == workshop.course_id)
    )
    return ws, enrolled


def test_end_stops_all_keeps_extensions_seven_days_then_cleans_up(app, client, canvas, session):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token, max_participants="3", budget="30", extension_days="7",
                                 extension_daily_price="1", extension_allowance="7")  # fmt: skip
    links = {name: join(app, code, name, **extra).headers["Location"]
             for name, extra in (("Keen", {"extension": "on"}), ("Brief", {}), ("Quick", {}))}  # fmt: skip
    workshop = session.scalar(select(Workshop))
    _running(session, workshop.course_id)
    for n, name in enumerate(("Keen", "Brief", "Quick")):  # the sweep's ledger rows: $1, $2, $3 and 1, 2, 3 hours
        person = session.scalar(select(WorkshopParticipant.person_id).where(WorkshopParticipant.display_name == name))
        session.add(SpendDaily(course_id=workshop.course_id, person_id=person, day=date.today(), compute=Decimal(n + 1),
                               storage=Decimal(0), running_seconds=Decimal(3600 * (n + 1))))  # fmt: skip
    session.commit()

    assert run_workshop_ends(session, workshop.ends_at - timedelta(seconds=1)).ended == []
    done = run_workshop_ends(session, workshop.ends_at)
    session.commit()
    assert done.ended == [workshop.id] and done.purged == []
    assert sorted(j.func.rsplit(".", 1)[1] for j in done.jobs) == ["retire_workspace"] * 2 + ["stop_workspace"] * 3
    keen, keen_status = _status(session, workshop, "Keen")
    assert keen.desired_state is DesiredState.STOPPED and keen.retire_after is None
    assert keen_status is EnrollmentStatus.ACTIVE
    brief, brief_status = _status(session, workshop, "Brief")
    assert brief.retire_after == workshop.ends_at and brief_status is EnrollmentStatus.DROPPED
    report = session.scalar(select(Notification.body).where(Notification.subject.like("%report")))
    assert session.scalar(select(Notification.course_id).where(Notification.subject.like("%report"))) != (
        workshop.course_id
    )  # in the organiser's LMS course, where they see it
    assert "Participants: 3 of 3" in report and "Spend: $6.00 of $30.00" in report
    assert "average $2.00, highest $3.00" in report and "Compute hours: 6.0" in report
    assert "Kept learning: 1 participants" in report

    walk_in = app.test_client()
    assert walk_in.get(links["Brief"]).status_code == 410  # access ended with the workshop
    assert walk_in.get(links["Keen"]).status_code == 200  # the extension keeps the link working
    assert join(app, code, "Late").status_code == 410  # the code expired at the end

    again = run_workshop_ends(session, workshop.ends_at + timedelta(days=6))
    assert again.ended == [] and again.purged == [] and again.jobs == []
    purge = run_workshop_ends(session, workshop.ends_at + timedelta(days=7))
    session.commit()
    assert purge.purged == [workshop.id]
    keen, keen_status = _status(session, workshop, "Keen")
    assert keen.retire_after == workshop.ends_at + timedelta(days=7) and keen_status is EnrollmentStatus.DROPPED
    assert walk_in.get(links["Keen"]).status_code == 410
    assert run_workshop_ends(session, workshop.ends_at + timedelta(days=8)).jobs == []
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("workshop.%"))).all()
    assert sorted(actions) == sorted(["workshop.created", "workshop.extension"] + ["workshop.joined"] * 3
                                     + ["workshop.ended", "workshop.purged"])  # fmt: skip
    assert session.scalar(select(func.count(Workspace.id)).where(Workspace.retire_after.is_(None))) == 0
