"""Pure: each student's usage beside their grade, the correlation, a CSV and the points of an SVG scatter chart.

The grade is the student's assignment scores in the tool's gradebook (lms_grades: those the tool passed back
and those read from the LMS), as a percentage of the points of the items scored; the usage column is left out.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from classroom.text import spreadsheet_safe

HOUR = Decimal(3600)
CSV_HEADER = ("name", "email", "running_hours", "spend", "sessions", "grade_percent", "scored_items")


@dataclass(frozen=True)
class GradeUsage:
    """One student's term: usage from the ledger, starts from workspace events, grade from the gradebook."""

    person_id: int
    name: str
    email: str
    running_seconds: Decimal
    spend: Decimal
    sessions: int
    points: Decimal
    maximum: Decimal
    scored_items: int

    @property
    def hours(self) -> Decimal:
        return (self.running_seconds / HOUR).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def grade(self) -> Decimal | None:
        """Percent of the points of the items scored, None when nothing was scored."""
        if not self.scored_items or self.maximum <= 0:
            return None
        return (self.points * 100 / self.maximum).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Point:
    """One dot of the chart, in SVG user units, with its accessible label."""

    x: float
    y: float
    label: str


def correlation(rows: list[GradeUsage], usage: str) -> float | None:
    """Pearson's r between a usage column (hours, spend or sessions) and the grade; None below 3 graded rows."""
    pairs = [(float(getattr(r, usage)), float(r.grade)) for r in rows if r.grade is not None]
    if len(pairs) < 3:
        return None
    xs, ys = zip(*pairs, strict=True)
    try:
        return round(statistics.correlation(xs, ys), 2)
    except statistics.StatisticsError:  # one of the columns is constant
        return None


def csv_text(rows: list[GradeUsage]) -> str:
    """The export: one row per student, spreadsheet-safe names."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in rows:
        grade = "" if r.grade is None else str(r.grade)
        writer.writerow([spreadsheet_safe(r.name), spreadsheet_safe(r.email), str(r.hours),
                         str(r.spend.quantize(Decimal("0.01"))), r.sessions, grade, r.scored_items])  # fmt: skip
    return out.getvalue()


def scatter(rows: list[GradeUsage], width: int, height: int, pad: int) -> tuple[list[Point], Decimal]:
    """Graded students as (hours, grade) dots inside the padded box, and the hours axis maximum (a round figure)."""
    graded = [r for r in rows if r.grade is not None]
    top = max((r.hours for r in graded), default=Decimal(0))
    axis = Decimal(10)
    while axis < top:
        axis *= 2
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    points = [
        Point(
            round(pad + float(r.hours / axis) * inner_w, 1),
            round(pad + (1 - min(100.0, max(0.0, float(r.grade or 0))) / 100) * inner_h, 1),  # extra credit: top
            f"{r.name}: {r.hours} h, grade {r.grade} %",
        )
        for r in graded
    ]
    return points, axis
