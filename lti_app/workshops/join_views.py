"""The public join page (no LMS launch): access code and a display name, then the participant's own page.

Refusals (wrong or expired code, full workshop, too many attempts, bad CSRF) render a 4xx page and roll back:
no person, participant or workspace is left behind.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Response, make_response, redirect, render_template, request, url_for
from pydantic import Field

from classroom.db import utcnow
from classroom.services.workshops import WorkshopError, choose_extension, extensions_taken
from classroom.workshops import Phase, access_until, extension_cost, extensions_left, normalise_code, phase
from config.catalog import load_catalog
from lti_app.boundary import Checkbox, FormModel, parse_form, parse_input
from lti_app.errors import ToolError
from lti_app.runtime import commit, db, settings
from lti_app.workshops import bp
from lti_app.workshops.join_limits import check_join_rate
from lti_app.workshops.participant_auth import (
    check_join_csrf,
    check_participant_csrf,
    join_csrf,
    load_participant,
    participant_csrf,
    participant_token,
    tool_token_for,
)
from lti_app.workspaces.glue import prices, release_after_commit
from provisioning.workshop_join import join_workshop

NAME_MAX = 100


class JoinForm(FormModel):
    """The walk-in's form."""

    code: str = Field(default="", max_length=100)
    display_name: str = Field(default="", max_length=NAME_MAX)
    email: str = Field(default="", max_length=320)
    extension: Checkbox = False


class ParticipantQuery(FormModel):
    p: str = Field(default="", max_length=400)


def _clean(text: str) -> str:
    """Printable text only, blanks collapsed (names go into pages, emails and the audit trail)."""
    return " ".join("".join(ch for ch in text if ch.isprintable()).split())


def _join_page(status: int = 200, error: str = "", code: str = "", name: str = "", email: str = "") -> Response:
    response = make_response("", status)
    csrf = join_csrf(response)
    response.set_data(render_template("workshops/join.html", csrf=csrf, error=error, code=code, name=name,
                                      email=email))  # fmt: skip
    return response


@bp.get("/workshop/join")
def join_form() -> Response:
    """The join form (a code in the link, e.g. from a QR code on the slide, is filled in)."""
    return _join_page(code=request.args.get("code", "")[:100])


@bp.post("/workshop/join")
def join() -> Response:
    """Join: rate limits, CSRF, the form, then the participant and their workspace, at once."""
    code = normalise_code(request.form.get("code", "")[:100])
    check_join_rate(code)  # every attempt counts, whatever else is wrong with it
    check_join_csrf()
    form = parse_form(JoinForm, status=400)
    name, email = _clean(form.display_name), _clean(form.email)
    if not 1 <= len(name) <= NAME_MAX:
        return _join_page(400, "Give a display name (what the organiser will see).", form.code[:100], name, email)
    if email and ("@" not in email or " " in email):
        return _join_page(400, "That email address does not look right (or leave it empty).", form.code[:100], name)
    try:
        joined = join_workshop(db(), code, name, email, extension=form.extension, catalog=load_catalog(),
                               prices=prices(), region=settings().aws_region, now=utcnow())  # fmt: skip
    except WorkshopError as exc:
        db().rollback()
        return _join_page(exc.status, str(exc), form.code[:100], name, email)
    token = participant_token(joined.participant)
    release_after_commit(joined.jobs)
    commit()
    return redirect(url_for("workshops.me", p=token), code=303)


@bp.get("/workshop/me")
def me() -> str:
    """The participant's page: their workshop, until when they have access, the extension, their workspace."""
    token = parse_form_query().p
    ctx = load_participant(token)
    w = ctx.workshop
    now = utcnow()
    left = extensions_left(w.extension_allowance, w.extension_daily_price, w.extension_days,
                           extensions_taken(db(), w.id))  # fmt: skip
    return render_template(
        "workshops/participant.html",
        ctx=None,
        p=token,
        csrf=participant_csrf(token),
        w=w,
        participant=ctx.participant,
        tz=ZoneInfo(ctx.course.time_zone),
        until=access_until(w.ends_at, w.extension_days, ctx.participant.extension),
        can_extend=w.extension_days > 0
        and not ctx.participant.extension
        and left > 0
        and phase(w.starts_at, w.ends_at, w.extension_days, now) is Phase.OPEN,
        extension_cost=extension_cost(w.extension_daily_price, w.extension_days),
        tool=tool_token_for(ctx),
    )


def parse_form_query() -> ParticipantQuery:
    """The personal link's token from the query or the form."""
    source = request.form if request.method == "POST" else request.args
    return parse_input(ParticipantQuery, source, status=400)


@bp.post("/workshop/me/extension")
def extend() -> Response:
    """Choose the "keep learning" extension before the workshop ends (out of the organiser's allowance)."""
    token = parse_form_query().p
    ctx = load_participant(token)
    check_participant_csrf(token)
    db().refresh(ctx.workshop, with_for_update=True)  # the allowance's last place goes to one participant
    db().refresh(ctx.participant)  # read after the lock: a double click finds the first click's extension
    if phase(ctx.workshop.starts_at, ctx.workshop.ends_at, ctx.workshop.extension_days, utcnow()) is not Phase.OPEN:
        raise ToolError("The extension can be chosen only while the workshop runs.", status=409)
    try:
        choose_extension(db(), ctx.workshop, ctx.participant)
    except WorkshopError as exc:
        raise ToolError(str(exc), status=exc.status, title="Not possible") from exc
    commit()
    return redirect(url_for("workshops.me", p=token), code=303)
