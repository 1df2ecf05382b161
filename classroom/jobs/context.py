"""The one context every job runs in: settings, a session factory, Redis, the cloud backend and a clock.

Built once per worker process from the environment (one engine per (DATABASE_URL, REDIS_URL), so a job never
builds an engine of its own), or installed by a test or benchmark with `use_context`. The RQ worker builds it
before it forks, so each job's work horse inherits it; the horse still opens its own connection (a pool is
never shared across a fork). Each job opens its own
session from it (`ctx.session()`), commits at its boundary, and releases the jobs it made after that commit.
The cloud backend is built on first use: jobs that never touch AWS (LMS, mail, audit) never build a client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from classroom.db import make_engine, make_session_factory, utcnow
from classroom.jobs.queue import enqueue
from config.settings import Settings

if TYPE_CHECKING:  # the port's type only; classroom imports no adapter at run time
    from classroom.services.workspaces import Job
    from provisioning.backend import CloudBackend

# The composition root's choice of cloud adapter, by path (like the job table), so the domain imports no adapter.
BACKEND_FACTORY = "provisioning.factory.backend_from_settings"


def _default_backend(settings: Settings, redis: Redis) -> CloudBackend:
    module, name = BACKEND_FACTORY.rsplit(".", 1)
    factory: Callable[[Settings, Redis], CloudBackend] = getattr(importlib.import_module(module), name)
    return factory(settings, redis)


@dataclass
class JobContext:
    """What a job needs from outside. `cloud` is a ready backend (tests pass theirs); else one is built once."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: Redis
    cloud: CloudBackend | None = None
    backend_factory: Callable[[Settings, Redis], CloudBackend] = _default_backend
    clock: Callable[[], datetime] = utcnow

    @property
    def backend(self) -> CloudBackend:
        """The cloud port, built on first use and kept for the life of the context."""
        if self.cloud is None:
            self.cloud = self.backend_factory(self.settings, self.redis)
        return self.cloud

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for one job (or one step of it); closed on exit, never committed for you."""
        session = self.sessions()
        try:
            yield session
        finally:
            session.close()

    def release(self, jobs: list[Job]) -> None:
        """Enqueue workspace jobs (after the commit that made them necessary), deduplicated by job id."""
        for job in jobs:
            enqueue(self.redis, job.func, job.workspace_id, job_id=job.job_id)


_override: JobContext | None = None
_by_env: dict[tuple[str, str], JobContext] = {}


def use_context(ctx: JobContext | None) -> None:
    """Run jobs in-process against a given context (tests, benchmarks); None goes back to the environment."""
    global _override
    _override = ctx


def context_from_env() -> JobContext:
    """One context per (DATABASE_URL, REDIS_URL) of this process: the engine is built once, not per job."""
    settings = Settings.from_env()
    assert settings.database_url and settings.redis_url, "jobs need DATABASE_URL and REDIS_URL"
    key = (settings.database_url, settings.redis_url)
    if key not in _by_env:
        _by_env[key] = JobContext(
            settings,
            make_session_factory(make_engine(settings.database_url, pool_size=2)),
            Redis.from_url(settings.redis_url),
        )
    return _by_env[key]


def current() -> JobContext:
    """The context jobs run in now: the installed one, or the environment's."""
    return _override or context_from_env()


def forget_env_contexts() -> None:
    """Drop the contexts built from the environment, closing their pooled connections (a test whose database
    goes away, or that changes DATABASE_URL or REDIS_URL)."""
    for ctx in _by_env.values():
        engine = ctx.sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()
    _by_env.clear()
