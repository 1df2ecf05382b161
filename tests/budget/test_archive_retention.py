"""Archive retention: the bucket's lifecycle rule per course prefix (merged, never clobbering other rules), each
archive's recorded expiry, the purge job that deletes expired archives and records it (row + audit), and the
staff page listing archives per student (student 403, TA read-only, another course 404). Real moto, PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import func, select

from classroom.models import ArchivePurge, AuditEvent, Course, Enrollment, Person, WorkspaceArchive
from classroom.roles import StaffLevel
from provisioning.agent_archive import record_archive
from provisioning.archive_retention import archives_by_student, due_for_purge, purge_expired
from provisioning.aws_archive import ArchiveResult, archive_object_key
from tests.support.budget import ensure_policies, make_running
from tests.support.factories import make_course, make_person
from tests.support.lti import launch, tool_token

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _audits(session, action: str) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0


def _archive(session, backend, course_id: int, person_id: int, days: int, link: str = "hw1") -> WorkspaceArchive:  # type: ignore[no-untyped-def]
    """A workspace whose home was archived (the object in S3, the row recorded with its expiry)."""
    ws = make_running(session, course_id, person_id, T0, link=link)
    session.commit()
    body = f"home of workspace {ws.id}".encode()
    key = archive_object_key(f"c{course_id}", ws.id)
    backend.s3.put_object(Bucket=backend.bucket, Key=key, Body=body)
    record_archive(session, ws, ArchiveResult(key, hashlib.sha256(body).hexdigest(), len(body)), days)
    return session.scalar(select(WorkspaceArchive).where(WorkspaceArchive.workspace_id == ws.id))


def test_the_lifecycle_rule_is_merged_and_never_clobbers_other_prefixes(backend):
    others = [
        {"ID": "keep-tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 2}},
        {"ID": "cwc-archives-c9", "Filter": {"Prefix": "courses/c9/archives/"}, "Status": "Enabled",
         "Expiration": {"Days": 30}},
    ]  # fmt: skip
    backend.s3.put_bucket_lifecycle_configuration(Bucket=backend.bucket, LifecycleConfiguration={"Rules": others})
    backend.ensure_archive_retention("c1", 180)
    backend.ensure_archive_retention("c1", 365)  # the course changed its setting: its own rule only is replaced
    rules = {r["ID"]: r for r in backend.s3.get_bucket_lifecycle_configuration(Bucket=backend.bucket)["Rules"]}
    assert set(rules) == {"keep-tmp", "cwc-archives-c9", "cwc-archives-c1"}
    assert rules["keep-tmp"]["Expiration"]["Days"] == 2 and rules["cwc-archives-c9"]["Expiration"]["Days"] == 30
    assert rules["cwc-archives-c1"]["Filter"]["Prefix"] == "courses/c1/archives/"
    assert rules["cwc-archives-c1"]["Expiration"]["Days"] == 365


def test_expired_archives_are_purged_once_and_recorded(session, backend):
    course = make_course(session)
    emily, david = make_person(session, course, name="Emily Chen"), make_person(session, course, name="David Kim")
    session.commit()
    old = _archive(session, backend, course.id, emily.id, days=30)
    kept = _archive(session, backend, course.id, david.id, days=365, link="hw2")
    assert old.expires_at == old.created_at + timedelta(days=30)  # the recorded expiry
    gone_by_rule = _archive(session, backend, course.id, david.id, days=1, link="hw3")
    backend.s3.delete_object(Bucket=backend.bucket, Key=gone_by_rule.s3_key)  # S3's rule got there first
    now = old.created_at + timedelta(days=31)
    assert sorted(purge_expired(session, backend, now)) == sorted([old.id, gone_by_rule.id])
    with pytest.raises(ClientError):
        backend.s3.head_object(Bucket=backend.bucket, Key=old.s3_key)
    assert backend.s3.head_object(Bucket=backend.bucket, Key=kept.s3_key)["ContentLength"] == kept.size_bytes
    rows = session.scalars(select(ArchivePurge).order_by(ArchivePurge.archive_id)).all()
    assert [(r.archive_id, r.s3_key, r.sha256) for r in rows] == sorted(
        [(old.id, old.s3_key, old.sha256), (gone_by_rule.id, gone_by_rule.s3_key, gone_by_rule.sha256)]
    )
    assert _audits(session, "archive.purged") == 2
    assert purge_expired(session, backend, now + timedelta(days=1)) == []  # a retried job: nothing twice
    assert _audits(session, "archive.purged") == 2
    session.expire_all()
    assert session.get(WorkspaceArchive, kept.id).purged_at is None
    listed = dict(archives_by_student(session, course.id))
    assert [a.id for a in listed["David Kim"]] and all(
        a.key.startswith(f"courses/c{course.id}/") for a in listed["David Kim"]
    )


def test_a_refused_delete_records_nothing(session, backend):
    course = make_course(session)
    emily = make_person(session, course, name="Emily Chen")
    session.commit()
    old = _archive(session, backend, course.id, emily.id, days=1)
    bucket, backend.bucket = backend.bucket, "no-such-bucket-cwc"  # S3 refuses the delete
    try:
        assert purge_expired(session, backend, old.created_at + timedelta(days=2)) == []
    finally:
        backend.bucket = bucket
    assert (
        session.scalar(select(func.count()).select_from(ArchivePurge)) == 0 and _audits(session, "archive.purged") == 0
    )
    session.expire_all()
    assert session.get(WorkspaceArchive, old.id).purged_at is None


def test_the_purge_rule():
    assert due_for_purge(T0, None, T0) and not due_for_purge(T0, None, T0 - timedelta(seconds=1))
    assert not due_for_purge(T0, T0, T0 + timedelta(days=1))  # purged once
    assert not due_for_purge(None, None, T0)  # no recorded expiry: never purged by the tool


def _form(app, token):  # type: ignore[no-untyped-def]
    from lti_app.auth import csrf_token

    with app.app_context():
        return {"t": token, "csrf_token": csrf_token(token)}


def test_the_archives_page_roles(app, client, canvas, session, backend):
    emily_t = tool_token(launch(client, canvas, canvas.user("student", 1)))
    ta = tool_token(launch(client, canvas, canvas.user("ta")))
    instructor = tool_token(launch(client, canvas, canvas.user("instructor")))
    other = tool_token(launch(client, canvas, canvas.user("instructor", 2), context_id="cs231-fall2024"))
    ensure_policies(session)
    course = session.scalar(select(Course).where(Course.context_id == "cs229-fall2024"))
    emily = session.scalar(select(Person).where(Person.sub == "student-1"))
    archive = _archive(session, backend, course.id, emily.id, days=365)
    url = f"/app/archives/{archive.id}/download"

    assert client.get("/app/archives", query_string={"t": emily_t}).status_code == 403
    as_ta = client.get("/app/archives", query_string={"t": ta}).get_data(as_text=True)
    assert archive.s3_key in as_ta and archive.sha256[48:] in as_ta and "Download" not in as_ta  # read-only
    as_other = client.get("/app/archives", query_string={"t": other}).get_data(as_text=True)
    assert archive.s3_key not in as_other and "No home has been archived" in as_other
    refused = {"student": (emily_t, 403), "read-only TA": (ta, 403), "instructor of another course": (other, 404)}
    for who, (token, status) in refused.items():
        assert client.post(url, data=_form(app, token)).status_code == status, who
    assert client.post(url, data={"t": instructor}).status_code == 403  # no CSRF value
    assert client.post(url).status_code == 401
    assert _audits(session, "archive.downloaded") == 0  # nothing written by any refusal

    as_instructor = client.get("/app/archives", query_string={"t": instructor}).get_data(as_text=True)
    assert "Emily" in as_instructor and "Download" in as_instructor and "Kept until" in as_instructor
    done = client.post(url, data=_form(app, instructor))
    assert done.status_code == 303 and urlparse(done.headers["Location"]).path.endswith(archive.s3_key)
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-1"))
    enrollment.level = StaffLevel.HEAD_TA
    session.commit()
    assert client.post(url, data=_form(app, ta)).status_code == 303
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "archive.downloaded").order_by(AuditEvent.id))
    assert event.details["key"] == archive.s3_key and _audits(session, "archive.downloaded") == 2
