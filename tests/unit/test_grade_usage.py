"""Pure grade correlation: grade percent, Pearson r, CSV safety and chart coordinates."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from classroom.budget.grade_usage import GradeUsage, correlation, csv_text, scatter

D = Decimal


def _row(n: int, hours: int, points: str | None, maximum: str = "10", name: str = "") -> GradeUsage:
    scored = 0 if points is None else 1
    return GradeUsage(n, name or f"s{n}", f"s{n}@u.edu", D(hours * 3600), D(hours) / 2, hours, D(points or 0),
                      D(maximum if scored else 0), scored)  # fmt: skip


def test_grade_is_the_percent_of_scored_points_and_none_without_scores():
    assert _row(1, 1, "7.5").grade == D("75.0") and _row(2, 1, None).grade is None


def test_correlation_needs_three_graded_rows_with_varied_figures():
    rows = [_row(1, 1, "5"), _row(2, 2, "6"), _row(3, 3, "7"), _row(4, 9, None)]
    assert correlation(rows, "hours") == 1.0 and correlation(rows[:2], "hours") is None
    assert correlation([_row(n, 2, str(n)) for n in range(3)], "hours") is None  # constant hours


def test_csv_neutralises_formulas_and_leaves_missing_grades_empty():
    rows = list(csv.reader(io.StringIO(csv_text([_row(1, 2, None, name="=HYPERLINK(1)")]))))
    assert rows[1][0].startswith("'") and rows[1][5] == "" and rows[1][2:5] == ["2.00", "1.00", "2"]


def test_chart_points_sit_in_the_box_with_a_round_axis_and_extra_credit_at_the_top():
    points, axis = scatter([_row(1, 15, "10"), _row(2, 0, "0"), _row(3, 5, "12")], 100, 100, 10)
    assert axis == 20
    assert [(p.x, p.y) for p in points] == [(70.0, 10.0), (10.0, 90.0), (30.0, 10.0)]
