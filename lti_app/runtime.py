"""The app's connections (engine, session factory, Redis), built once by create_app and kept on the app."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from classroom.db import make_engine, make_session_factory
from config.settings import Settings, SettingsError
from lti_app.lti.jwks_cache import PlatformKeyCache
from lti_app.lti.registry import RegistryCache


@dataclass
class Runtime:
    """Everything a request needs from outside the process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    registry: RegistryCache  # approved platforms and deployments, per process (see lti_app.lti.registry)
    platform_keys: PlatformKeyCache  # platforms' public keys: in Redis, and parsed in this process


def build_runtime(settings: Settings) -> Runtime:
    """Create (not connect) the engine and the Redis client from settings."""
    if not settings.database_url:
        raise SettingsError("DATABASE_URL is not set. `make run` starts an embedded PostgreSQL and sets it for you.")
    if not settings.redis_url:
        raise SettingsError("REDIS_URL is not set. `make run` starts an embedded Redis and sets it for you.")
    engine = make_engine(settings.database_url)
    client = redis.Redis.from_url(settings.redis_url)
    keys = PlatformKeyCache(client, settings.platform_jwks_ttl_s)
    return Runtime(settings, engine, make_session_factory(engine), client, RegistryCache(), keys)


def runtime() -> Runtime:
    """The current app's runtime."""
    return current_app.extensions["cwc"]  # type: ignore[no-any-return]


def settings() -> Settings:
    """The current app's settings."""
    return runtime().settings


def db() -> Session:
    """The request's database session (opened on first use, closed at teardown)."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db  # type: ignore[no-any-return]


def after_commit(callback: object) -> None:
    """Queue a side effect (enqueue, email, HTTP call) to run only after the request's commit."""
    g.setdefault("after_commit", []).append(callback)


def commit() -> None:
    """Commit the request's session, then release the side effects collected during the request."""
    db().commit()
    for callback in g.pop("after_commit", []):
        callback()  # type: ignore[operator]


def close_db(_exc: BaseException | None = None) -> None:
    """Teardown: roll back anything uncommitted and close the session."""
    session = g.pop("db", None)
    g.pop("after_commit", None)
    if session is not None:
        session.close()
