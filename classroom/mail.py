"""The Mailer port and its SMTP adapter. Credentials come from settings and are never logged."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from config.settings import Settings


class MailError(Exception):
    """Sending failed; the outbox keeps the email for another try."""


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email (the final report's PDF)."""

    filename: str
    content_type: str  # "application/pdf"
    data: bytes


class Mailer(Protocol):
    """Sends one plain-text email, with files attached when given."""

    def send(self, to: str, subject: str, body: str, attachments: Sequence[Attachment] = ()) -> None: ...


def build_message(
    sender: str, to: str, subject: str, body: str, attachments: Sequence[Attachment] = ()
) -> EmailMessage:
    """The MIME message: plain text, then each attachment (multipart/mixed when there is one)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content(body)
    for a in attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(a.data, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename)
    return msg


class SmtpMailer:
    """SMTP with STARTTLS, implicit TLS or none (local relays), optional login."""

    def __init__(self, settings: Settings, timeout: float = 15.0) -> None:
        self.s, self.timeout = settings, timeout

    def send(self, to: str, subject: str, body: str, attachments: Sequence[Attachment] = ()) -> None:
        msg = build_message(self.s.mail_from, to, subject, body, attachments)
        try:
            if self.s.smtp_tls == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.s.smtp_host, self.s.smtp_port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.s.smtp_host, self.s.smtp_port, timeout=self.timeout)
            with client:
                if self.s.smtp_tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.s.smtp_user:
                    client.login(self.s.smtp_user, self.s.smtp_password)
                client.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"could not send to {to}: {type(exc).__name__}") from exc
