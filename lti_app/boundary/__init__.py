"""One input boundary per route: each view reads its form or query string through one pydantic model, in one call.

`parse_form(Model)` / `parse_query(Model)` pick the model's fields out of the request (a list field takes every
value given), validate them, and answer a refusal (422 unless the route says 400) that names each field with a
readable message. Nothing is truncated: a text longer than its column is refused. Lengths come from the
SQLAlchemy column where there is one (`column_max`). The models keep calling the pure `parse_*` functions where
those hold business rules; the request-wide checks (control characters, hostile JSON, bounded path ids) stay in
`lti_app.inputs`, which runs before every view.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from flask import request
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from sqlalchemy import String
from sqlalchemy.orm import InstrumentedAttribute
from werkzeug.datastructures import MultiDict

from lti_app.errors import ToolError
from lti_app.inputs import as_id

M = TypeVar("M", bound="FormModel")


class InputInvalid(ToolError):
    """A form or query field failed its route's model; the message names every such field."""

    status = 422
    title = "Please check the form"


class FormModel(BaseModel):
    """A route's input: only the declared fields are read; unknown ones (t, csrf_token) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def column_max(column: InstrumentedAttribute[Any]) -> int:
    """The length of a String column (the most a field stored in it may hold)."""
    kind = column.property.columns[0].type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} has no length")
    return int(kind.length)


def _checkbox(value: Any) -> bool:
    return value == "on"


def _flag(value: Any) -> bool:
    return value in ("1", "on", "true", True)


def _optional_id(value: Any) -> int | None:
    return as_id(value) if isinstance(value, str) else value


def _ids(value: Any) -> list[int]:
    values = value if isinstance(value, list) else [value]
    return [i for i in (as_id(v) if isinstance(v, str) else None for v in values) if i is not None]


Flag = Annotated[bool, BeforeValidator(_flag)]  # a query flag our own redirects set (?changed=1)
Checkbox = Annotated[bool, BeforeValidator(_checkbox)]  # HTML: ticked sends "on"; anything else is not ticked
OptionalId = Annotated[int | None, BeforeValidator(_optional_id)]  # not a row id (out of range, junk): None
Ids = Annotated[list[int], BeforeValidator(_ids)]  # every valid id given; the others name no row


def _field_label(model: type[FormModel], loc: tuple[Any, ...]) -> str:
    name = str(loc[0]) if loc else "form"
    field = model.model_fields.get(name)
    return (field.alias if field and field.alias else name) if field else name


def describe(model: type[FormModel], exc: ValidationError) -> str:
    """One readable sentence per refused field, each naming it (pure)."""
    parts = []
    for err in exc.errors(include_url=False):
        message = str(err["msg"])
        if err["type"] == "string_too_long":
            limit, given = err.get("ctx", {}).get("max_length"), len(str(err.get("input", "")))
            message = f"is too long: at most {limit:,} characters, {given:,} given (nothing was cut or saved)"
        elif err["type"] == "missing":
            message = "is required"
        message = message.replace("Input should be", "must be").replace("input should be", "must be")
        parts.append(f"“{_field_label(model, err['loc'])}” {message[0].lower()}{message[1:]}".rstrip(".") + ".")
    return " ".join(parts)


def _list_field(model: type[FormModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return getattr(annotation, "__origin__", None) is list


def _pick(model: type[FormModel], source: MultiDict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in source:
            continue
        data[key] = source.getlist(key) if _list_field(model, name) else source.get(key)
    return data


def parse_input(model: type[M], source: MultiDict[str, str], *, status: int = 422) -> M:
    """Validate `source` against `model`; a refusal names every field (InputInvalid with `status`)."""
    try:
        return model.model_validate(_pick(model, source))
    except ValidationError as exc:
        raise InputInvalid(describe(model, exc), status=status) from None


def parse_form(model: type[M], *, status: int = 422) -> M:
    """The request's form through its route's model."""
    return parse_input(model, request.form, status=status)


def parse_query(model: type[M], *, status: int = 422) -> M:
    """The request's query string through its route's model."""
    return parse_input(model, request.args, status=status)
