"""Pure pieces: the demo origin swap, message hints, custom parameter substitution (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.settings import Settings
from dev.demo_lms.messages import (
    DEEP_LINKING,
    RESOURCE_LINK,
    Hint,
    HintError,
    decode_hint,
    encode_hint,
    resolve_custom,
)
from dev.demo_lms.models import DemoCourse, DemoLink, DemoMember
from dev.demo_lms.origins import demo_origin, issuer
from dev.demo_lms.seed import personas

SECRET = "s" * 40


@pytest.mark.parametrize(
    ("base", "demo"),
    [
        ("http://127.0.0.1:5000", "http://localhost:5000"),
        ("http://localhost:5000", "http://127.0.0.1:5000"),
        ("http://127.0.0.1", "http://localhost"),
    ],
)
def test_demo_origin_swaps_the_loopback_host_name(base: str, demo: str) -> None:
    settings = Settings(secret_key=SECRET, base_url=base)
    assert demo_origin(settings) == demo and issuer(settings) == demo + "/demo-lms"


def test_hints_round_trip_and_refuse_tampering() -> None:
    hint = Hint(3, 7, RESOURCE_LINK, "_parent")
    assert decode_hint(SECRET, encode_hint(SECRET, hint)) == hint
    with pytest.raises(HintError):
        decode_hint("other" * 10, encode_hint(SECRET, hint))
    with pytest.raises(HintError):
        decode_hint(SECRET, encode_hint(SECRET, Hint(3, 7, DEEP_LINKING)))  # deep linking names no link


def test_due_date_variables_resolve_only_when_the_link_has_one() -> None:
    course = DemoCourse(context_id="cs229-fall2024", label="CS 229", title="ML")
    member = DemoMember(user_id="u-1", email="emily.chen@university.edu")
    custom = {
        "due_at": "$Canvas.assignment.dueAt.iso8601",
        "end": "$ResourceLink.submission.endDateTime",
        "who": "$User.id",
        "odd": "$Unknown.variable",
        "plain": "x",
    }
    link = DemoLink(resource_link_id="link-1", due_at=datetime(2024, 9, 20, 6, 59, tzinfo=UTC))
    assert resolve_custom(custom, link, member, course) == {
        "due_at": "2024-09-20T06:59:00Z",
        "end": "2024-09-20T06:59:00Z",
        "who": "u-1",
        "odd": "$Unknown.variable",
        "plain": "x",
    }
    no_due = resolve_custom(custom, DemoLink(resource_link_id="nav"), member, course)
    assert no_due["due_at"] == "$Canvas.assignment.dueAt.iso8601", "unknown values pass unexpanded"


def test_personas_are_deterministic_with_fifty_students() -> None:
    first, second = personas(), personas()
    assert [p.email for p in first] == [p.email for p in second]
    assert len({p.email for p in first}) == 54
    assert sum(p.kind == "student" for p in first) == 50 and sum(p.kind == "ta" for p in first) == 3
    assert all(p.email.endswith("@university.edu") for p in first)
    assert {p.section for p in first if p.kind == "student"} == {"Section A", "Section B"}
