"""What LMS jobs need from outside (settings, sessions, Redis) and the adapters built per call from the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from classroom.db import make_engine, make_session_factory
from classroom.models import Course, CourseLms, Platform
from classroom.services.keys import current_signing_key
from config.settings import Settings
from lms_sync.canvas import CanvasConfig, CanvasRestAdapter, access_token
from lms_sync.http import RetryPolicy
from lms_sync.lti_adapter import (
    AGS_SCOPES,
    CANVAS_ISSUER,
    CachingConnector,
    LtiAdvantageAdapter,
    ServiceRegistration,
    TimeoutSession,
)
from lms_sync.ports import CanvasCourseApi, LmsServices
from lms_sync.tokens import RedisTokenCache


@dataclass
class LmsContext:
    """Built once per worker process (or by a test): the adapters are built per call from it."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: Redis
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    # tests and benchmarks may swap the LMS adapters (e.g. to count calls); None builds the real ones
    lms_factory: Callable[[Session, int], LmsServices] | None = None
    canvas_factory: Callable[[Session, int], CanvasCourseApi] | None = None


_override: LmsContext | None = None
_by_env: dict[tuple[str, str], LmsContext] = {}


def use_context(ctx: LmsContext | None) -> None:
    """Run jobs in-process against a given context (tests, benchmarks); None goes back to the environment."""
    global _override
    _override = ctx


def context() -> LmsContext:
    """The override, or one context per (DATABASE_URL, REDIS_URL) read from the environment."""
    if _override is not None:
        return _override
    settings = Settings.from_env()
    assert settings.database_url and settings.redis_url, "jobs need DATABASE_URL and REDIS_URL"
    key = (settings.database_url, settings.redis_url)
    if key not in _by_env:
        _by_env[key] = LmsContext(
            settings,
            make_session_factory(make_engine(settings.database_url, pool_size=2)),
            Redis.from_url(settings.redis_url),
        )
    return _by_env[key]


def is_canvas(platform: Platform) -> bool:
    """Canvas (one issuer for every hosted school) gets its own flags."""
    return platform.issuer == CANVAS_ISSUER or (platform.product or "").lower() == "canvas"


def lti_services(session: Session, ctx: LmsContext, course_id: int) -> LmsServices:
    """The LTI Advantage adapter for a course's platform, signing with the tool's current key."""
    if ctx.lms_factory is not None:
        return ctx.lms_factory(session, course_id)
    course = session.get(Course, course_id)
    assert course is not None, f"course {course_id} does not exist"
    platform = session.get(Platform, course.platform_id)
    assert platform is not None
    row = session.get(CourseLms, course_id)
    scopes = [s for s in (row.ags_scopes if row else []) if s in AGS_SCOPES] or list(AGS_SCOPES)
    with ctx.sessions() as keys:  # its own transaction: a key made on first use is committed before the LMS
        key = current_signing_key(keys)  # fetches our JWKS to check the assertion signed with it
        keys.commit()
    connector = CachingConnector(
        ServiceRegistration(platform, key),
        RedisTokenCache(ctx.redis),
        http=TimeoutSession(ctx.settings.lms_http_timeout_s),
        policy=ctx.policy,
        sleep=ctx.sleep,
    )
    return LtiAdvantageAdapter(connector, scopes=scopes, canvas=is_canvas(platform))


def canvas_api(session: Session, ctx: LmsContext, person_id: int) -> CanvasCourseApi | None:
    """The Canvas REST adapter acting as this instructor, or None when Canvas REST is not configured."""
    if ctx.canvas_factory is not None:
        return ctx.canvas_factory(session, person_id)
    cfg = CanvasConfig.from_settings(ctx.settings)
    if cfg is None:
        return None
    return CanvasRestAdapter(
        cfg.base_url,
        lambda force: access_token(session, ctx.settings, cfg, person_id, force=force),
        policy=ctx.policy,
        sleep=ctx.sleep,
        timeout=cfg.timeout,
    )
