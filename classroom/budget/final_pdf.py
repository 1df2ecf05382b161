"""The final report as a PDF (reportlab), from the same sections as the page and the email."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from classroom.budget.final_figures import FinalReport
from classroom.budget.final_text import sections


def pdf_bytes(report: FinalReport) -> bytes:
    """Render the report; deterministic apart from reportlab's creation date."""
    # reportlab loads with the first PDF, not with every process that builds the app (0.1 s of CPU)
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=letter, title=f"Final report: {report.source.course_name}",
                            leftMargin=0.8 * inch, rightMargin=0.8 * inch)  # fmt: skip
    story: list = [Paragraph(escape(f"Final course report: {report.source.course_name}"), styles["Title"])]  # type: ignore[type-arg]
    for title, lines in sections(report):
        story.append(Paragraph(escape(title), styles["Heading2"]))
        items = [ListItem(Paragraph(escape(line), styles["BodyText"])) for line in lines]
        story += [ListFlowable(items, bulletType="bullet"), Spacer(1, 6)]  # type: ignore[arg-type]
    doc.build(story)
    return out.getvalue()
