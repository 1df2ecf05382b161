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
    term_start: date | None = None
    materials_path: str = ""  # "/mnt/cs229-materials/", empty when the course shares no materials
    due_dates: tuple[tuple[str, date], ...] = ()  # (assignment, due day in the course's time zone), soonest first
    helpers: tuple[str, ...] = ()  # the TAs' names, head TA first


def _first_name(name: str) -> str:
    return (name.split() or ["there"])[0]


def _day(d: date) -> str:
    return f"{d:%B} {d.day}, {d.year}"


def _resources(facts: WelcomeFacts) -> list[str]:
    lines = ["", "Your resources:"]
    if facts.budget is not None:
        lines.append(f"- Budget: ${facts.budget.quantize(Decimal('0.01'), ROUND_HALF_UP)} for the whole term")
    if facts.workspace:
        lines.append(f"- Workspace type: {facts.workspace}")
    if facts.materials_path:
        lines.append(f"- Course materials: in {facts.materials_path} inside your workspace (read-only)")
    lines.append("- Workspaces stop by themselves when idle, so your budget lasts.")
    return lines


def _dates(facts: WelcomeFacts) -> list[str]:
    lines: list[str] = []
    if facts.term_start is not None:
        lines.append(f"- The term starts: {_day(facts.term_start)}")
    lines += [f"- {title} is due: {_day(due)}" for title, due in facts.due_dates[:5]]
    if facts.term_end is not None:
        lines.append(f"- The term ends: {_day(facts.term_end)}")
        lines.append("- Your workspace stops automatically at the end of the term.")
    return ["", "Important dates:", *lines] if lines else []


def _help(facts: WelcomeFacts) -> str:
    if not facts.helpers:
        return "Need help? Ask your TAs during office hours."
    names = ", ".join(facts.helpers[:-1]) + (" or " if len(facts.helpers) > 1 else "") + facts.helpers[-1]
    return f"Need help? Ask your TAs ({names}) during office hours."


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
        "2. Start your workspace from that page; it is ready in a minute or two.",
        '3. Create or upload an SSH key on the tool\'s "SSH keys" tab, then connect with the SSH command the',
        "   workspace page shows (Jupyter runs through an SSH tunnel; the page gives that command too).",
        *_resources(facts),
        *_dates(facts),
        "",
        _help(facts),
        "",
        "Best,",
        facts.instructor or "Your teaching staff",
    ]
    return subject, "\n".join(lines)
