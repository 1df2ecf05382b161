"""Messages: staff write to a student (with an optional file reference and small attachment), the student reads
and replies. Opening a thread records it as read by that side: the read receipt staff see."""

from __future__ import annotations

import secrets

from flask import Response, abort, g, redirect, request, url_for
from werkzeug.utils import secure_filename

from classroom.models import Enrollment, Person
from classroom.models.ta import ATTACHMENT_MAX_BYTES
from classroom.roles import StaffLevel, is_staff
from classroom.services.help_requests import is_student_of
from classroom.services.messages import Attachment, Draft, load_attachment, mark_read, reply, send_message, thread
from classroom.ta_text import OfficeInputError
from lti_app.auth import current, requires
from lti_app.boundary import parse_form, parse_query
from lti_app.office import bp
from lti_app.office.forms import ComposeQuery, MessageForm, ReplyForm
from lti_app.pages.views import page
from lti_app.runtime import commit, db


def _is_student(level: StaffLevel) -> bool:
    return level is StaffLevel.STUDENT


def _student_or_404(person_id: int) -> Person:
    """A student of the signed-in course (anyone else, or another course's student, is not found)."""
    course_id = current().course.id
    if not is_student_of(db(), course_id, person_id):
        abort(404)
    person = db().get(Person, person_id)
    assert person is not None
    return person


def _read_attachment() -> Attachment | None:
    upload = request.files.get("attachment")
    if upload is None or not upload.filename:
        return None
    data = upload.stream.read(ATTACHMENT_MAX_BYTES + 1)
    name = secure_filename(upload.filename)[:255] or "attachment"
    return Attachment(name, (upload.mimetype or "application/octet-stream")[:100], data)


def _staff_page(student: Person, form: MessageForm | None = None, error: str = "", status: int = 200,
                sent: bool = False) -> tuple[str, int]:  # fmt: skip
    ctx = current()
    enrollment = db().query(Enrollment).filter_by(course_id=ctx.course.id, person_id=student.id).one()
    help_id = form.help_request if form else parse_query(ComposeQuery).help
    return page("office/staff_thread.html", student=student, enrollment=enrollment,
                items=thread(db(), ctx.course.id, student.id), form=form, error=error, sent=sent,
                client_key=secrets.token_urlsafe(16), help_id=help_id,
                attachment_kib=ATTACHMENT_MAX_BYTES // 1024), status  # fmt: skip


@bp.get("/app/students/<int:person_id>/messages")
@requires(is_staff)
def staff_thread(person_id: int) -> tuple[str, int]:
    """Staff's view of the messages with one student (read state of each), and the form to write."""
    student = _student_or_404(person_id)
    mark_read(db(), current().course.id, student.id, by_student=False)  # the student's replies, now seen by staff
    commit()
    return _staff_page(student, sent=request.args.get("sent") == "1")


@bp.post("/app/students/<int:person_id>/messages")
@requires(is_staff)
def send(person_id: int) -> Response | tuple[str, int]:
    """Send a message (any staff level, read-only TAs too); audited; a resend of the same form is one message."""
    ctx, student, form = current(), _student_or_404(person_id), parse_form(MessageForm)
    draft = Draft(form.subject, form.body, form.file_path, form.line, form.client_key)
    try:
        send_message(db(), ctx.course.id, author_id=ctx.person.id, student_id=student.id, draft=draft,
                     attachment=_read_attachment(), help_request_id=form.help_request)  # fmt: skip
    except OfficeInputError as exc:
        db().rollback()
        return _staff_page(student, form, str(exc), 422)
    commit()
    return redirect(url_for("office.staff_thread", person_id=student.id, t=g.tool_token, sent=1), code=303)


def _inbox(error: str = "", typed: str = "", status: int = 200) -> tuple[str, int]:
    ctx = current()
    items = thread(db(), ctx.course.id, ctx.person.id)
    return page("office/inbox.html", items=items, error=error, typed=typed, client_key=secrets.token_urlsafe(16),
                replied=request.args.get("replied") == "1"), status  # fmt: skip


@bp.get("/app/messages")
@requires(_is_student)
def inbox() -> tuple[str, int]:
    """The student's messages from staff (and their replies); opening the page marks staff's messages read."""
    ctx = current()
    result = _inbox()
    mark_read(db(), ctx.course.id, ctx.person.id, by_student=True)
    commit()
    return result


@bp.post("/app/messages/<int:message_id>/reply")
@requires(_is_student)
def answer(message_id: int) -> Response | tuple[str, int]:
    """The student replies to a message of theirs; its author is told."""
    ctx, form = current(), parse_form(ReplyForm)
    try:
        reply(db(), ctx.course.id, ctx.person.id, message_id, body=form.body, client_key=form.client_key)
    except OfficeInputError as exc:
        if getattr(exc, "status", 400) != 400:
            raise
        db().rollback()
        return _inbox(str(exc), form.body, 422)
    commit()
    return redirect(url_for("office.inbox", t=g.tool_token, replied=1), code=303)


@bp.get("/app/messages/<int:message_id>/attachment")
@requires()
def attachment(message_id: int) -> Response:
    """Download an attachment: staff of the course, or the student the message is to. Never rendered inline."""
    ctx = current()
    student = None if is_staff(ctx.level) else ctx.person.id
    msg = load_attachment(db(), ctx.course.id, message_id, student)
    resp = Response(msg.attachment, mimetype="application/octet-stream")
    resp.headers["Content-Disposition"] = f'attachment; filename="{msg.attachment_name}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
