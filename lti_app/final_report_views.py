"""The term's final report (page and PDF) and the grade correlation export (page with a chart, and CSV).

Instructors and the head TA (the levels that act: `can_act`); read-only TAs and students get 403. The course is
the launch's; downloads are audited, since they carry every student's figures.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response

from classroom.audit import append_event
from classroom.budget.final_pdf import pdf_bytes
from classroom.budget.final_text import dollars, sections
from classroom.budget.grade_usage import correlation, csv_text, scatter
from classroom.db import utcnow
from classroom.roles import can_act
from classroom.services.final_report import final_report
from classroom.services.grade_usage import grade_usage_rows
from classroom.services.reports import course_today
from lti_app.auth import current, requires
from lti_app.pages.views import page
from lti_app.runtime import commit, db

bp = Blueprint("final_report", __name__)
CHART_W, CHART_H, CHART_PAD = 640, 320, 40
NOT_SET_UP = "The course is not set up yet: there is no report.\n"


def _filename(kind: str, ext: str) -> str:
    course = current().course
    slug = re.sub(r"[^a-z0-9]+", "-", (course.label or course.title or "course").lower()).strip("-") or "course"
    return f"{slug}-{kind}-{course_today(course, utcnow()).isoformat()}.{ext}"


def _audit(action: str, **details: object) -> None:
    ctx = current()
    append_event(db(), action, actor_person_id=ctx.person.id, course_id=ctx.course.id, details=dict(details))
    commit()


@bp.get("/app/final-report")
@requires(can_act)
def report_page() -> str:
    """The final report as a page: the same sections as the email and the PDF."""
    report = final_report(db(), current().course)
    return page("final/report.html", r=report, sections=sections(report) if report else [])


@bp.get("/app/final-report.pdf")
@requires(can_act)
def report_pdf() -> Response:
    """The final report as a PDF download (audited)."""
    report = final_report(db(), current().course)
    if report is None:
        return Response(NOT_SET_UP, status=404, mimetype="text/plain")
    body = pdf_bytes(report)
    _audit("report.final_downloaded", format="pdf")
    name = _filename("final-report", "pdf")
    return Response(body, mimetype="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/app/grades-usage")
@requires(can_act)
def grades_page() -> str:
    """Usage beside grades: a scatter chart (server-rendered SVG), the correlations and the table."""
    rows = grade_usage_rows(db(), current().course)
    points, axis = scatter(rows or [], CHART_W, CHART_H, CHART_PAD)
    r = {k: correlation(rows or [], k) for k in ("hours", "spend", "sessions")}
    return page("final/grades.html", rows=rows, points=points, axis=axis, r=r, dollars=dollars,
                w=CHART_W, h=CHART_H, pad=CHART_PAD)  # fmt: skip


@bp.get("/app/grades-usage.csv")
@requires(can_act)
def grades_csv() -> Response:
    """The grade correlation export (audited)."""
    rows = grade_usage_rows(db(), current().course)
    if rows is None:
        return Response(NOT_SET_UP, status=404, mimetype="text/plain")
    _audit("report.grades_exported", students=len(rows))
    name = _filename("grades-usage", "csv")
    return Response(
        csv_text(rows), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
