"""Job bodies for the foundation: thin, id-only, idempotent. Each opens its own session."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete

from classroom.audit import verify_chain
from classroom.db import make_engine, make_session_factory, session_scope, utcnow
from classroom.models import KeyStatus, ToolKey
from config.settings import Settings

log = logging.getLogger(__name__)


def _sessions(settings: Settings):  # type: ignore[no-untyped-def]
    assert settings.database_url, "jobs need DATABASE_URL"
    return make_session_factory(make_engine(settings.database_url, pool_size=2))


def prune_retired_keys() -> int:
    """Delete retired signing keys whose grace period ended long ago (twice the grace); returns how many."""
    settings = Settings.from_env()
    cutoff = utcnow() - 2 * timedelta(days=settings.key_grace_period_days)
    with session_scope(_sessions(settings)) as session:
        result = session.execute(
            delete(ToolKey).where(ToolKey.status == KeyStatus.RETIRED, ToolKey.retired_at < cutoff)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def verify_audit_chain() -> bool:
    """Recompute the audit hash chain; log an error naming the first broken event."""
    with session_scope(_sessions(Settings.from_env())) as session:
        report = verify_chain(session)
    if not report.ok:
        log.error("audit chain broken at event %s: %s", report.broken_at, report.reason)
    else:
        log.info("audit chain ok (%s events)", report.checked)
    return report.ok


def send_outbox_emails() -> int:
    """Send waiting emails through SMTP (when configured; otherwise they wait on the development mail page)."""
    from classroom.mail import SmtpMailer
    from classroom.notify import send_outbox

    settings = Settings.from_env()
    if not settings.smtp_host:
        return 0
    with session_scope(_sessions(settings)) as session:
        return send_outbox(session, SmtpMailer(settings))
