"""Structured logs (one JSON object a line) carrying request and job ids, with secrets redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
job_id: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="")

# Values that must never reach a log line, whatever message carries them: (pattern, replacement).
_SECRET_PATTERNS = [
    (
        re.compile(
            r"(?i)\b(id_token|client_assertion|access_token|refresh_token|registration_token|jwt|t|csrf_token)=[^&\s\"']+"
        ),
        r"\1=[redacted]",
    ),
    (re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"), "[redacted-key]"),
]


def redact(text: str) -> str:
    """Replace tokens, JWTs and private keys in a string with [redacted]."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line with time, level, logger, ids and message."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if request_id.get():
            payload["request_id"] = request_id.get()
        if job_id.get():
            payload["job_id"] = job_id.get()
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            payload.update({k: redact(str(v)) for k, v in extra.items()})
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload)


class PlainFormatter(logging.Formatter):
    """Human-readable lines for the terminal, same redaction and ids."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v.get()}" for k, v in (("req", request_id), ("job", job_id)) if v.get())
        base = f"{record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        if record.exc_info:
            base += "\n" + redact(self.formatException(record.exc_info))
        return f"{base} {ids}".rstrip()


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_cwc", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    handler._cwc = True  # type: ignore[attr-defined]
    root.addHandler(handler)
