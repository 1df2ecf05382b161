"""Issue 13: a NUL in a gradebook column name or a grade comment is refused (400, field named), nothing saved."""

from __future__ import annotations

from tests.conftest import count_rows
from tests.lms_sync.test_sync_web import grade_setup, setup_course, signed_in


def test_a_nul_in_a_column_name_is_refused_and_nothing_is_created(client, session, engine, platform):
    _course, token, form_csrf = setup_course(client, session, platform)
    resp = client.post(
        "/sync/line-items", data={"t": token, "csrf_token": form_csrf, "label": "Home\x00work", "points": "10"}
    )
    assert resp.status_code == 400 and "“label”" in resp.get_data(as_text=True)
    assert count_rows(engine, "lms_line_items") == 0


def test_a_nul_in_a_grade_comment_is_refused_and_nothing_is_saved(client, session, engine, platform):
    _course, item, (emily, _david) = grade_setup(client, session, platform)
    token, form_csrf = signed_in(client, platform, "ta")
    resp = client.post(
        f"/sync/grades/{item.id}",
        data={"t": token, "csrf_token": form_csrf, f"score-{emily}": "9", f"comment-{emily}": "ok\x00"},
    )
    assert resp.status_code == 400 and f"comment-{emily}" in resp.get_data(as_text=True)
    assert count_rows(engine, "lms_grades") == 0


def test_an_item_id_beyond_postgresql_integers_is_not_found_not_500(client, session, platform):
    grade_setup(client, session, platform)
    token, _csrf = signed_in(client, platform, "ta")
    for big in ("2147483648", "9223372036854775808"):
        assert client.get("/sync/grades", query_string={"t": token, "item": big}).status_code in (200, 404)
        assert client.post(f"/sync/grades/{big}", data={"t": token}).status_code == 404
