"""How to read an LMS's HTTP answer: Link headers, Retry-After, and whether to retry. Pure, plus one blocking shell.

LTI says nothing about rate limits, so: 429 honours Retry-After; 5xx, network errors and Canvas's
403 "Rate Limit Exceeded" back off exponentially; 401 means "fetch a new service token once"; any other 4xx
is permanent, and "user not enrolled" answers are recognised so people can read why.
"""

from __future__ import annotations

import enum
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+(?:=\s*(?:\"[^\"]*\"|[^;,]*))?)*)")
_PARAM = re.compile(r";\s*([^=;,\s]+)\s*(?:=\s*(\"[^\"]*\"|[^;,]*))?")
_NOT_ENROLLED = ("not enrolled", "not a student", "user not found", "is not enrolled", "no enrollment")


def parse_link_header(value: str) -> dict[str, str]:
    """Map each rel (lower-cased; one link may carry several) to its URL, URL case kept; first one wins."""
    links: dict[str, str] = {}
    for match in _LINK.finditer(value or ""):
        url, params = match.group(1).strip(), match.group(2)
        for name, raw in _PARAM.findall(params):
            if name.lower() != "rel":
                continue
            for rel in raw.strip('"').split():
                links.setdefault(rel.lower(), url)
    return links


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Outcome(enum.StrEnum):
    OK = "ok"
    RETRY = "retry"  # transient: try again after `delay`
    REAUTH = "reauth"  # the service token was refused: fetch a new one, then try again
    CONFLICT = "conflict"  # 409: the LMS already has something newer
    PERMANENT = "permanent"  # do not retry without a person changing something


@dataclass(frozen=True)
class Verdict:
    """What to do with one answer."""

    outcome: Outcome
    delay: float = 0.0
    message: str = ""
    throttled: bool = False  # 429 or a rate-limit 403: slow down, not only this request
    not_enrolled: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; the same policy for every LMS call."""

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 300.0  # a Retry-After longer than this ends the job's tries (the sweep comes back)

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before try number `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.cap_s, self.base_s * (2 ** max(0, attempt - 1)))
        return ceiling / 2 + rand() * ceiling / 2


def error_message(status: int, body: str) -> str:
    """A short readable message from an LMS error body (JSON error/message fields or the text)."""
    text = (body or "").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("error_description", "message", "error", "errors", "reason"):
            value = data.get(key)
            if isinstance(value, list) and value:
                value = value[0].get("message", value[0]) if isinstance(value[0], dict) else value[0]
            if isinstance(value, str | int) and str(value).strip():
                text = str(value)
                break
    text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())[:300]
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


def classify(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    attempt: int,
    policy: RetryPolicy,
    now: datetime | None = None,
    rand: Callable[[], float] = random.random,
) -> Verdict:
    """Decide what an answer means (pure)."""
    if 200 <= status < 300:
        return Verdict(Outcome.OK)
    message = error_message(status, body)
    retry_after = retry_after_seconds(headers.get("Retry-After") or headers.get("retry-after"), now)
    if status == 429 or (status == 403 and "rate limit exceeded" in (body or "").lower()):
        delay = retry_after if retry_after is not None else policy.backoff(attempt, rand)
        return Verdict(Outcome.RETRY, delay, message, throttled=True)
    if status >= 500:
        delay = retry_after if retry_after is not None else policy.backoff(attempt, rand)
        return Verdict(Outcome.RETRY, delay, message)
    if status == 401:
        return Verdict(Outcome.REAUTH, 0.0, message)
    if status == 409:
        return Verdict(Outcome.CONFLICT, 0.0, message)
    lowered = (body or "").lower()
    not_enrolled = status in (400, 403, 404, 422) and any(s in lowered for s in _NOT_ENROLLED)
    if not_enrolled:
        message = "The LMS says this student is not enrolled in the course (" + message + ")."
    return Verdict(Outcome.PERMANENT, 0.0, message, not_enrolled=not_enrolled)


def network_verdict(exc: Exception, *, attempt: int, policy: RetryPolicy) -> Verdict:
    """Connection problems and timeouts are transient."""
    return Verdict(Outcome.RETRY, policy.backoff(attempt), f"network error: {type(exc).__name__}")


class LmsError(Exception):
    """An LMS call failed; `permanent` says whether trying again later can help."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.permanent, self.status = message, permanent, status


def send_with_retries(
    send: Callable[[], requests.Response],
    *,
    policy: RetryPolicy,
    reauth: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """Call `send` until it succeeds, sleeping as the verdicts say; raise LmsError when it cannot (blocking)."""
    reauthed = False
    for attempt in range(1, policy.max_attempts + 1):
        try:
            response = send()
        except (requests.ConnectionError, requests.Timeout) as exc:
            verdict = network_verdict(exc, attempt=attempt, policy=policy)
        else:
            verdict = classify(response.status_code, response.headers, response.text, attempt=attempt, policy=policy)
            if verdict.outcome is Outcome.OK:
                return response
            if verdict.outcome is Outcome.REAUTH and reauth is not None and not reauthed:
                reauth()
                reauthed = True
                continue
            if verdict.outcome is not Outcome.RETRY:
                raise LmsError(verdict.message, permanent=True, status=response.status_code)
        if attempt == policy.max_attempts or verdict.delay > policy.max_retry_after_s:
            break
        sleep(verdict.delay)
    raise LmsError(f"The LMS did not answer after {policy.max_attempts} tries: {verdict.message}", permanent=False)
