"""The course settings for workspaces and disks: scope, close after due, archive retention, grace. Pure."""

from __future__ import annotations

from classroom.budget.setup_form import parse_setup
from config.catalog import load_catalog
from tests.support.budget import SETUP_FORM

CATALOG = load_catalog()


def test_defaults_are_one_workspace_per_student_a_year_of_archives_and_two_weeks_of_grace():
    values, errors = parse_setup(SETUP_FORM, CATALOG, "CS 229")
    assert errors == {} and values is not None
    assert (values.workspace_scope, values.close_after_due) == ("student", False)
    assert (values.archive_retention_days, values.disk_grace_days) == (365, 14)


def test_per_assignment_workspaces_with_close_after_due_and_other_figures():
    form = {**SETUP_FORM, "workspace_scope": "assignment", "close_after_due": "on",
            "archive_retention_days": "30", "disk_grace_days": "0"}  # fmt: skip
    values, errors = parse_setup(form, CATALOG, "CS 229")
    assert errors == {} and values is not None
    assert (values.workspace_scope, values.close_after_due) == ("assignment", True)
    assert (values.archive_retention_days, values.disk_grace_days) == (30, 0)
    student_scope, _ = parse_setup({**form, "workspace_scope": "student"}, CATALOG, "CS 229")
    assert student_scope is not None and student_scope.close_after_due is False  # only means something per link


def test_bad_workspace_settings_are_refused_with_their_field():
    form = {**SETUP_FORM, "workspace_scope": "team", "archive_retention_days": "0", "disk_grace_days": "400"}
    values, errors = parse_setup(form, CATALOG, "CS 229")
    assert values is None and set(errors) == {"workspace_scope", "archive_retention_days", "disk_grace_days"}
