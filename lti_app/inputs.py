"""The input boundary: every path id, query parameter, form field and JSON body is checked here first.

Each layer in one place:
- path ids: the `int` converter is bounded to PostgreSQL's integer, so a larger id is simply "not found" (404);
- every request: query and form fields with a control character (NUL…), and JSON bodies with a non-finite
  number, a NUL or nesting too deep, are refused (400) with the field named, before any view runs;
- per route: the view's own model (lti_app.boundary: one pydantic model per form, query or JSON body; the
  wizard and grades table still field by field through their parse_* functions) types, bounds and length-checks
  the fields it uses, naming each field; lengths are refused, never truncated;
- ids in query strings and forms: `id_arg`, `form_id`, `form_ids` (out of range names no row).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter
from werkzeug.routing import ValidationError as RouteMismatch

from classroom.text import control_chars
from lti_app.errors import ToolError

PG_INT_MAX = 2**31 - 1  # ids are PostgreSQL `integer`: anything larger cannot name a row
JSON_MAX_DEPTH = 32


class InputRefused(ToolError):
    """A request's input failed the boundary's checks; the message names the field."""

    status = 400
    title = "This request could not be read"


class PgIntConverter(IntegerConverter):
    """`<int:…>` limited to 1..PG_INT_MAX: a larger (or absurdly long) id is "not found" (404)."""

    def __init__(
        self, map: Any, fixed_digits: int = 0, min: int | None = 1, max: int | None = PG_INT_MAX, signed: bool = False
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> Any:
        # NotFound, not werkzeug's ValidationError: a mismatch there makes a sibling rule (same path, other
        # method) answer 405, and the id can only mean a row that does not exist.
        if len(value) > len(str(PG_INT_MAX)):
            raise NotFound("No such item.")
        try:
            return super().to_python(value)
        except RouteMismatch as exc:
            raise NotFound("No such item.") from exc


def as_id(raw: str) -> int | None:
    """`raw` as a row id: None when not ASCII digits or outside 1..PG_INT_MAX (such an id names no row)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(PG_INT_MAX)):
        return None
    value = int(raw)
    return value if 1 <= value <= PG_INT_MAX else None


def id_arg(name: str) -> int | None:
    """An optional id in the query string (see as_id)."""
    return as_id(request.args.get(name, ""))


def form_id(name: str) -> int | None:
    """An optional id in the form (see as_id)."""
    return as_id(request.form.get(name, ""))


def form_ids(name: str) -> list[int]:
    """Every valid id given for `name` in the form (others name no row and are dropped)."""
    return [i for i in (as_id(v) for v in request.form.getlist(name)) if i is not None]


def _fields() -> Iterator[tuple[str, str]]:
    for key, value in request.args.items(multi=True):
        yield key, value
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in request.form.items(multi=True):
            yield key, value


def _refuse_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON may carry")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _check_json(value: Any, path: str, depth: int = 0) -> None:
    if depth > JSON_MAX_DEPTH:
        raise InputRefused(f"The JSON body is nested too deeply at {path or 'the top'}.")
    if isinstance(value, str) and "\x00" in value:
        raise InputRefused(f"The field “{path}” contains a NUL character.")
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise InputRefused("A JSON field name contains a NUL character.")
            _check_json(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", depth + 1)


def check_request() -> None:
    """Refuse control characters in query and form fields, and unreadable or hostile JSON (before any view)."""
    for key, value in _fields():
        if control_chars(key) or control_chars(value):
            raise InputRefused(f"The field “{key[:40]}” contains a control character (such as NUL).")
    if request.is_json and request.content_length != 0:
        try:
            body = json.loads(
                request.get_data(cache=True), parse_constant=_refuse_json_constant, parse_float=_finite_float
            )
        except (ValueError, RecursionError) as exc:
            raise InputRefused(f"The JSON body could not be read: {str(exc)[:120]}.") from exc
        _check_json(body, "")


def init_app(app: Flask) -> None:
    """Bound `<int:…>` ids (before any blueprint adds its rules) and check every request's fields first."""
    app.url_map.converters["int"] = PgIntConverter
    app.before_request(check_request)
