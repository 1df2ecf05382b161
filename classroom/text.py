"""Pure text helpers shared by the input boundary, LTI claims and exports: control characters, CSV cells."""

from __future__ import annotations

import unicodedata

# A spreadsheet runs a cell as a formula when its first visible character is one of these (after the
# compatibility folding some spreadsheets apply: full-width ＝ is =); `|` starts a DDE payload.
FORMULA_STARTS = frozenset("=+-@|")
# Leading characters a spreadsheet skips before looking for a formula start.
SKIPPED_LEADING = frozenset(" \t\r\n\u3000\u00a0")


def control_chars(text: str) -> list[str]:
    """The control characters in `text` (NUL, C0/C1, DEL), other than tab, newline and carriage return."""
    return [c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r"]


def strip_controls(text: str) -> str:
    """`text` without any control character (a display name from an LMS), whitespace runs folded."""
    return " ".join("".join(c for c in text if c.isspace() or unicodedata.category(c) != "Cc").split())


def remove_controls(text: str) -> str:
    """`text` without control characters (NUL, C0/C1, DEL); spacing otherwise kept."""
    return "".join(c for c in text if unicodedata.category(c) != "Cc")


def spreadsheet_safe(text: str) -> str:
    """Prefix `'` to a CSV cell a spreadsheet could run as a formula (names and emails come from the LMS)."""
    if not text:
        return text
    if text[0] in SKIPPED_LEADING:
        return "'" + text
    first = unicodedata.normalize("NFKC", text[0])[:1]
    return "'" + text if first in FORMULA_STARTS else text
