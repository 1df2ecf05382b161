"""Pure: the final report as titled sections of plain lines, the one wording the page, email and PDF share."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from classroom.budget.final_figures import SAVING_CAP_HOURS, FinalReport, cents, percent

Section = tuple[str, tuple[str, ...]]


def dollars(value: Decimal) -> str:
    """$1,140.80."""
    c = cents(value)
    return f"-${-c:,.2f}" if c < 0 else f"${c:,.2f}"


def _hours(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1')):,} h"


def _mib(size: int) -> str:
    return f"{Decimal(size) / (1024 * 1024):,.1f} MiB"


def _share(part: Decimal, whole: Decimal) -> str:
    return percent(part / whole) if whole else "n/a"


def sections(r: FinalReport) -> list[Section]:
    """The report's sections, in the seed's order."""
    s = r.source
    term = f"{s.term_start} to {s.term_end}" if s.term_start and s.term_end else "dates not set"
    eff = r.efficiency
    out: list[Section] = [
        ("Course", (s.course_name, f"Term: {term}", f"Students: {r.students}")),
        (
            "Budget",
            (
                f"Total budget: {dollars(s.total_budget)}",
                f"Total spent: {dollars(r.total_spent)} ({_share(r.total_spent, s.total_budget)}), "
                f"of which course-wide lines {dollars(s.course_lines)}",
                f"Unused: {dollars(r.unused)}",
            ),
        ),
        (
            "Per student",
            (
                f"Average spend: {dollars(r.average)} of {dollars(s.budget_per_student)}",
                f"Range: {dollars(r.lowest)} to {dollars(r.highest)}",
                f"Over budget: {r.over_budget}; within budget: {r.under_budget}; reached their cap: {r.at_cap}",
            ),
        ),
        (
            "Usage",
            (
                f"Total compute hours: {_hours(r.compute_hours)}; average per student: {_hours(r.average_hours)}",
                f"Idle-stop savings: {dollars(r.savings)} ({percent(r.savings_share)} of what the term would have cost "
                "without them): the hours each workspace stayed stopped after an idle stop, until its next start or "
                f"the term's end, at most {SAVING_CAP_HOURS} h per stop, at the workspace's ledger running rate",
                f"Peak week: {_week(r)}",
            ),
        ),
        (
            "Efficiency (share of running time with activity, from agent heartbeats)",
            (
                f"High (over 90 %): {eff['high']}; medium (70 to 90 %): {eff['medium']}; "
                f"low (under 70 %): {eff['low']}; no heartbeats: {eff['no data']}",
            ),
        ),
        (
            "Teaching staff (audit trail)",
            (
                f"Debug sessions: {r.debug_sessions}{_avg(r)}; workspace resets: {r.resets}; "
                f"messages sent: {r.messages}; help requests: {r.help_requests}",
                f"Most active: {r.most_active[0]} ({r.most_active[1]} actions)"
                if r.most_active
                else "Most active: none",
            ),
        ),
        (
            "Academic integrity",
            (
                "Flagged pairs: no similarity run" if s.flagged_pairs is None else f"Flagged pairs: {s.flagged_pairs}",
                "The audit trail stays available in Cloud Workstation.",
            ),
        ),
        ("Archive", _archive(r)),
    ]
    if s.previous is not None and r.change_from_previous is not None:
        p = s.previous
        out.append(
            (
                "Previous term",
                (
                    f"{p.name}: {dollars(p.spent)} ({p.students} students)",
                    f"This term: {dollars(r.total_spent)} ({r.students} students), {_change(r.change_from_previous)}",
                ),
            )
        )
    out.append(("Recommendations", r.recommendations or ("No change suggested by this term's figures.",)))
    return out


def _avg(r: FinalReport) -> str:
    if r.debug_minutes is None:
        return ""
    return f" (average {r.debug_minutes.quantize(Decimal('1'), rounding=ROUND_HALF_UP)} minutes)"


def _week(r: FinalReport) -> str:
    if r.peak is None:
        return "no spend recorded"
    if r.peak.term_week:
        return f"Week {r.peak.term_week} (from {r.peak.start}), {dollars(r.peak.spent)}"
    return f"The week of {r.peak.start}, {dollars(r.peak.spent)}"


def _change(change: Decimal) -> str:
    return f"{percent(-change)} less" if change < 0 else f"{percent(change)} more"


def _archive(r: FinalReport) -> tuple[str, ...]:
    a = r.source.archives
    if a.count == 0:
        return ("No home archived.",)
    until = a.expires.date().isoformat() if a.expires else "unknown"
    return (
        f"{a.count} home(s), {_mib(a.size_bytes)}, in the archive bucket under {a.location or '(course prefix)'}",
        f"Kept until {until} (then deleted by the bucket's lifecycle rule)",
    )


def plain_text(r: FinalReport) -> str:
    """The email body."""
    blocks = [f"{title}\n" + "\n".join(f"- {line}" for line in lines) for title, lines in sections(r)]
    return f"{r.source.course_name} has closed. Final course report:\n\n" + "\n\n".join(blocks) + "\n"
