"""The words of budget alerts: what happened, what it means for money and files, what to do. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from classroom.budget.enforcement import Alert


@dataclass(frozen=True)
class Message:
    """Subject and body of a notification."""

    subject: str
    body: str


def student_message(alert: Alert, course: str, cap: str, spent: str) -> Message:
    """The notice a student gets for a budget threshold or the daily cap."""
    if alert.kind == "daily-cap":
        return Message(
            f"[{course}] Today's spending limit reached",
            f"You reached today's spending limit in {course}, so your running workspaces were stopped. "
            "Your files are kept, and you can start again tomorrow (course time).",
        )
    pct = alert.kind.removeprefix("budget-")
    if pct == "100":
        return Message(
            f"[{course}] Your workspace budget is used up",
            f"You have used {spent} of your {cap} budget in {course}. Your workspaces were hibernated "
            "(or stopped) and no new workspace can start. Your files are kept. Nothing is charged to you. "
            "Ask your instructor if you need more budget.",
        )
    return Message(
        f"[{course}] You have used {pct}% of your workspace budget",
        f"You have used {spent} of your {cap} budget in {course}. Stop workspaces when you are not using "
        "them; idle workspaces stop by themselves.",
    )


def instructor_message(alert: Alert, course: str, student: str, spent: str, cap: str) -> Message:
    """The notice instructors get about an unusual spender."""
    if alert.kind == "anomaly-over-cap":
        return Message(
            f"[{course}] {student} is over their budget",
            f"{student} has spent {spent} against a {cap} budget. Their workspaces were stopped; you can "
            "grant extra budget with a reason in the course's cost report.",
        )
    return Message(
        f"[{course}] Unusual spending by {student}",
        f"{student} has spent {spent}, several times the course median. Check the cost report.",
    )


def course_message(alert: Alert, course: str, committed: str, total: str) -> Message:
    """The notice instructors get at 75/90/100 % of the course total."""
    pct = alert.kind.removeprefix("course-")
    if pct == "100":
        return Message(
            f"[{course}] The course's total budget is used up",
            f"{course} has {committed} spent or reserved of its {total} total. Every running workspace was "
            "stopped and no workspace can start. Files are kept. Ask your IT department to raise the allocation.",
        )
    return Message(
        f"[{course}] {pct}% of the course's total budget is committed",
        f"{course} has {committed} spent or reserved of its {total} total. At the total, workspaces stop "
        "and none can start; the cost report shows what is unallocated.",
    )
