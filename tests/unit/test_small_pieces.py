"""Claims parsing, the assignment form, the catalog, settings and log redaction."""

from __future__ import annotations

import pytest

from classroom.claims import ClaimError, parse_claims
from classroom.deep_link_form import parse_assignment_form
from classroom.logs import redact
from config.catalog import CatalogError, load_catalog, parse_catalog
from config.settings import Settings, SettingsError

LTI = "https://purl.imsglobal.org/spec/lti/claim/"


def test_parse_claims_reads_what_the_tool_needs() -> None:
    c = parse_claims(
        {
            "sub": "u1",
            "name": "Emily Chen",
            LTI + "roles": ["Learner", 5],
            LTI + "context": {"id": "c1", "label": "CS 229"},
            LTI + "custom": {"due_at": "x"},
            LTI + "message_type": "LtiResourceLinkRequest",
            LTI + "deployment_id": "d",
        }
    )
    assert c.sub == "u1" and c.roles == ("Learner",) and c.context_label == "CS 229" and c.custom == {"due_at": "x"}


@pytest.mark.parametrize("body", [{"sub": "u"}, {LTI + "context": {"id": "c"}}, {"sub": "u", LTI + "context": "c"}])
def test_parse_claims_refuses_missing_user_or_course(body) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClaimError):
        parse_claims(body)


def test_assignment_form_converts_due_date_from_course_time_zone() -> None:
    choice, errors = parse_assignment_form(
        {"template": "ml-cpu-student", "title": " HW  1 ", "due_at": "2024-09-02T23:59", "points": "10"},
        load_catalog(),
        "America/Los_Angeles",
    )
    assert errors == {} and choice is not None
    assert (
        choice.title == "HW 1"
        and choice.due_at is not None
        and choice.due_at.isoformat() == "2024-09-03T06:59:00+00:00"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("points", "0"),
        ("points", "1001"),
        ("points", "ten"),
        ("due_at", "tomorrow"),
        ("title", "x" * 201),
        ("template", "nope"),
    ],
)
def test_assignment_form_errors(field: str, value: str) -> None:
    form = {"template": "ml-cpu-student", "title": "HW", field: value}
    choice, errors = parse_assignment_form(form, load_catalog(), "UTC")
    assert choice is None and field in errors


def test_catalog_has_the_scenario_templates_and_validates() -> None:
    catalog = load_catalog()
    assert {"ml-cpu-student", "ml-final-project", "gpu-ml-workstation", "ubuntu-basic"} <= {
        t.id for t in catalog.templates
    }
    assert catalog.default == "ml-cpu-student"
    with pytest.raises(CatalogError):
        parse_catalog({"templates": [{"id": "a"}], "default": "a"})
    with pytest.raises(CatalogError):
        parse_catalog({"templates": [], "default": "a"})


def test_settings_refuse_unsafe_production_and_demo_on_public_bind() -> None:
    with pytest.raises(SettingsError, match="CWC_SECRET_KEY"):
        Settings(secret_key="")
    with pytest.raises(SettingsError, match="Demo LMS"):
        Settings(secret_key="x" * 40, demo_lms=True, bind_host="0.0.0.0")
    with pytest.raises(SettingsError, match="production"):
        Settings(
            env="production",
            secret_key="x" * 40,
            demo_lms=True,
            database_url="postgresql://h/d",
            redis_url="redis://h",
            base_url="https://tool.example",
        )
    with pytest.raises(SettingsError, match="https"):
        Settings(env="production", secret_key="x" * 40, database_url="postgresql://h/d", redis_url="redis://h")
    ok = Settings.from_env({"CWC_SECRET_KEY": "y" * 40, "CWC_DEMO_LMS": "1"})
    assert ok.demo_lms and ok.base_url == "http://127.0.0.1:5000"


def test_redaction_hides_tokens_and_keys() -> None:
    line = (
        "id_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig&state=s Authorization: Bearer abc "
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    )
    out = redact(line)
    assert "eyJ" not in out and "abc" not in out and "MIIE" not in out and "state=s" in out
