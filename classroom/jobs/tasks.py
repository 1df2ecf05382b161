"""Job bodies for the foundation: thin, id-only, idempotent. Each opens its own session from the job context."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete

from classroom.audit import verify_chain
from classroom.db import session_scope, utcnow
from classroom.jobs.context import current
from classroom.models import KeyStatus, ToolKey

log = logging.getLogger(__name__)


def prune_retired_keys() -> int:
    """Delete retired signing keys whose grace period ended long ago (twice the grace); returns how many."""
    ctx = current()
    cutoff = utcnow() - 2 * timedelta(days=ctx.settings.key_grace_period_days)
    with session_scope(ctx.sessions) as session:
        result = session.execute(
            delete(ToolKey).where(ToolKey.status == KeyStatus.RETIRED, ToolKey.retired_at < cutoff)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def verify_audit_chain() -> bool:
    """Recompute the audit hash chain; log an error naming the first broken event."""
    with session_scope(current().sessions) as session:
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

    ctx = current()
    if not ctx.settings.smtp_host:
        return 0
    with session_scope(ctx.sessions) as session:
        return send_outbox(session, SmtpMailer(ctx.settings))
