"""Development only: the outgoing mail the embedded default does not send (no SMTP configured), with the files
attached to it (downloadable)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template
from sqlalchemy import func, select

from classroom.models import OutboxAttachment, OutboxEmail
from dev.guard import guard_dev_only
from lti_app.runtime import db, settings

bp = guard_dev_only(Blueprint("dev_mail", __name__, template_folder="templates"))


@bp.get("/dev/mail")
def outbox() -> str:
    """The newest 100 emails in the outbox (404 when SMTP is configured; see dev.guard for the rest)."""
    if settings().smtp_host:
        abort(404)
    emails = db().scalars(select(OutboxEmail).order_by(OutboxEmail.id.desc()).limit(100)).all()
    files: dict[int, list[tuple[int, str, int]]] = {}
    if emails:
        rows = db().execute(
            select(
                OutboxAttachment.email_id,
                OutboxAttachment.id,
                OutboxAttachment.filename,
                func.octet_length(OutboxAttachment.data),
            )  # fmt: skip
            .where(OutboxAttachment.email_id.in_([e.id for e in emails]))
            .order_by(OutboxAttachment.id)
        )
        for email_id, file_id, name, size in rows:
            files.setdefault(email_id, []).append((file_id, name, int(size)))
    return render_template("dev_mail.html", emails=emails, files=files)


@bp.get("/dev/mail/<int:email_id>/files/<int:file_id>")
def attachment(email_id: int, file_id: int) -> Response:
    """One attached file, as it was sent (404 when SMTP is configured or the file is not this email's)."""
    if settings().smtp_host:
        abort(404)
    row = db().get(OutboxAttachment, file_id)
    if row is None or row.email_id != email_id:
        abort(404)
    disposition = f'attachment; filename="{row.filename}"'
    return Response(bytes(row.data), mimetype=row.content_type, headers={"Content-Disposition": disposition})
