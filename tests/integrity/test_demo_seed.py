"""`make run`'s hw5 scene: seeded once for the registered Demo LMS course, and the instructor's first launch
into that course can download the report with David's five indicators."""

from __future__ import annotations

import subprocess

from sqlalchemy import func, select

from classroom.models import ActivityEvent, Course, CoursePolicy
from dev.integrity_seed import seed_hw5
from provisioning.aws_evidence import store_for
from tests.support.lti import launch, tool_token

CLASSMATES = [
    ("Aarav Patel", "aarav.patel@university.edu"),
    ("Chloe Nguyen", "chloe.nguyen@university.edu"),
    ("Omar Haddad", "omar.haddad@university.edu"),
    ("Yara Silva", "yara.silva@university.edu"),
    ("Liam Walker", "liam.walker@university.edu"),
]


def test_seed_once_then_the_instructor_downloads_the_pdf(client, canvas, session, backend, tmp_path):
    store = store_for(backend)
    assert "seeded for 8 students (1 similar pair" in seed_hw5(session, store, canvas.issuer, CLASSMATES)
    session.commit()
    assert seed_hw5(session, store, canvas.issuer, CLASSMATES) == "integrity demo: hw5 already seeded"
    assert "not registered" in seed_hw5(session, store, "https://nowhere.example", CLASSMATES)
    events = session.scalar(select(func.count()).select_from(ActivityEvent))
    token = tool_token(launch(client, canvas, canvas.user("instructor")))  # the course the seed made
    assert session.scalar(select(func.count()).select_from(Course)) == 1
    assert session.scalar(select(func.count()).select_from(CoursePolicy)) == 0  # the wizard still opens first
    pdf = client.get(
        "/app/integrity/report",
        query_string={"t": token, "assignment": "hw5", "format": "pdf", "start": "2024-10-10", "end": "2024-10-21"},
    )
    assert pdf.status_code == 200
    (tmp_path / "r.pdf").write_bytes(pdf.data)
    out = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    flags = out.split("Indicators for investigation", 1)[1]
    assert sum(1 for line in flags.splitlines() if line.startswith(tuple(f"{i}. David Kim:" for i in range(1, 9)))) == 5
    assert "Emily Chen: Code similarity" in flags and "scp emily-code.zip" in out and events > 40
