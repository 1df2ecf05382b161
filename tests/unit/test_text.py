"""Pure text helpers: the CSV formula guard (issue 13's characters) and control-character cleaning."""

from __future__ import annotations

import pytest

from classroom.text import control_chars, spreadsheet_safe, strip_controls

# Issue 13 listed: a leading space or newline, full-width ＝, and `|` before a formula; the older ones stay.
DANGEROUS = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    ' =HYPERLINK("http://x")',
    "\n=1+1",
    "＝1+1",
    "＋1",
    "＠SUM(A1)",
    "|=cmd|' /C calc'!A0",
    "\u3000=1",
]


@pytest.mark.parametrize("text", DANGEROUS)
def test_formula_like_cells_are_neutralised(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["Emily Chen", "emily@u.edu", "数据集", "O'Brien", "", "Zoë = 1"])
def test_plain_cells_are_left_alone(text: str) -> None:
    assert spreadsheet_safe(text) == text


def test_control_characters_are_found_and_stripped() -> None:
    assert control_chars("Em\x00ily\x1b\tok\n") == ["\x00", "\x1b"]
    assert strip_controls("  Em\x00ily \x07Chen\r\n") == "Emily Chen"
    assert control_chars("Zoë 数据") == []
