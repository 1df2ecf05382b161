"""Canvas REST: per-instructor OAuth2 (authlib, Canvas's /login/oauth2 endpoints), tokens encrypted at rest and
refreshed, and the canvasapi adapter that reads assignments and their due dates.

Canvas issues access tokens for an hour with a refresh token; a refresh answer carries no new refresh token
(the old one stays valid), which authlib keeps. An expired or revoked access token (401 "Invalid access token")
is refreshed once and the call repeated; Canvas's 403 "Rate Limit Exceeded" is retried with backoff.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from canvasapi import Canvas
from canvasapi.exceptions import CanvasException, Forbidden, InvalidAccessToken, RateLimitExceeded
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.db import utcnow
from classroom.models import CanvasToken, Enrollment
from classroom.roles import CONFIGURING_LEVELS
from config.settings import Settings
from lms_sync.crypto import TokenDecryptError, decrypt, encrypt
from lms_sync.deadlines import parse_when
from lms_sync.http import LmsError, RetryPolicy
from lms_sync.lti_adapter import TimeoutSession
from lms_sync.ports import RemoteAssignment

STATE_KEY = "cwc:canvas:oauth:"
STATE_TTL_S = 600
SCOPES = "url:GET|/api/v1/courses/:course_id/assignments url:GET|/api/v1/courses/:id"
REFRESH_LEEWAY_S = 60


class CanvasNotConnected(Exception):
    """No usable Canvas authorisation: an instructor must connect Canvas (again)."""


@dataclass(frozen=True)
class CanvasConfig:
    """Where Canvas is and who the tool is to it."""

    base_url: str
    client_id: str
    client_secret: str
    redirect_uri: str
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> CanvasConfig | None:
        """None when Canvas REST is not configured."""
        if not (settings.canvas_base_url and settings.canvas_client_id and settings.canvas_client_secret):
            return None
        return cls(
            settings.canvas_base_url.rstrip("/"),
            settings.canvas_client_id,
            settings.canvas_client_secret,
            settings.url("/sync/canvas/callback"),
            float(settings.lms_http_timeout_s),
        )

    def client(self, **kwargs: Any) -> OAuth2Session:
        return OAuth2Session(
            self.client_id,
            self.client_secret,
            redirect_uri=self.redirect_uri,
            scope=SCOPES,
            default_timeout=self.timeout,
            **kwargs,
        )


def authorize_url(cfg: CanvasConfig, redis: Redis, *, course_id: int, person_id: int) -> str:
    """Canvas's consent page URL; the state binds the answer to this instructor and course (single use)."""
    state = secrets.token_urlsafe(24)
    redis.set(STATE_KEY + state, json.dumps({"course": course_id, "person": person_id}), ex=STATE_TTL_S)
    url, _ = cfg.client().create_authorization_url(cfg.base_url + "/login/oauth2/auth", state=state)
    return url  # type: ignore[no-any-return]


def _store(session: Session, settings: Settings, cfg: CanvasConfig, person_id: int, token: dict[str, Any]) -> None:
    row = session.get(CanvasToken, person_id) or CanvasToken(person_id=person_id, created_at=utcnow())
    refresh = token.get("refresh_token") or (decrypt(settings, row.refresh_token) if row.refresh_token else "")
    expires_in = token.get("expires_in")
    row.base_url = cfg.base_url
    row.access_token = encrypt(settings, str(token["access_token"]))
    row.refresh_token = encrypt(settings, str(refresh))
    row.expires_at = utcnow() + timedelta(seconds=int(expires_in)) if expires_in else None
    user = token.get("user")
    if isinstance(user, dict) and user.get("id") is not None:
        row.canvas_user_id = str(user["id"])[:64]
    row.updated_at = utcnow()
    session.add(row)
    session.flush()


def complete_authorization(
    session: Session, settings: Settings, cfg: CanvasConfig, redis: Redis, *, state: str, code: str
) -> int:
    """Exchange the code for tokens and store them encrypted (flushes); returns the course id the flow began in."""
    raw = redis.getdel(STATE_KEY + state) if state else None
    if not raw:
        raise CanvasNotConnected("This Canvas authorisation has expired or was already used. Start again.")
    bound = json.loads(raw)
    try:
        token = cfg.client(state=state).fetch_token(
            cfg.base_url + "/login/oauth2/token", code=code, grant_type="authorization_code"
        )
    except (OAuthError, requests.RequestException, ValueError) as exc:
        raise CanvasNotConnected(f"Canvas did not authorise the tool: {exc}") from exc
    _store(session, settings, cfg, int(bound["person"]), dict(token))
    append_event(session, "canvas.connected", actor_person_id=int(bound["person"]), course_id=int(bound["course"]))
    return int(bound["course"])


def access_token(
    session: Session, settings: Settings, cfg: CanvasConfig, person_id: int, *, force: bool = False
) -> str:
    """A live access token for this instructor, refreshed (and stored) when expired or when `force` is set."""
    row = session.get(CanvasToken, person_id)
    if row is None:
        raise CanvasNotConnected("Connect Canvas to read assignment due dates.")
    try:
        current, refresh = decrypt(settings, row.access_token), decrypt(settings, row.refresh_token)
    except TokenDecryptError as exc:
        raise CanvasNotConnected(str(exc)) from exc
    expired = row.expires_at is not None and row.expires_at - timedelta(seconds=REFRESH_LEEWAY_S) <= utcnow()
    if not (force or expired):
        return current
    if not refresh:
        raise CanvasNotConnected("The Canvas authorisation expired; connect Canvas again.")
    try:
        token = cfg.client(
            token={"access_token": current, "refresh_token": refresh, "token_type": "Bearer"}
        ).refresh_token(cfg.base_url + "/login/oauth2/token", refresh_token=refresh)
    except OAuthError as exc:  # invalid_grant: revoked or expired refresh token
        session.delete(row)
        session.flush()
        raise CanvasNotConnected(f"Canvas refused to refresh the authorisation ({exc.error}); connect again.") from exc
    except (requests.RequestException, ValueError) as exc:
        raise LmsError(f"Canvas's token endpoint did not answer: {exc}", permanent=False) from exc
    _store(session, settings, cfg, person_id, dict(token))
    return str(token["access_token"])


def connected_instructor(session: Session, course_id: int) -> int | None:
    """An instructor of the course who has connected Canvas (the most recently refreshed), or None."""
    return session.scalar(
        select(CanvasToken.person_id)
        .join(Enrollment, Enrollment.person_id == CanvasToken.person_id)
        .where(Enrollment.course_id == course_id, Enrollment.level.in_(CONFIGURING_LEVELS))
        .order_by(CanvasToken.updated_at.desc())
        .limit(1)
    )


def _is_loopback_http(url: str) -> bool:
    parts = urlparse(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


class CanvasRestAdapter:
    """CanvasCourseApi over canvasapi; `token(force)` hands out (refreshed) access tokens."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[bool], str],
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.base_url, self.token, self.policy, self.sleep = base_url, token, policy or RetryPolicy(), sleep
        self.timeout = timeout

    def _canvas(self, force: bool) -> Canvas:
        with warnings.catch_warnings():
            if _is_loopback_http(self.base_url):  # canvasapi warns on http://; only loopback test servers use it
                warnings.simplefilter("ignore", UserWarning)
            canvas = Canvas(self.base_url, self.token(force))
        canvas._Canvas__requester._session = TimeoutSession(self.timeout)  # type: ignore[attr-defined]  # no timeout
        return canvas

    def assignments(self, canvas_course_id: str) -> list[RemoteAssignment]:
        """All assignments of a course with due dates (canvasapi follows the pages)."""
        refreshed = False
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                course = self._canvas(force=refreshed).get_course(int(canvas_course_id))
                return [
                    RemoteAssignment(
                        str(a.id),
                        str(getattr(a, "name", "") or "Assignment")[:512],
                        parse_when(getattr(a, "due_at", None)),
                        str(getattr(a, "html_url", "") or ""),
                    )
                    for a in course.get_assignments(per_page=100)
                ]
            except InvalidAccessToken as exc:
                if refreshed:
                    raise CanvasNotConnected("Canvas refused the refreshed token; connect Canvas again.") from exc
                refreshed = True
            except (RateLimitExceeded, Forbidden) as exc:
                if isinstance(exc, Forbidden) and "rate limit exceeded" not in str(exc).lower():
                    raise LmsError(f"Canvas refused: {exc}", permanent=True) from exc
                if attempt == self.policy.max_attempts:
                    raise LmsError("Canvas kept answering “Rate Limit Exceeded”.", permanent=False) from exc
                self.sleep(self.policy.backoff(attempt))
            except CanvasException as exc:
                raise LmsError(f"Canvas answered an error: {exc}", permanent=True) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.policy.max_attempts:
                    raise LmsError(f"Canvas did not answer: {type(exc).__name__}", permanent=False) from exc
                self.sleep(self.policy.backoff(attempt))
        raise LmsError("Canvas did not answer.", permanent=False)


def due_facts_from_canvas(assignments: list[RemoteAssignment]) -> list[Any]:
    """Due-date facts for assignments that have a due date (source: Canvas REST)."""
    from classroom.models import DueSource
    from lms_sync.deadlines import DueFact

    return [
        DueFact(DueSource.CANVAS_REST, a.id, a.name, a.due_at, a.html_url) for a in assignments if a.due_at is not None
    ]
