"""The per-route input models: fields picked from a form, refusals naming each field, lengths from the columns."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from classroom.models import LmsLineItem, StaffLevel, UsageMode, WorkspaceFolder
from classroom.services.template_requests import NOTE_MAX, REASON_MAX
from lti_app.boundary import InputInvalid, column_max, parse_input
from lti_app.boundary.forms import (
    DecisionForm,
    DeepLinkForm,
    ImportConfirmForm,
    KeyUploadForm,
    LineItemForm,
    MaterialsForm,
    RetryForm,
    StaffLevelForm,
    StartForm,
    TemplateRequestForm,
    UsageSettingForm,
    WorkspaceActionForm,
)


def refusal(model, pairs, status=422):  # type: ignore[no-untyped-def]
    with pytest.raises(InputInvalid) as caught:
        parse_input(model, MultiDict(pairs), status=status)
    assert caught.value.status == status
    return caught.value.message


def test_lengths_come_from_the_columns():
    assert column_max(LmsLineItem.label) == 255 == LineItemForm.model_fields["label"].metadata[0].max_length
    assert column_max(WorkspaceFolder.title) == DeepLinkForm.model_fields["title"].metadata[0].max_length
    with pytest.raises(TypeError):
        column_max(LmsLineItem.url)  # Text: no length to take


def test_a_text_longer_than_its_column_is_refused_naming_the_field_and_never_cut():
    message = refusal(LineItemForm, [("label", "x" * 256), ("points", "10")])
    assert message == "“label” is too long: at most 255 characters, 256 given (nothing was cut or saved)."
    assert parse_input(LineItemForm, MultiDict([("label", "x" * 255)])).label == "x" * 255
    assert "“reason”" in refusal(TemplateRequestForm, [("reason", "r" * (REASON_MAX + 1))])
    assert "“note”" in refusal(DecisionForm, [("note", "n" * (NOTE_MAX + 1))])
    assert "“public_key”" in refusal(KeyUploadForm, [("public_key", "k" * 20_000)])
    assert "“title”" in refusal(DeepLinkForm, [("title", "t" * 300)], status=400)


def test_every_refused_field_is_named_in_one_message():
    message = refusal(DeepLinkForm, [("points", "9" * 40), ("time_zone", "z" * 80), ("title", "ok")])
    assert "“points”" in message and "“time_zone”" in message and "“title”" not in message


def test_choices_are_checked_against_their_enums():
    assert parse_input(UsageSettingForm, MultiDict([("usage_mode", "column")])).usage_mode is UsageMode.COLUMN
    assert refusal(UsageSettingForm, [("usage_mode", "grades")]) == "“usage_mode” must be 'comment' or 'column'."
    assert parse_input(StaffLevelForm, MultiDict([("level", "head_ta")])).level is StaffLevel.HEAD_TA
    assert refusal(StaffLevelForm, []) == "“level” is required."
    assert "“on_conflict”" in refusal(MaterialsForm, [("on_conflict", "overwrite-all")])
    assert parse_input(MaterialsForm, MultiDict()).on_conflict == "ask"
    assert "“scope”" in refusal(StartForm, [("scope", "everything")])


def test_checkboxes_are_ticked_only_by_on_and_absent_fields_take_defaults():
    assert parse_input(UsageSettingForm, MultiDict([("usage_passback", "on")])).usage_passback is True
    for junk in ("", "off", "true", "1"):
        assert parse_input(WorkspaceActionForm, MultiDict([("confirm", junk)])).confirm is False
    form = parse_input(UsageSettingForm, MultiDict([("t", "token"), ("csrf_token", "x")]))  # others ignored
    assert (form.usage_passback, form.usage_mode) == (False, None)
    assert parse_input(ImportConfirmForm, MultiDict([("valid_only", "on")])).valid_only is True


def test_ids_keep_only_what_can_name_a_row():
    pairs = [("grade_id", "3"), ("grade_id", "x"), ("grade_id", "0"), ("grade_id", "2147483648"), ("grade_id", "7")]
    form = parse_input(RetryForm, MultiDict([*pairs, ("item", "99999999999")]))
    assert (form.grade_id, form.item, form.all) == ([3, 7], None, False)


def test_the_grant_form_bounds_its_raw_fields_and_leaves_the_rules_to_parse_grant():
    from lti_app.boundary.forms import GrantForm, ReportQuery

    form = parse_input(GrantForm, MultiDict([("person", "12"), ("amount", "$10.00"), ("reason", "Lab  overrun")]))
    assert form.model_dump() == {"person": "12", "amount": "$10.00", "reason": "Lab  overrun"}
    assert "“amount”" in refusal(GrantForm, [("amount", "1" * 33)], status=400)
    assert parse_input(ReportQuery, MultiDict([("granted", "-1")])).granted is None
