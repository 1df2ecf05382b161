"""Development data only (`make run`): the seed's Problem 4 in CS 229, so a newcomer can open the Integrity
page as Dr. Martinez or Alex and download the hw5 report.

Once the Demo LMS is registered, this adds the course as its launches would (same platform, context id and
people), Homework 5 (due Oct 20, 2024, 11:59 PM Pacific), ended workspaces for Emily, David, Sophie and five
classmates with their activity (chained into the audit trail like the agent's), deadline snapshots in the
simulated archive bucket, a finished similarity run, and integrity settings (campus range 171.64.0.0/16,
commands recorded). It never runs against a course that already has hw5.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from classroom.integrity.chain import chain_activity
from classroom.integrity.similarity import find_pairs
from classroom.integrity.store import EvidenceStore
from classroom.models import (
    ActivityEvent,
    Course,
    DeadlineSnapshot,
    Deployment,
    DeploymentStatus,
    Enrollment,
    IntegritySettings,
    Person,
    Platform,
    SimilarityRun,
    Workspace,
    WorkspaceFolder,
)
from classroom.roles import StaffLevel
from classroom.workspaces.lifecycle import DesiredState, WorkspaceState

ZONE = ZoneInfo("America/Los_Angeles")
CONTEXT_ID = "cs229-fall2024"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
DUE = datetime(2024, 10, 20, 23, 59, tzinfo=ZONE)
FOLDER = "homework/hw5"
STARTER = (
    '"""Homework 5: logistic regression from scratch."""\nimport numpy as np\n\n\n'
    'def load(path):\n    return np.loadtxt(path, delimiter=",")\n'
)
CAMPUS_IP, HOME_IP = "171.64.10.20", "73.158.2.40"
# name, email, first day (Oct), sessions [(day, hour, minutes)], commits, own code seed
CLASS = [
    ("Emily Chen", "emily.chen", 15, [(15, 14.5, 195), (17, 18, 195), (20, 21, 120)], 12, 1),
    ("David Kim", "david.kim", 19, [(19, 22, 72)], 0, 1),
    ("Sophie Martinez", "sophie.martinez", 14, [(14, 10, 180), (16, 15, 240), (19, 9, 150)], 7, 3),
]
# classmates' work (their names come from the Demo LMS roster): first day, sessions, commits, code seed
CLASSMATES = [
    (13, [(13, 19, 240), (18, 20, 210)], 9, 4),
    (16, [(16, 11, 200), (18, 13, 160), (20, 17, 90)], 6, 5),
    (14, [(14, 16, 300), (17, 14, 180)], 11, 6),
    (15, [(15, 9, 150), (19, 10, 200)], 5, 7),
    (12, [(12, 20, 220), (16, 19, 200), (20, 12, 100)], 8, 8),
]


def _code(seed: int) -> str:
    body = [STARTER]
    for i in range(40):
        body.append(
            f"\ndef step_{i}(x, w={seed * 7 + i}):\n    z = x @ np.full(x.shape[1], w / {i + seed + 1})\n"
            f"    for k in range({i % 6 + seed}):\n        z = z - {seed + 0.5} * (1 / (1 + np.exp(-z)) - {i % 2})\n"
            f"    return z.mean() * {i * seed + 3}\n"
        )
    return "".join(body)


def _tar(files: dict[str, str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size, info.mtime, info.mode = len(data), int(DUE.timestamp()) - 3600, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _events(n: int, email: str, sessions: list[tuple[int, float, int]], commits: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    per = max(1, -(-commits // len(sessions))) if commits else 0
    made = 0
    for s, (day, hour, minutes) in enumerate(sessions):
        start = datetime(2024, 10, day, int(hour), int(hour % 1 * 60), tzinfo=ZONE)
        sid, ip = f"{email}-{s}", CAMPUS_IP if (n + s) % 3 else HOME_IP
        out.append(
            {"kind": "ssh_login", "at": start, "details": {"session": sid, "source_ip": ip, "who": "student key"}}
        )
        for c in range(per if made < commits else 0):
            if made >= commits:
                break
            made += 1
            out.append(
                {
                    "kind": "git_commit",
                    "at": start + timedelta(minutes=15 + c * 20),
                    "details": {
                        "repo": FOLDER,
                        "hash": uuid.uuid5(uuid.NAMESPACE_URL, f"{email}{made}").hex,
                        "message": f"hw5: part {made}",
                        "files": ["hw5_solution.py"],
                    },
                }
            )
        out.append(
            {
                "kind": "file_changed",
                "at": start + timedelta(minutes=minutes - 5),
                "details": {"path": f"{FOLDER}/hw5_solution.py", "lines_added": 40 + 10 * s, "lines_removed": 4},
            }
        )
        out.append({"kind": "ssh_logout", "at": start + timedelta(minutes=minutes), "details": {"session": sid}})
    return out


DAVID_TYPED = ("ls", "unzip emily-code.zip", "mkdir -p homework/hw5 && cp emily-code/hw5_solution.py homework/hw5/")


def _david_extra() -> list[dict[str, Any]]:
    at, sid = datetime(2024, 10, 19, 22, 3, tzinfo=ZONE), "david.kim-0"
    return [
        {
            "kind": "transfer",
            "at": at,
            "details": {"protocol": "scp", "direction": "upload", "path": "emily-code.zip", "session": "david.kim-0"},
        },
        {
            "kind": "extract",
            "at": at + timedelta(minutes=1),
            "details": {
                "tool": "unzip",
                "archive": "emily-code.zip",
                "dest": ".",
                "files": 1,
                "paths": ["emily-code/hw5_solution.py"],
            },
        },
        *(  # typed in his session's terminal (the course records commands)
            {"kind": "command", "at": at + timedelta(seconds=30 + 40 * n), "details": {"line": line, "session": sid}}
            for n, line in enumerate(DAVID_TYPED)
        ),
    ]


def seed_hw5(session: Session, store: EvidenceStore, issuer: str, classmates: list[tuple[str, str]]) -> str:
    """Add the hw5 scene once (classmates: (name, email) of five more roster students); say what happened
    (flush, never commit)."""
    platform = session.scalar(select(Platform).where(Platform.issuer == issuer))
    if platform is None:
        return "integrity demo: the Demo LMS is not registered; nothing seeded"
    deployment = session.scalar(
        select(Deployment).where(Deployment.platform_id == platform.id, Deployment.status == DeploymentStatus.APPROVED)
    )
    if deployment is None:
        return "integrity demo: no approved deployment; nothing seeded"
    session.execute(
        insert(Course)
        .values(
            platform_id=platform.id,
            deployment_id=deployment.id,
            context_id=CONTEXT_ID,
            label="CS 229",
            title="Machine Learning",
            time_zone="America/Los_Angeles",
        )
        .on_conflict_do_nothing(constraint="uq_courses_platform_context")
    )
    course = session.scalar(select(Course).where(Course.platform_id == platform.id, Course.context_id == CONTEXT_ID))
    assert course is not None
    if session.scalar(
        select(WorkspaceFolder.id)
        .join(Workspace)
        .where(Workspace.course_id == course.id, WorkspaceFolder.link_key == "hw5")
    ):
        return "integrity demo: hw5 already seeded"
    session.execute(
        insert(IntegritySettings)
        .values(course_id=course.id, campus_ranges=["171.64.0.0/16"], record_commands=True)
        .on_conflict_do_nothing()
    )
    snapshots: dict[str, dict[str, str]] = {}
    people = CLASS + [
        (name, mail.split("@")[0], *work) for (name, mail), work in zip(classmates, CLASSMATES, strict=False)
    ]
    for n, (name, email, day, sessions, commits, seed) in enumerate(people):
        person = _person(session, platform.id, course.id, name, email)
        created = datetime(2024, 10, day, int(sessions[0][1]), int(sessions[0][1] % 1 * 60), tzinfo=ZONE)
        ws = Workspace(
            course_id=course.id,
            person_id=person.id,
            link_key="hw5",
            link_title=f"ml-hw5-{email.split('.')[0]}",
            template_id="ml-cpu-student",
            instance_type="t3.medium",
            volume_gb=30,
            region="us-east-1",
            state=WorkspaceState.TERMINATED,
            desired_state=DesiredState.TERMINATED,
            created_at=created,
            state_changed_at=DUE + timedelta(days=1),
            metered_until=DUE + timedelta(days=1),
        )
        if n == 1:
            ws.link_title = "ml-homework5"
        session.add(ws)
        session.flush()
        session.add(WorkspaceFolder(workspace_id=ws.id, link_key="hw5", title="Homework 5", folder=FOLDER, due_at=DUE))
        events = _events(n, email, sessions, commits) + (_david_extra() if n == 1 else [])
        rows = [
            {
                "workspace_id": ws.id,
                "event_id": f"demo-{ws.id}-{i:04d}",
                "kind": e["kind"],
                "at": e["at"],
                "details": e["details"],
                "received_at": e["at"],
            }
            for i, e in enumerate(events)
        ]
        ids = session.scalars(insert(ActivityEvent).values(rows).returning(ActivityEvent.id)).all()
        chain_activity(session, course.id, list(ids))
        files = {"hw5_solution.py": _code(seed) + ("\n# tidy\n" if n == 1 else "")}
        body = _tar(files)
        key = store.put(body)
        session.add(
            DeadlineSnapshot(
                course_id=course.id,
                workspace_id=ws.id,
                person_id=person.id,
                link_key="hw5",
                folder=FOLDER,
                due_at=DUE,
                requested_at=DUE,
                taken_at=DUE + timedelta(minutes=1),
                sha256=key.rsplit("/", 1)[1].split(".")[0],
                s3_key=key,
                size_bytes=len(body),
                files=1,
            )
        )
        snapshots[str(person.id)] = files
    starter = {"hw5_solution.py": STARTER}
    pairs = find_pairs(snapshots, starter, 60)
    session.add(
        SimilarityRun(
            course_id=course.id,
            link_key="hw5",
            status="done",
            done=len(snapshots),
            total=len(snapshots),
            threshold=60,
            starter=starter,
            pairs=[p.as_json() for p in pairs],
            requested_by=0,
            finished_at=DUE + timedelta(hours=2),
        )
    )
    session.flush()
    return f"integrity demo: hw5 seeded for {len(people)} students ({len(pairs)} similar pair(s))"


def _person(session: Session, platform_id: int, course_id: int, name: str, email: str) -> Person:
    """The person as the Demo LMS's launch will name them (its `sub` is derived from the email)."""
    sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-lms:{email}@university.edu"))
    given, family = name.split(" ", 1)
    session.execute(
        insert(Person)
        .values(
            platform_id=platform_id,
            sub=sub,
            name=name,
            given_name=given,
            family_name=family,
            email=f"{email}@university.edu",
        )
        .on_conflict_do_nothing(constraint="uq_people_platform_sub")
    )
    person = session.scalar(select(Person).where(Person.platform_id == platform_id, Person.sub == sub))
    assert person is not None
    session.execute(
        insert(Enrollment)
        .values(course_id=course_id, person_id=person.id, lti_roles=[LEARNER], level=StaffLevel.STUDENT)
        .on_conflict_do_nothing(constraint="uq_enrollments_course_person")
    )
    return person
