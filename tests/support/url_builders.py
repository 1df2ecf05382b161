"""Compile each URL rule's builder once per test process instead of once per app.

The tests build a new Flask app for almost every test (`create_app`, about 900 times in a full run), and
Werkzeug compiles two URL-building functions for every rule of every app: it generates an AST and calls
`compile()` on it (`Rule._compile_builder`). With the tool's 200-odd rules that was 17 s of the run's CPU, by
py-spy, more than everything else `create_app` does. A production process builds its app once, so this matters
to the tests only.

The generated function is a pure function of the rule's text, its parsed parts, its defaults and
`append_unknown`: it receives the rule as its first argument and reaches the rule's converters through it at call
time. So the same function object can serve every Rule with the same key, each bound to its own rule, exactly as
Werkzeug binds the one it compiles. `tests/unit/test_url_builders.py` checks that every route of the app builds
the same URLs through the shared functions as through freshly compiled ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing.rules import Rule

_compile_builder: Callable[..., Any] = Rule._compile_builder
_compiled: dict[tuple[object, ...], Callable[..., Any]] = {}


def builder_key(rule: Rule, append_unknown: bool) -> tuple[object, ...]:
    defaults = rule.defaults or {}
    converters = tuple(sorted((name, type(c).__qualname__) for name, c in rule._converters.items()))
    return (rule.rule, tuple(rule._trace), repr(sorted(defaults.items())), converters, append_unknown)


def _shared_builder(self: Rule, append_unknown: bool = True) -> Callable[..., Any]:
    key = builder_key(self, append_unknown)
    function = _compiled.get(key)
    if function is None:
        function = _compiled[key] = _compile_builder(self, append_unknown)
    return function


def share_compiled_url_builders() -> None:
    """Install the per-process memo (idempotent)."""
    Rule._compile_builder = _shared_builder  # type: ignore[method-assign]


def shared_builder(rule: Rule, append_unknown: bool) -> Callable[..., Any] | None:
    """The memo's function for this rule, if one was compiled."""
    return _compiled.get(builder_key(rule, append_unknown))


def compile_builder_afresh(rule: Rule, append_unknown: bool) -> Callable[..., Any]:
    """Werkzeug's own compilation, for the test that compares the two."""
    return _compile_builder(rule, append_unknown)
