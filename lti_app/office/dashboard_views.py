"""The staff dashboard: every student, their workspace, activity, money, help requests and flags."""

from __future__ import annotations

from classroom.dashboard_rules import (
    FLAGS,
    PAGE_SIZE,
    SORTS,
    STATE_ORDER,
    DashboardQuery,
    build_rows,
    page_of,
    select_rows,
    summary,
)
from classroom.db import utcnow
from classroom.roles import is_staff
from classroom.services.dashboard import due_soon, load_facts
from classroom.ta_time import ago, span
from lti_app.auth import current, requires
from lti_app.boundary import parse_query
from lti_app.office import bp
from lti_app.office.forms import DashboardQueryForm
from lti_app.pages.views import page
from lti_app.runtime import db

SORT_LABELS = {"name": "Name", "section": "Section", "state": "Workspace state", "running_for": "Running for",
               "last_activity": "Last activity", "budget": "Budget used", "help": "Help requests",
               "flags": "Needs help first"}  # fmt: skip


@bp.get("/app/dashboard")
@requires(is_staff)
def dashboard() -> str:
    """Every active student with flags for who needs help; sort, filter and search (constant SQL statements)."""
    ctx, form = current(), parse_query(DashboardQueryForm)
    now = utcnow()
    soon = due_soon(db(), ctx.course.id, now)
    rows = build_rows(load_facts(db(), ctx.course.id, now), now, soon)
    query = DashboardQuery(form.q.strip(), form.section, form.flag, form.state, form.sort, form.order == "desc")
    selected = select_rows(rows, query, now)
    shown, number, pages = page_of(selected, form.page)
    return page(
        "office/dashboard.html",
        rows=shown,
        matching=len(selected),
        first=(number - 1) * PAGE_SIZE + 1,
        page_number=number,
        pages=pages,
        total=len(rows),
        counts=summary(rows),
        form=form,
        sections=sorted({r.facts.section for r in rows if r.facts.section}),
        states=[*STATE_ORDER, "none"],
        flags=FLAGS,
        sorts=[(s, SORT_LABELS[s]) for s in SORTS],
        due_soon=sorted(soon),
        now=now,
        ago=ago,
        span=span,
    )
