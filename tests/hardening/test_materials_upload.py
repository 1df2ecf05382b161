"""Issue 13: materials keep their Unicode names; a name collision asks, renames or replaces, never silently."""

from __future__ import annotations

from io import BytesIO

import pytest

from tests.support.apps import app_on_simulated_aws
from tests.support.lti import hidden_fields, launch, tool_token


@pytest.fixture
def app(settings, backend):  # type: ignore[no-untyped-def]
    yield from app_on_simulated_aws(settings, backend)


def _materials(backend, course_id: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    prefix = f"courses/{course_id}/materials/"
    out = {}
    for obj in backend.s3.list_objects_v2(Bucket=backend.bucket, Prefix=prefix).get("Contents", []):
        out[obj["Key"][len(prefix) :]] = backend.s3.get_object(Bucket=backend.bucket, Key=obj["Key"])["Body"].read()
    return out


def _upload(client, form, *files, **extra):  # type: ignore[no-untyped-def]
    data = {**form, **extra, "files": [(BytesIO(body), name) for name, body in files]}
    return client.post("/app/materials", data=data, content_type="multipart/form-data")


def _course_key(client, session) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from classroom.models import Course
    from provisioning.course_cloud import course_key

    return course_key(session.scalar(select(Course.id)))


def test_non_ascii_names_do_not_collapse_and_a_collision_is_never_silent(client, canvas, session, backend, engine):
    teacher = tool_token(launch(client, canvas, canvas.user("instructor")))
    form = hidden_fields(client.get("/app/materials", query_string={"t": teacher}).get_data(as_text=True))
    resp = _upload(client, form, ("数据集X.csv", b"data"), ("报告X.csv", b"report"), folder="数据")
    assert resp.status_code == 303
    key = _course_key(client, session)
    assert _materials(backend, key) == {"数据/数据集X.csv": b"data", "数据/报告X.csv": b"report"}

    again = _upload(client, form, ("数据集X.csv", b"new data"), folder="数据")  # default: ask
    assert again.status_code == 409 and "数据/数据集X.csv" in again.get_data(as_text=True)
    assert _materials(backend, key)["数据/数据集X.csv"] == b"data"

    kept = _upload(client, form, ("数据集X.csv", b"new data"), folder="数据", on_conflict="rename")
    assert kept.status_code == 303
    assert _materials(backend, key)["数据/数据集X (2).csv"] == b"new data"
    assert _materials(backend, key)["数据/数据集X.csv"] == b"data"

    replaced = _upload(client, form, ("报告X.csv", b"v2"), folder="数据", on_conflict="replace")
    assert replaced.status_code == 303 and _materials(backend, key)["数据/报告X.csv"] == b"v2"


def test_a_file_over_the_limit_is_refused_with_a_message_and_nothing_is_stored(client, canvas, session, backend):
    from classroom.materials import MAX_FILE_BYTES

    teacher = tool_token(launch(client, canvas, canvas.user("instructor")))
    form = hidden_fields(client.get("/app/materials", query_string={"t": teacher}).get_data(as_text=True))
    resp = _upload(client, form, ("small.csv", b"1"), ("big.bin", b"x" * (MAX_FILE_BYTES + 1)))
    assert resp.status_code == 413 and "larger than 15 MB" in resp.get_data(as_text=True)
    assert _materials(backend, _course_key(client, session)) == {}
