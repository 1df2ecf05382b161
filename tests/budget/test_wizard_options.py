"""Issue 14 item 5: the set-up wizard shows only options some code reads (each name below has a reader)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sqlalchemy import select

from classroom.models import AuditEvent, CoursePolicy, IntegritySettings
from tests.support.budget import SETUP_FORM
from tests.support.lti import hidden_fields, launch, tool_token

# Every field the owner can change, and the code that reads what it saves. A new visible option must be added here
# with its reader; an option nothing reads stays hidden until its issue lands.
READERS = {
    "term_start": "classroom/budget/policy.py (launch check), provisioning/enforcement.py",
    "term_end": "provisioning/term_end.py, provisioning/enforcement.py",
    "time_zone": "term_end_instant and the sweep's term end",
    "confirm_past": "lti_app/setup_views.py (a last day already past)",
    "auto_close": "provisioning/term_end.py (run_term_end)",
    "budget_per_student": "classroom/budget/policy.py",
    "total_budget": "classroom/services/course_money.py",
    "budget_source": "classroom/services/reports.py",
    "head_ta": "classroom/services/launches.promote_head_ta",
    "default_template": "lms_sync/welcome_send.py, the launch check",
    "max_concurrent": "provisioning/opening.py",
    "max_daily_cost": "provisioning/enforcement.py",
    "idle_stop_minutes": "provisioning/enforcement.py",
    "workspace_scope": "provisioning/opening.py",
    "close_after_due": "provisioning/retire.py",
    "plagiarism_support": "provisioning/activity.py",
    "record_commands": "classroom/integrity/settings.py (runtime facts, heartbeat answer, evidence)",
    "archive_retention_days": "provisioning/retire.py, provisioning/agent_archive.py",
    "disk_grace_days": "provisioning/term_end.py",
    "end_revoke_access": "provisioning/term_end.py",
    "end_final_report": "provisioning/term_end.py",
}


class _Fields(HTMLParser):
    """Names of the wizard form's visible controls (hidden inputs are not options)."""

    def __init__(self) -> None:
        super().__init__()
        self.visible: set[str] = set()
        self.hidden: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag not in ("input", "select", "textarea") or not name:
            return
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[name] = a.get("value") or ""
        else:
            self.visible.add(name)


def _wizard(client, canvas) -> tuple[str, _Fields]:  # type: ignore[no-untyped-def]
    page = client.get("/app/setup", query_string={"t": tool_token(launch(client, canvas, canvas.user("instructor")))})
    html = page.get_data(as_text=True)
    fields = _Fields()
    fields.feed(html)
    return html, fields


def test_every_visible_wizard_option_has_a_reader(client, canvas, session):  # type: ignore[no-untyped-def]
    _, fields = _wizard(client, canvas)
    options = {n for n in fields.visible if not n.startswith("template_")}  # one per catalog template: the launch check
    assert options <= set(READERS), f"options nothing reads (hide them or name their reader): {options - set(READERS)}"
    assert {"budget_per_student", "auto_close", "plagiarism_support", "end_final_report"} <= options  # parsed for real
    unread = {"ta_debug_access", "end_delete_all_data", "delete_confirm", "expected_students", "shared_materials"}
    assert not unread & fields.visible


def test_hidden_options_keep_their_saved_values(client, canvas, session):  # type: ignore[no-untyped-def]
    html, fields = _wizard(client, canvas)
    assert fields.hidden["expected_students"] == "50" and fields.hidden["shared_materials"] == "on"
    form = {k: v for k, v in SETUP_FORM.items() if k not in ("expected_students", "shared_materials")}
    resp = client.post("/app/setup", data={**hidden_fields(html), **form, **fields.hidden})
    assert resp.status_code == 303
    policy = session.scalar(select(CoursePolicy))
    assert policy.expected_students == 50 and policy.shared_materials is True


def test_audit_logging_in_the_wizard_turns_typed_commands_on_and_off(client, canvas, session):  # type: ignore[no-untyped-def]
    html, fields = _wizard(client, canvas)
    assert "record_commands" in fields.visible and "Audit logging" in html
    form = {**hidden_fields(html), **SETUP_FORM, **fields.hidden, "plagiarism_support": "on", "record_commands": "on"}
    assert client.post("/app/setup", data=form).status_code == 303
    settings = session.scalar(select(IntegritySettings))
    assert settings.record_commands is True and settings.similarity_threshold == 60  # the rest: defaults
    html, fields = _wizard(client, canvas)
    assert re.search(r'name="record_commands"[^>]*checked', html)  # shown as saved
    form.pop("record_commands")
    assert client.post("/app/setup", data=form).status_code == 303
    session.expire_all()
    assert session.scalar(select(IntegritySettings)).record_commands is False
    changes = session.scalars(select(AuditEvent).where(AuditEvent.action == "integrity.settings_saved")).all()
    assert sorted(e.details["record_commands"] for e in changes) == [False, True]
