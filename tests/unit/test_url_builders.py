"""The tests' shared URL builders (tests/support/url_builders.py) build exactly what Werkzeug's own would."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.routing.converters import AnyConverter, IntegerConverter, NumberConverter

from tests.support.url_builders import builder_key, compile_builder_afresh, shared_builder


def _values(rule: Rule) -> dict[str, Any]:
    """A value each of the rule's arguments accepts, and one unknown argument (it becomes the query string)."""
    values: dict[str, Any] = {"extra": "a b&c"}
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[-1]
        else:
            values[name] = 7 if isinstance(converter, IntegerConverter | NumberConverter) else "x y"
    return values


def test_every_route_builds_the_same_url_through_the_shared_builders(app) -> None:  # type: ignore[no-untyped-def]
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100
    for rule in rules:
        for append_unknown in (False, True):
            fresh = compile_builder_afresh(rule, append_unknown).__get__(rule, None)
            bound = rule._build_unknown if append_unknown else rule._build
            values = _values(rule)
            assert bound(**values) == fresh(**values), rule.rule
        assert rule._build.__func__ is shared_builder(rule, False)  # the memo's, not compiled for this app
        assert rule._build_unknown.__func__ is shared_builder(rule, True)


def test_rules_that_differ_in_defaults_or_converters_do_not_share_a_builder() -> None:
    plain, with_default = Rule("/c/<int:n>"), Rule("/c/<int:n>", defaults={"n": 1})
    as_path = Rule("/c/<path:n>")
    for rule in (plain, with_default, as_path):
        Map([rule])  # binding a rule parses it
    keys = {builder_key(r, True) for r in (plain, with_default, as_path)}
    assert len(keys) == 3
