"""Issue 15 item 3: course materials go from the browser straight to S3 by presigned parts; the tool checks the
name, the folders and the course's storage allowance first, verifies the parts, and deletes and renames. Roles:
instructor and head TA act, a TA reads, students and strangers get nothing, another course's files are not found."""

from __future__ import annotations

import os

import requests
from sqlalchemy import func, select

from classroom.models import AuditEvent, Course
from provisioning.aws_materials import PART_BYTES
from tests.hardening.test_materials_upload import _materials, app  # noqa: F401  (the live-moto app fixture)
from tests.support.budget import make_policy
from tests.support.lti import hidden_fields, launch, tool_token


def _form(client, token: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return hidden_fields(client.get("/app/materials", query_string={"t": token}).get_data(as_text=True))


def _signed(flask_app, token: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The token and a valid CSRF value, as a forged page of the same user would send."""
    from lti_app.auth import csrf_token

    with flask_app.app_context():
        return {"t": token, "csrf_token": csrf_token(token)}


def _post(client, form, route: str, **data):  # type: ignore[no-untyped-def]
    return client.post(f"/app/materials/{route}", data={**form, **data}, headers={"Accept": "application/json"})


def _key(session) -> str:  # type: ignore[no-untyped-def]
    from provisioning.course_cloud import course_key

    return course_key(session.scalar(select(Course.id)))


def _audits(session) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("materials.%")))


def test_an_upload_in_folders_goes_by_parts_resumes_then_is_renamed_and_deleted(client, canvas, session, backend):
    form = _form(client, tool_token(launch(client, canvas, canvas.user("instructor"))))
    body = os.urandom(PART_BYTES + 100)  # two parts
    started = _post(client, form, "uploads", path="datasets/week1/../big.bin", size=str(len(body)))
    assert started.status_code == 200, started.data
    info = started.get_json()
    assert info["path"] == "datasets/week1/big.bin" and info["parts"] == 2 and len(info["urls"]) == 2
    ref = {"path": info["path"], "upload_id": info["upload_id"], "parts": "2"}
    assert requests.put(info["urls"][0], data=body[:PART_BYTES], timeout=60).status_code == 200

    early = _post(client, form, "uploads/complete", **ref)  # the connection dropped after part 1
    assert early.status_code == 503 and "resume" in early.get_json()["message"]
    resume = _post(client, form, "uploads/parts", **ref).get_json()
    assert resume["stored"] == [1] and list(resume["urls"]) == ["2"]
    assert requests.put(resume["urls"]["2"], data=body[PART_BYTES:], timeout=60).status_code == 200
    done = _post(client, form, "uploads/complete", **ref)
    assert done.status_code == 200 and done.get_json() == {"path": "datasets/week1/big.bin", "size": len(body)}
    assert _materials(backend, _key(session)) == {"datasets/week1/big.bin": body}
    page = client.get("/app/materials", query_string={"t": form["t"]}).get_data(as_text=True)
    assert "datasets/week1/big.bin" in page and "16.0 MB" in page

    renamed = _post(client, form, "rename", path="datasets/week1/big.bin", new_path="datasets/week2/big-v2.bin")
    assert renamed.status_code == 200
    assert list(_materials(backend, _key(session))) == ["datasets/week2/big-v2.bin"]
    assert _post(client, form, "delete", path="datasets/week2/big-v2.bin").status_code == 200
    assert _materials(backend, _key(session)) == {}
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("materials.%"))).all()
    assert {"materials.upload_started", "materials.uploaded", "materials.renamed", "materials.deleted"} <= set(actions)


def test_a_file_over_the_allowance_is_refused_with_the_reason_and_nothing_is_written(client, canvas, session, backend):
    form = _form(client, tool_token(launch(client, canvas, canvas.user("instructor"))))
    make_policy(session, session.scalar(select(Course)), materials_allowance_bytes=10 * 1024 * 1024)
    session.commit()
    before = _audits(session)
    refused = _post(client, form, "uploads", path="datasets/huge.bin", size=str(60 * 1024 * 1024))
    assert refused.status_code == 413
    message = refused.get_json()["message"]
    assert "60.0 MB" in message and "10.0 MB" in message and "Nothing was uploaded" in message
    uploads = backend.s3.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", [])
    assert uploads == [] and _materials(backend, _key(session)) == {} and _audits(session) == before


def test_a_name_clash_asks_first_and_writes_nothing(client, canvas, session, backend):
    form = _form(client, tool_token(launch(client, canvas, canvas.user("instructor"))))
    backend.upload_material(_key(session), "hw1/data.csv", b"v1", overwrite=False)
    before = _audits(session)
    clash = _post(client, form, "uploads", path="hw1/data.csv", size="3")
    assert clash.status_code == 409 and "hw1/data.csv" in clash.get_json()["message"]
    assert backend.s3.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", []) == []
    assert _audits(session) == before
    kept = _post(client, form, "uploads", path="hw1/data.csv", size="3", on_conflict="rename")
    assert kept.status_code == 200 and kept.get_json()["path"] == "hw1/data (2).csv"


def test_roles_students_tas_strangers_and_other_courses(app, client, canvas, session, backend):  # noqa: F811
    teacher = _form(client, tool_token(launch(client, canvas, canvas.user("instructor"))))
    make_policy(session, session.scalar(select(Course)))
    session.commit()
    key = _key(session)  # taken while this is the only course: `other` below adds a second
    backend.upload_material(key, "notes.txt", b"n", overwrite=False)
    ta = _signed(app, tool_token(launch(client, canvas, canvas.user("ta"))))  # a TA's page has no upload form
    student = _signed(app, tool_token(launch(client, canvas, canvas.user("student"))))
    other = _form(client, tool_token(launch(client, canvas, canvas.user("instructor", 2), context_id="other-course")))
    before = _audits(session)
    for route, data in (("uploads", {"path": "x.bin", "size": "1"}), ("delete", {"path": "notes.txt"}),
                        ("rename", {"path": "notes.txt", "new_path": "n2.txt"}),
                        ("uploads/parts", {"path": "notes.txt", "upload_id": "u"})):  # fmt: skip
        assert _post(client, student, route, **data).status_code == 403
        assert _post(client, ta, route, **data).status_code == 403
        assert _post(client, {}, route, **data).status_code == 401
        assert _post(client, {"t": teacher["t"]}, route, **data).status_code == 403  # no CSRF token
    assert _post(client, other, "delete", path="notes.txt").status_code == 404
    assert _post(client, other, "rename", path="notes.txt", new_path="mine.txt").status_code == 404
    assert client.get("/app/materials", query_string={"t": ta["t"]}).status_code == 200  # TAs read
    assert _materials(backend, key) == {"notes.txt": b"n"} and _audits(session) == before


def test_the_instructor_sets_the_allowance_a_bad_value_or_a_ta_changes_nothing(app, client, canvas, session, backend):  # noqa: F811
    from classroom.models import CoursePolicy

    teacher = _form(client, tool_token(launch(client, canvas, canvas.user("instructor"))))
    make_policy(session, session.scalar(select(Course)))
    session.commit()
    page = client.get("/app/materials", query_string={"t": teacher["t"]}).get_data(as_text=True)
    assert 'name="allowance_gb" inputmode="decimal" value="200"' in page
    ta = _signed(app, tool_token(launch(client, canvas, canvas.user("ta"))))
    before = _audits(session)
    for form, value, status in ((teacher, "abc", 422), (teacher, "0", 422), (teacher, "1e9", 422), (ta, "1", 403)):
        assert _post(client, form, "allowance", allowance_gb=value).status_code == status
    session.expire_all()
    assert session.scalar(select(CoursePolicy.materials_allowance_bytes)) == 200 * 1024**3
    assert _audits(session) == before
    assert _post(client, teacher, "allowance", allowance_gb="0.01").status_code == 303
    session.expire_all()
    assert session.scalar(select(CoursePolicy.materials_allowance_bytes)) == int(0.01 * 1024**3)
    refused = _post(client, teacher, "uploads", path="a.bin", size=str(20 * 1024 * 1024))
    assert refused.status_code == 413 and "10.2 MB" in refused.get_json()["message"]
