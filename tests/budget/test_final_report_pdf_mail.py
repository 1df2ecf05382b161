"""The final report email carries its PDF: attached in the outbox (a real PDF whose text shows the total), sent
once through a real SMTP server as multipart with the file, and downloadable from the development mail page."""

from __future__ import annotations

import socket
import subprocess
from datetime import UTC, date, timedelta
from decimal import Decimal
from email import message_from_bytes, policy

from sqlalchemy import func, select

from classroom.mail import Attachment, SmtpMailer, build_message
from classroom.models import OutboxAttachment, OutboxEmail, SpendDaily
from classroom.notify import send_outbox
from classroom.roles import StaffLevel
from provisioning.term_end import run_term_end, term_end_instant
from tests.support.budget import make_policy
from tests.support.factories import make_course, make_person

ACTIONS = {"stop_all": True, "revoke_access": True, "final_report": True}


def _closed(session):  # type: ignore[no-untyped-def]
    """CS 229 with Emily's $22.80, closed by the term-end pass (three passes: one report)."""
    course = make_course(
        session, time_zone="America/Los_Angeles", term_start=date(2024, 8, 26), term_end=date(2024, 12, 13)
    )
    make_policy(session, course, term_end_actions=ACTIONS)
    owner = make_person(session, course, name="Jennifer Martinez", level=StaffLevel.OWNER)
    emily = make_person(session, course, name="Emily Chen")
    session.add(SpendDaily(course_id=course.id, person_id=emily.id, day=date(2024, 12, 1), compute=Decimal("22.80"),
                           storage=Decimal(0), running_seconds=Decimal(3600 * 100)))  # fmt: skip
    session.commit()
    end = term_end_instant(course).astimezone(UTC)
    for minutes in (1, 11, 21):
        run_term_end(session, end + timedelta(minutes=minutes))
        session.commit()
    return course, owner


def _pdf_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def test_the_outbox_email_carries_the_report_as_a_real_pdf_once(session):
    course, owner = _closed(session)
    (email,) = session.scalars(select(OutboxEmail).where(OutboxEmail.subject.like("%Final course report"))).all()
    assert email.to_address == owner.email and "attached as a PDF" in email.body
    (pdf,) = session.scalars(select(OutboxAttachment).where(OutboxAttachment.email_id == email.id)).all()
    assert pdf.filename == "final-report-cs-229.pdf" and pdf.content_type == "application/pdf"
    assert pdf.data.startswith(b"%PDF") and b"%%EOF" in pdf.data[-32:]
    text = _pdf_text(pdf.data)
    assert "Total spent: $22.80 (1.9 %)" in text and "CS 229" in text
    assert session.scalar(select(func.count()).select_from(OutboxAttachment)) == 1  # no other email has a file


def test_the_smtp_adapter_sends_the_pdf_once(session, settings):
    from aiosmtpd.controller import Controller

    received: list[object] = []

    class Handler:
        async def handle_DATA(self, server, sess, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
            received.append(envelope)
            return "250 OK"

    course, owner = _closed(session)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = SmtpMailer(settings.with_(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none"))
        assert send_outbox(session, mailer) == 1
        session.commit()
        assert send_outbox(session, mailer) == 0  # sent once
    finally:
        controller.stop()
    (envelope,) = received
    assert envelope.rcpt_tos == [owner.email]  # type: ignore[attr-defined]
    message = message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[attr-defined]
    assert message.get_content_type() == "multipart/mixed" and "Final course report" in message["Subject"]
    assert "Total spent: $22.80" in message.get_body(("plain",)).get_content()
    (part,) = list(message.iter_attachments())
    assert part.get_filename() == "final-report-cs-229.pdf" and part.get_content_type() == "application/pdf"
    stored = session.scalar(select(OutboxAttachment.data))
    assert part.get_content() == stored and "Total spent: $22.80" in _pdf_text(part.get_content())


def test_a_message_without_files_stays_plain_text():
    plain = build_message("a@x", "b@y", "Hi", "Body")
    assert plain.get_content_type() == "text/plain" and not list(plain.iter_attachments())
    one = build_message("a@x", "b@y", "Hi", "Body", [Attachment("r.pdf", "application/pdf", b"%PDF-1.4 x")])
    assert [p.get_filename() for p in one.iter_attachments()] == ["r.pdf"]


def test_the_development_mail_page_links_the_file(client, session):
    _closed(session)
    page = client.get("/dev/mail").get_data(as_text=True)
    email_id, file_id = session.execute(select(OutboxAttachment.email_id, OutboxAttachment.id)).one()
    link = f"/dev/mail/{email_id}/files/{file_id}"
    assert "final-report-cs-229.pdf" in page and link in page
    resp = client.get(link)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF")
    assert client.get(f"/dev/mail/{email_id + 1}/files/{file_id}").status_code == 404  # not that email's file
    assert client.get(f"/dev/mail/{email_id}/files/{file_id + 1}").status_code == 404
