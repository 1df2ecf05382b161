"""The tool's tabs through real launches: a student's in one row; staff's daily tabs in the row and the rest in
<details> groups, every link still there, each filtered by level, the current page marked (issue 14 follow-up)."""

from __future__ import annotations

import re

from tests.support.lti import launch, tool_token

PRIMARY = ["Home", "Dashboard", "Help queue", "Cost report", "Grades"]
OWNER_GROUPS = {
    "Set-up": ["Course materials", "Course settings", "Requests", "Staff", "Roster and due dates", "Workshops"],
    "Tools": ["SSH keys", "Integrity"],
    "Term end": ["Final report", "Archives", "Restore"],
}


def _nav(html: str) -> str:
    found = re.search(r'<nav class="tabs" aria-label="Cloud Workstation">(.*?)</nav>', html, re.S)
    assert found is not None
    return found[1]


def _links(fragment: str) -> list[str]:
    return re.findall(r"<a [^>]*>([^<]+)</a>", fragment)


def _groups(nav: str) -> dict[str, list[str]]:
    return {
        label: _links(body)
        for label, body in re.findall(
            r'<details class="tab-group[^"]*">\s*<summary>([^<]+).*?</summary>\s*<div class="tab-menu">(.*?)</div>',
            nav,
            re.S,
        )
    }


def _row(nav: str) -> list[str]:
    return _links(re.sub(r"<details.*?</details>", "", nav, flags=re.S))


def _page(client, token: str, path: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(path, query_string={"t": token})
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_the_owner_sees_the_daily_tabs_in_the_row_and_every_other_link_in_a_group(client, canvas):
    token = tool_token(launch(client, canvas, canvas.user("instructor")))
    nav = _nav(_page(client, token, "/app/home"))
    assert _row(nav) == PRIMARY
    assert _groups(nav) == OWNER_GROUPS
    assert 'aria-current="page"' in re.search(r"<a [^>]*>Home</a>", nav)[0]
    targets = dict(re.findall(r'<a href="([^"?]+)\?t=[^"]*"[^>]*>([^<]+)</a>', nav))
    assert sorted(targets.values()) == sorted(PRIMARY + [n for links in OWNER_GROUPS.values() for n in links])
    assert {name: path for path, name in targets.items() if name in OWNER_GROUPS["Term end"]} == {
        "Final report": "/app/final-report",
        "Archives": "/app/archives",
        "Restore": "/app/restore",
    }
    for path in ("/app/setup", "/app/staff", "/app/integrity", "/app/final-report", "/app/restore"):  # they answer
        assert client.get(path, query_string={"t": token}).status_code == 200, path


def test_the_group_holding_the_current_page_is_marked_and_only_its_link_is_current(client, canvas):
    token = tool_token(launch(client, canvas, canvas.user("instructor")))
    nav = _nav(_page(client, token, "/app/archives"))
    assert re.findall(r'<a [^>]*aria-current="page"[^>]*>([^<]+)</a>', nav) == ["Archives"]
    assert re.findall(r'<details class="tab-group current">\s*<summary>([^<]+)', nav) == ["Term end"]
    assert "(the current page is in this group)" in nav
    assert nav.count("tab-group current") == 1


def test_a_read_only_ta_sees_no_group_or_link_they_cannot_use(client, canvas):
    tool_token(launch(client, canvas, canvas.user("instructor")))  # the owner
    token = tool_token(launch(client, canvas, canvas.user("ta")))
    nav = _nav(_page(client, token, "/app/home"))
    assert _row(nav) == PRIMARY
    assert _groups(nav) == {"Set-up": ["Course materials"], "Tools": ["SSH keys"], "Term end": ["Archives"]}
    for hidden in ("Course settings", "Staff", "Integrity", "Final report", "Restore", "Workshops"):
        assert f">{hidden}<" not in nav


def test_a_student_keeps_one_row_without_groups(client, canvas):
    tool_token(launch(client, canvas, canvas.user("instructor")))
    token = tool_token(launch(client, canvas, canvas.user("student")))
    nav = _nav(_page(client, token, "/app/home"))
    assert "<details" not in nav
    assert _row(nav) == ["Home", "My workspace", "SSH keys", "My budget", "Messages", "Help", "My activity"]
