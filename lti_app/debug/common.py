"""What every staff-tool route shares: the student and workspace in the launch's course, and audited refusals."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, request
from sqlalchemy import select

from classroom.audit import append_event
from classroom.models import Enrollment, Person, Workspace
from classroom.roles import StaffLevel, can_act
from classroom.workspaces.lifecycle import ENDED
from lti_app.auth import current
from lti_app.errors import Forbidden
from lti_app.inputs import as_id
from lti_app.runtime import commit, db, settings
from provisioning.home_access import HomeReader, home_reader, local_homes
from provisioning.runtime.home_files import HomeFiles


def student_in_course(person_id: int) -> Person:
    """A student of the launch's course (404 for anyone else: staff, another course's student, no one)."""
    row = db().scalar(
        select(Person)
        .join(Enrollment, Enrollment.person_id == Person.id)
        .where(
            Person.id == person_id, Enrollment.course_id == current().course.id, Enrollment.level == StaffLevel.STUDENT
        )  # fmt: skip
    )
    if row is None:
        abort(404)
    return row


def student_workspaces(person: Person) -> list[Workspace]:
    """The student's workspaces in this course, live ones first, newest first."""
    rows = db().scalars(
        select(Workspace)
        .where(Workspace.course_id == current().course.id, Workspace.person_id == person.id)
        .order_by(Workspace.created_at.desc())
    )
    return sorted(rows, key=lambda w: w.state in ENDED)


def chosen_workspace(person: Person, raw: str | None = None) -> Workspace | None:
    """The workspace named by `ws` (form or query), else the student's newest live one; 404 for another's."""
    raw = raw if raw is not None else (request.values.get("ws") or "")
    workspaces = student_workspaces(person)
    if not raw:
        return workspaces[0] if workspaces else None
    wanted = as_id(raw)
    found = next((w for w in workspaces if w.id == wanted), None)
    if found is None:
        abort(404)
    return found


def require_acting(action: str, person: Person, check: Callable[[StaffLevel], bool] = can_act) -> None:
    """Refuse (403) a staff member whose level does not allow `action`, and audit the refusal."""
    ctx = current()
    if check(ctx.level):
        return
    db().rollback()
    append_event(db(), "staff.refused", actor_person_id=ctx.person.id, course_id=ctx.course.id,
                 subject=str(person.id), details={"action": action, "level": ctx.level.value})  # fmt: skip
    commit()
    raise Forbidden("Your role in this course does not allow this: ask the head TA or the instructor.")


def home_files() -> HomeFiles:
    """The local runtime's homes (an EC2 workspace's home is read over SSH: provisioning.home_access)."""
    return local_homes(settings())


def reader_for(ws: Workspace, why: str) -> HomeReader:
    """The workspace's home reader for the signed-in staff member (WorkspaceSshError when it cannot be read)."""
    return home_reader(db(), ws, settings(), why=why, person_id=current().person.id)
