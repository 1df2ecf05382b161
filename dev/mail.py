"""Development only: the outgoing mail the embedded default does not send (no SMTP configured)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from classroom.models import OutboxEmail
from dev.guard import guard_dev_only
from lti_app.runtime import db, settings

bp = guard_dev_only(Blueprint("dev_mail", __name__, template_folder="templates"))


@bp.get("/dev/mail")
def outbox() -> str:
    """The newest 100 emails in the outbox (404 when SMTP is configured; see dev.guard for the rest)."""
    if settings().smtp_host:
        abort(404)
    emails = db().scalars(select(OutboxEmail).order_by(OutboxEmail.id.desc()).limit(100)).all()
    return render_template("dev_mail.html", emails=emails)
