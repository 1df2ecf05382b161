"""The integrity report as PDF (ReportLab) and CSV, with the audit-chain hashes of the events it cites."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from classroom.integrity.evidence import Event, describe_transfer
from classroom.integrity.flags import hours
from classroom.integrity.services import Report, StudentReport

COMMANDS_SHOWN = 60  # per session in the PDF (the CSV has every one)


def when(at: datetime | None, zone: str) -> str:
    """A time in the course's zone, e.g. Oct 19, 10:00 PM."""
    if at is None:
        return "unknown"
    return at.astimezone(ZoneInfo(zone)).strftime("%b %d, %Y %I:%M %p")


def student_lines(s: StudentReport, zone: str) -> list[str]:
    """The seed's tree for one student, as text lines."""
    ev = s.evidence
    lines = [
        f"{s.person.display_name} ({s.person.email})",
        f"  Workspace: {s.workspace}",
        f"  Creation: {when(s.created_at, zone)}",
        f"  Total work time: {hours(ev.work_seconds)}",
        f"  Sessions: {len(ev.sessions)}",
    ]
    for x in ev.sessions:
        origin = {True: "campus", False: "off campus", None: "campus ranges not set"}[x.on_campus]
        end = when(x.end, zone) if x.end else "no logout seen"
        lines.append(f"    {when(x.start, zone)} - {end} ({hours(x.seconds)}) from {x.source_ip or '?'} ({origin})")
        lines += [f"      $ {command_text(c)}  [{c.hash[:16]}]" for c in ev.commands_in(x)[:COMMANDS_SHOWN]]
    lines.append(f"  Files modified: {len(ev.files)}")
    lines += [f"    {f.path}: +{f.lines_added} -{f.lines_removed} lines ({f.changes} changes)" for f in ev.files[:40]]
    lines.append(f"  Git commits: {len(ev.commits)}")
    lines.append(f"  SSH logins: {len(ev.sessions)}")
    lines.append(f"  Transfers: {len(ev.transfers)}")
    lines += [f"    $ {describe_transfer(t)}  [{t.hash[:16]}]" for t in ev.transfers]
    if ev.commands:
        lines.append(f"  Commands typed: {len(ev.commands)} (listed under their session)")
    if ev.loose_commands:
        lines.append(f"  Commands typed outside the sessions listed: {len(ev.loose_commands)}")
        lines += [f"    $ {command_text(c)}  [{c.hash[:16]}]" for c in ev.loose_commands[:COMMANDS_SHOWN]]
    if ev.late_edits:
        lines.append(f"  Edits after the due time: {len(ev.late_edits)}")
    return lines


def command_text(c: Event) -> str:
    """A typed command as the report shows it (already redacted by the agent), on one line."""
    return " ".join(str(c.details.get("line", "")).split())[:200]


def pdf_bytes(report: Report) -> bytes:
    """The report as a PDF."""
    # reportlab loads with the first PDF, not with every process that builds the app (0.1 s of CPU)
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import Paragraph, Preformatted, SimpleDocTemplate, Spacer

    zone = report.course.time_zone or "UTC"
    styles = getSampleStyleSheet()
    mono = styles["Code"]
    mono.fontSize, mono.leading = 7.5, 9.5
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=letter,
        leftMargin=0.6 * inch,
        rightMargin=0.6 * inch,
        title=f"Academic integrity report: {report.title}",
    )
    flow = [
        Paragraph(f"Academic integrity report: {_esc(report.title)}", styles["Title"]),
        Paragraph(
            f"{_esc(report.course.display_name)}. Due: {when(report.due_at, zone)}. Time frame: "
            f"{when(report.start, zone)} to {when(report.end, zone)} ({zone}).",
            styles["Normal"],
        ),
        Paragraph(_esc(report.disclaimer), styles["Italic"]),
        Spacer(1, 8),
    ]
    for s in report.students:
        flow.append(Preformatted("\n".join(student_lines(s, zone)), mono))
        flow.append(Spacer(1, 6))
    flow.append(Paragraph("Indicators for investigation", styles["Heading2"]))
    n = 0
    for s in report.students:
        for f in s.flags:
            n += 1
            flow.append(Paragraph(f"{n}. {_esc(s.person.display_name)}: {_esc(f.text)}", styles["Normal"]))
    if not n:
        flow.append(Paragraph("No indicator applies to the chosen students.", styles["Normal"]))
    flow.append(Paragraph("Audit-chain hashes of the events cited", styles["Heading2"]))
    flow.append(
        Paragraph("Check them with: python -m classroom audit verify (or the Audit trail page).", styles["Normal"])
    )
    flow.append(Preformatted("\n".join(report.cited) or "(none)", mono))
    doc.build(flow)
    return out.getvalue()


def csv_text(report: Report) -> str:
    """One row per cited item: student, what, when, detail, the audit hash."""
    zone = report.course.time_zone or "UTC"
    buf = io.StringIO()
    w = _SafeWriter(csv.writer(buf))
    w.writerow(["student", "email", "item", "when", "detail", "audit_hash"])
    for s in report.students:
        who, ev = s.person.display_name, s.evidence
        w.writerow([who, s.person.email, "workspace", when(s.created_at, zone), s.workspace, ""])
        w.writerow([who, s.person.email, "work_time", "", hours(ev.work_seconds), ""])
        for x in ev.sessions:
            for h in x.hashes:
                w.writerow(
                    [who, s.person.email, "session", when(x.start, zone), f"{x.source_ip} {hours(x.seconds)}", h]
                )
        for c in ev.commits:
            w.writerow(
                [who, s.person.email, "commit", when(c.at, zone), str(c.details.get("message", ""))[:200], c.hash]
            )
        for t in ev.transfers:
            w.writerow([who, s.person.email, "transfer", when(t.at, zone), describe_transfer(t), t.hash])
        for c in ev.commands:
            where = f"session {c.details.get('session') or '?'}, {c.details.get('cwd') or '?'}"
            w.writerow([who, s.person.email, "command", when(c.at, zone), f"{where}: {command_text(c)}", c.hash])
        for f in s.flags:
            w.writerow([who, s.person.email, f"indicator:{f.code}", "", f.text, " ".join(f.hashes)])
    return buf.getvalue()


class _SafeWriter:
    """A csv writer whose cells never start a spreadsheet formula (student-controlled text is in them)."""

    def __init__(self, writer) -> None:  # type: ignore[no-untyped-def]
        self.writer = writer

    def writerow(self, row: list[str]) -> None:
        self.writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@", "\t", "\r") else c for c in map(str, row)])


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
