"""Accessibility the automated checks miss (issue 15, item 11): focus ring contrast on every control, an error
summary that links to each invalid field, every invalid field marked, a skip link and the current tab marked."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import count_rows
from tests.support.budget import SETUP_FORM
from tests.support.lti import hidden_fields, launch, tool_token

CSS = Path(__file__).resolve().parents[2] / "lti_app" / "static" / "app.css"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_the_focus_ring_is_3_to_1_on_white_and_the_tab_bar_for_every_kind_of_control():
    css = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    rules = re.findall(r"([^{}]*:focus-visible[^{}]*)\{([^}]*)\}", css)
    covered: set[str] = set()
    for selectors, body in rules:
        colour = re.search(r"outline:\s*\d+px solid (#[0-9a-fA-F]{6})", body)
        if colour is None:
            continue
        assert _contrast(colour[1], "#ffffff") >= 3 and _contrast(colour[1], "#e8edf3") >= 3
        covered |= {s.strip().split(":")[0] for s in selectors.split(",")}
    assert {"a", "button", "input", "select", "textarea", "summary"} <= covered


def _idref_ok(html: str, ref: str) -> bool:
    return all(f'id="{one}"' in html for one in ref.split())


def test_a_refused_save_opens_on_a_summary_linking_to_every_invalid_field_each_marked(client, canvas, session):
    resp = launch(client, canvas, canvas.user("instructor"))
    page = client.get("/app/setup", query_string={"t": tool_token(resp)}).get_data(as_text=True)
    bad_form = {
        **SETUP_FORM,
        "time_zone": "Mars/Olympus",
        "budget_per_student": "lots",
        "template_ml-cpu-student": "sometimes",
        "workspace_scope": "galaxy",
    }
    bad = client.post("/app/setup", data={**hidden_fields(page), **bad_form})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and count_rows(session.get_bind(), "course_policies") == 0
    summary = re.search(r'<div class="error-summary[^"]*" id="error-summary" tabindex="-1".*?</div>', html, re.S)
    assert summary is not None
    targets = re.findall(r'<a href="#([\w-]+)">', summary[0])
    assert {"time_zone", "budget_per_student", "templates", "workspace_scope"} <= set(targets)
    for target in targets:  # each link lands on a field that says it is invalid and why
        tag = re.search(rf'<(?:input|select)[^>]*\bid="{target}"[^>]*>', html)
        assert tag is not None, target
        assert 'aria-invalid="true"' in tag[0], target
        ref = re.search(r'aria-describedby="([^"]+)"', tag[0])
        assert ref is not None and _idref_ok(html, ref[1]), target
    assert "a11y.js" in html  # the script that moves the focus to the summary
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # each link target is one field


def test_the_picker_marks_its_due_date_and_points_when_invalid(client, canvas, session):
    from tests.web.test_deep_linking import _start  # the picker through a real deep-linking launch

    fields = _start(client, canvas)
    form = {**fields, "template": "x", "title": "HW 1", "due_at": "soon", "points": "-3"}
    bad = client.post("/lti/deep-link", data=form)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400
    for name in ("due_at", "points"):
        tag = re.search(rf'<input[^>]*\bid="{name}"[^>]*>', html)[0]
        assert 'aria-invalid="true"' in tag and f'aria-describedby="{name}-err"' in tag and f'id="{name}-err"' in html
    assert 'href="#due_at"' in html and 'href="#points"' in html and 'href="#template"' in html
    radio = re.search(r'<input type="radio" name="template"[^>]*>', html)[0]
    assert 'id="template"' in radio and 'aria-invalid="true"' in radio and 'aria-describedby="template-err"' in radio


def test_every_page_has_a_skip_link_and_marks_only_the_current_tab(client, canvas):
    token = tool_token(launch(client, canvas, canvas.user("instructor")))
    for path, tab in (("/app/setup", "Course settings"), ("/app/requests", "Requests")):
        html = client.get(path, query_string={"t": token}).get_data(as_text=True)
        assert re.search(r'<body>\s*<a class="skip-link" href="#main">Skip to content</a>', html)
        assert '<main id="main" tabindex="-1">' in html
        current = re.findall(r'<a [^>]*aria-current="page"[^>]*>([^<]+)</a>', html)
        assert current == [tab]
