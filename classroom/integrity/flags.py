"""Pure: the five indicators the seed's report lists, worded as indicators for investigation, not findings."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from classroom.integrity.evidence import Evidence, inbound
from classroom.integrity.pairs import Pair

LATE_CREATION = timedelta(days=2)  # a workspace created this close to the due time
LOW_WORK_SHARE = 0.5  # work time below this share of the class median
DISCLAIMER = (
    "These are indicators for investigation, not findings of misconduct. Each has innocent explanations "
    "(work done elsewhere, a laptop, a late start); read them with the student's own account."
)


@dataclass(frozen=True)
class Flag:
    """One indicator: its code, the sentence shown, and the audit hashes of the events behind it."""

    code: str
    text: str
    hashes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    """What the flags need about one student."""

    key: str  # person id as text: the similarity pairs use it
    name: str
    created_at: datetime | None
    evidence: Evidence


def hours(seconds: float) -> str:
    """1.2 h."""
    return f"{seconds / 3600:.1f} h"


def class_figures(cohort: Sequence[Evidence]) -> tuple[float, int]:
    """The class's median work time (seconds) and how many students have at least one commit."""
    work = [e.work_seconds for e in cohort if e.sessions]
    return (statistics.median(work) if work else 0.0), sum(1 for e in cohort if e.commits)


def flags_for(
    s: Subject,
    due_at: datetime | None,
    median_work: float,
    with_commits: int,
    pairs: Sequence[Pair],
    names: Mapping[str, str],
    threshold: int,
) -> list[Flag]:
    """The indicators that apply to one student."""
    out: list[Flag] = []
    ev = s.evidence
    if due_at and s.created_at and timedelta(0) <= due_at - s.created_at <= LATE_CREATION:
        before = due_at - s.created_at
        out.append(Flag("late_workspace", f"Workspace created late: {_span(before)} before the due time."))
    if median_work and ev.work_seconds < LOW_WORK_SHARE * median_work:
        out.append(
            Flag(
                "low_work_time",
                f"Work time far below the class: {hours(ev.work_seconds)} against a "
                f"class median of {hours(median_work)}.",
                tuple(h for x in ev.sessions for h in x.hashes),
            )
        )
    outside = [t for t in ev.transfers if inbound(t)]
    if outside:
        out.append(
            Flag(
                "outside_transfer",
                f"File transfer into the workspace from outside it ({len(outside)}).",
                tuple(t.hash for t in outside if t.hash),
            )
        )
    for p in pairs:
        if s.key in (p.a, p.b) and p.score >= threshold:
            other = names.get(p.b if s.key == p.a else p.a, "another student")
            out.append(Flag("similarity", f"Code similarity {p.score}% with {other} (threshold {threshold}%)."))
    others_with = with_commits - (1 if ev.commits else 0)
    if not ev.commits and others_with > 0:
        out.append(Flag("no_git_history", f"No git commits, where {others_with} other student(s) have some."))
    return out


def _span(delta: timedelta) -> str:
    h = int(delta.total_seconds() // 3600)
    return f"{h // 24} day(s) {h % 24} h" if h >= 24 else f"{h} h"
