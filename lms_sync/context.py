"""What LMS jobs need beyond the one job context (retry policy, adapter factories), and the adapters built per
call from the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from classroom.jobs.context import JobContext, current
from classroom.models import Course, CourseLms, Platform
from classroom.services.keys import current_signing_key
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
class LmsContext(JobContext):
    """The job context with the LMS knobs (a test sets them); the adapters are built per call from it."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    # tests and benchmarks may swap the LMS adapters (e.g. to count calls); None builds the real ones
    lms_factory: Callable[[Session, int], LmsServices] | None = None
    canvas_factory: Callable[[Session, int], CanvasCourseApi] | None = None


def context() -> LmsContext:
    """The current job context (`classroom.jobs.context`), with the default LMS knobs unless a test set its own."""
    ctx = current()
    if isinstance(ctx, LmsContext):
        return ctx
    return LmsContext(ctx.settings, ctx.sessions, ctx.redis, ctx.cloud, ctx.backend_factory, ctx.clock)


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
