"""The Mailer port and its SMTP adapter. Credentials come from settings and are never logged."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol

from config.settings import Settings


class MailError(Exception):
    """Sending failed; the outbox keeps the email for another try."""


class Mailer(Protocol):
    """Sends one plain-text email."""

    def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    """SMTP with STARTTLS, implicit TLS or none (local relays), optional login."""

    def __init__(self, settings: Settings, timeout: float = 15.0) -> None:
        self.s, self.timeout = settings, timeout

    def send(self, to: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.s.mail_from, to, subject
        msg.set_content(body)
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
