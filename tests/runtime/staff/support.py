"""Shared set-up for the staff-tool tests: a course launched by every role, Sophie's running workspace in the
local runtime (whose data folder the app reads), and helpers to post forms as each role."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import Course, Enrollment, Person, Workspace
from classroom.roles import StaffLevel
from lti_app.auth import csrf_token
from provisioning.ssh_keys import add_key, generate_key_pair
from tests.runtime.conftest import ssh_run
from tests.support.budget import make_running
from tests.support.lti import launch, tool_token
from tests.support.outage import launch_instance
from tests.support.platform import ROLES, User

TRAIN = "import torch\nbatch_size = 4096\n"


@dataclass
class Cast:
    """Tokens for every role, and Sophie's workspace."""

    tokens: dict[str, str]
    ws: Workspace
    sophie: Person
    sophie_key: object
    people: dict[str, Person] = field(default_factory=dict)


def _user(sub: str, name: str, role: str) -> User:
    return User(sub, name, f"{sub}@university.edu", ROLES[role])


def set_up_course(client, canvas, session, backend, runtime) -> Cast:  # type: ignore[no-untyped-def]
    """Launch Dr. Martinez, Alex (head TA), Priya (TA), Sophie, David and another course's instructor."""
    users = {
        "instructor": _user("instructor-1", "Jennifer Martinez", "instructor"),
        "head_ta": _user("ta-1", "Alex Thompson", "ta"),
        "ta": _user("ta-2", "Priya Patel", "ta"),
        "student": _user("student-1", "Sophie Martin", "student"),
        "other_student": _user("student-2", "David Kim", "student"),
    }
    tokens = {role: tool_token(launch(client, canvas, user)) for role, user in users.items()}
    other = _user("instructor-9", "Other Instructor", "instructor")
    tokens["other_instructor"] = tool_token(launch(client, canvas, other, context_id="cs231-fall2024"))
    alex = session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1"))
    alex.level = StaffLevel.HEAD_TA
    course = session.scalar(select(Course).where(Course.context_id == "cs229-fall2024"))
    sophie = session.scalar(select(Person).where(Person.sub == "student-1"))
    private, public = generate_key_pair("sophie")
    add_key(session, person_id=sophie.id, course_id=course.id, public_key=public, source="generated")
    ws = make_running(session, course.id, sophie.id, utcnow(), link="hw1")
    session.flush()
    ws.instance_id = launch_instance(backend, ws.id, f"tok-{ws.id}", grace_s=3600)
    session.commit()
    import asyncssh

    key = asyncssh.import_private_key(private)
    setup = f"mkdir -p homework/hw1 && printf '%s' '{TRAIN}' > homework/hw1/train.py && echo 'lr: 0.1' > .trainrc"
    assert ssh_run(runtime.rt.port, f"ws{ws.id}", [key], setup)[0] == 0
    people = {r: session.scalar(select(Person).where(Person.sub == u.sub)) for r, u in users.items()}
    return Cast(tokens, ws, sophie, key, people)


def post(app, client, url: str, token: str, **form: str):  # type: ignore[no-untyped-def]
    """POST a form as the browser would (tool token and CSRF)."""
    with app.app_context():
        csrf = csrf_token(token)
    return client.post(url, data={"t": token, "csrf_token": csrf, **form})
