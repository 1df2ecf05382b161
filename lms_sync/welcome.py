"""The welcome message new students get (in the tool and by email), after the seed's welcome email. Pure text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class WelcomeFacts:
    """What the message says about the course."""

    course: str
    instructor: str = ""
    budget: Decimal | None = None
    workspace: str = ""  # "t3.medium (2 vCPU, 4 GB RAM Linux workspace ...)"
    term_end: date | None = None
    lms: str = "your LMS"


def _first_name(name: str) -> str:
    return (name.split() or ["there"])[0]


def welcome_message(facts: WelcomeFacts, student_name: str) -> tuple[str, str]:
    """(subject, body) for one student."""
    subject = f"Welcome to {facts.course} - your Cloud Workstation access"[:255]
    lines = [
        f"Hi {_first_name(student_name)},",
        "",
        f"Welcome to {facts.course}!",
        "",
        "You have been given access to Cloud Workstation for this course: your own Linux workspace in the",
        "cloud for the assignments. It never costs you money: the course budget pays for it.",
        "",
        "Getting started:",
        f"1. Open the course in {facts.lms} and click the Cloud Workstation link (or an assignment that uses it).",
        "2. Your workspace starts on your first click; it is ready in a minute or two.",
        "3. Connect from the page it shows (browser, Jupyter or SSH).",
        "",
        "Your resources:",
    ]
    if facts.budget is not None:
        lines.append(f"- Budget: ${facts.budget.quantize(Decimal('0.01'), ROUND_HALF_UP)} for the whole term")
    if facts.workspace:
        lines.append(f"- Workspace type: {facts.workspace}")
    lines.append("- Workspaces stop by themselves when idle, so your budget lasts.")
    if facts.term_end is not None:
        lines += [
            "",
            "Important dates:",
            f"- The term ends: {facts.term_end:%B} {facts.term_end.day}, {facts.term_end.year}",
            "- Your workspace stops automatically at the end of the term.",
        ]
    lines += [
        "",
        "Need help? Ask your TAs during office hours.",
        "",
        "Best,",
        facts.instructor or "Your teaching staff",
    ]
    return subject, "\n".join(lines)
