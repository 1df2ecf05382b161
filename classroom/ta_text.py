"""Checks for what students and staff type into help requests and messages. Pure: no I/O.

Nothing is cut: a text over its limit is refused with a message saying so, as everywhere else in the tool.
"""

from __future__ import annotations

import unicodedata

PATH_MAX = 512  # classroom.models.ta.FILE_PATH_MAX
LINE_MAX = 10_000_000


class OfficeInputError(ValueError):
    """Bad input for a help request or a message; the text says what to fix."""

    status = 400


def _has_control(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in value)


def clean_text(value: str | None, limit: int, label: str) -> str:
    """The text with outer blanks removed and line ends normalised; refused when too long or holding control
    characters other than line breaks and tabs."""
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > limit:
        raise OfficeInputError(f"{label} is too long: at most {limit:,} characters, {len(text):,} given.")
    if _has_control(text, "\n\t"):
        raise OfficeInputError(f"{label} contains control characters.")
    return text


def clean_subject(value: str | None, limit: int) -> str:
    """A one-line subject: required, blanks collapsed."""
    text = " ".join((value or "").split())
    if not text:
        raise OfficeInputError("Please give the message a subject.")
    if len(text) > limit:
        raise OfficeInputError(f"The subject is too long: at most {limit:,} characters, {len(text):,} given.")
    if _has_control(text):
        raise OfficeInputError("The subject contains control characters.")
    return text


def clean_path(value: str | None) -> str:
    """An optional file reference ("homework/hw3/train.py", "~/" allowed): one line, no parent steps."""
    path = (value or "").strip()
    if path.startswith("~/"):
        path = path[2:]
    if not path:
        return ""
    if len(path) > PATH_MAX:
        raise OfficeInputError(f"The file path is too long: at most {PATH_MAX} characters.")
    if _has_control(path) or ".." in path.split("/"):
        raise OfficeInputError("The file path must be a plain path in the workspace (no control characters, no “..”).")
    return path


def clean_line(value: str | int | None) -> int | None:
    """An optional line number: empty is none; otherwise a whole number from 1."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    raw = str(value).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= LINE_MAX:
        raise OfficeInputError("The line must be a whole number from 1.")
    return int(raw)
