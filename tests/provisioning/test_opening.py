"""Start under bursts (one workspace, one job, one state change) and the pure pieces of opening a link."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from classroom.db import make_session_factory
from classroom.models import Course, Workspace, WorkspaceEvent
from classroom.services.opening import Link, Opened, folder_for, open_workspace, workspace_key
from classroom.workspaces.lifecycle import WorkspaceState
from config.catalog import load_catalog
from config.prices import load_prices
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

PRICES = load_prices().region("us-east-1")
CPU = load_catalog().get("ml-cpu-student")


def _burst(engine, course_id: int, person_id: int, links: list[Link]) -> list[Opened]:  # type: ignore[no-untyped-def]
    sessions = make_session_factory(engine)

    def press(link: Link) -> Opened:
        with sessions() as db:
            opened = open_workspace(db, db.get(Course, course_id), person_id, link, CPU,
                                    catalog=load_catalog(), prices=PRICES, region="us-east-1")  # fmt: skip
            db.commit()
            return opened

    with ThreadPoolExecutor(10) as pool:
        return list(pool.map(press, links))


def test_twenty_starts_across_ten_links_make_one_workspace_and_one_job(session, engine):
    course = make_course(session, term_start=None, term_end=None)
    make_policy(session, course)
    emily = make_person(session, course, name="Emily Chen")
    session.commit()
    links = [Link(f"hw{n % 10}", f"HW{n % 10}", assignment=True) for n in range(20)]
    opened = _burst(engine, course.id, emily.id, links)
    assert session.scalar(select(func.count()).select_from(Workspace)) == 1
    assert sum(len(o.jobs) for o in opened) == 1 and all(o.ws is not None for o in opened)
    ws = session.scalar(select(Workspace))
    ws.state, ws.instance_id = WorkspaceState.STOPPED, "i-0burst"
    session.commit()
    again = _burst(engine, course.id, emily.id, links)  # twenty Starts of the stopped workspace
    starts = select(func.count()).where(WorkspaceEvent.workspace_id == ws.id, WorkspaceEvent.to_state == "starting")
    assert session.scalar(starts) == 1 and sum(len(o.jobs) for o in again) == 1


def test_workspace_keys_and_folders():
    assert workspace_key("student", "hw3", "ml-cpu-student") == "template:ml-cpu-student"
    assert workspace_key("assignment", "hw3", "ml-cpu-student") == "hw3"
    assert folder_for("HW2: Neural Networks") == "homework/hw2-neural-networks"
    assert folder_for("Übung 3 — ../../etc") == "homework/ubung-3-etc"
    assert folder_for("???") == "homework/assignment"
