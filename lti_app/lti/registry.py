"""Registrations a launch needs, cached in each worker process so the OIDC login needs no database query.

Only what the database said yes to is cached (a registered platform, an approved deployment), for a short
time; anything unknown is looked up again on every request, so a new registration or approval works at
once. Losing access does not wait for the cache either: the launch's own write re-reads the deployment's
status in the same statement (classroom.services.launches) and refuses when it is no longer approved.
What a stale entry can do for at most `ttl_s` is start a login (harmless: it writes nothing) and check a
signature against the platform's key set URL as it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.models import Deployment, DeploymentStatus, Platform
from classroom.services.platforms import find_platform

DEFAULT_TTL_S = 30.0


@dataclass(frozen=True)
class PlatformEntry:
    """The columns of a platform row that login, launch and signing read."""

    id: int
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    auth_audience: str | None
    key_set_url: str
    origin: str

    @classmethod
    def of(cls, row: Platform) -> PlatformEntry:
        return cls(
            row.id,
            row.issuer,
            row.client_id,
            row.auth_login_url,
            row.auth_token_url,
            row.auth_audience,
            row.key_set_url,
            row.origin,
        )


@dataclass(frozen=True)
class DeploymentEntry:
    """An approved deployment: its primary key and the platform's deployment_id."""

    id: int
    platform_id: int
    deployment_id: str


class RegistryCache:
    """Registered platforms by (issuer, client_id) and approved deployments, each kept for `ttl_s` seconds."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._platforms: dict[tuple[str, str | None], tuple[float, PlatformEntry]] = {}
        self._deployments: dict[tuple[int, str], tuple[float, DeploymentEntry]] = {}
        self._lock = threading.Lock()  # gthread workers share one cache

    def _fresh(self, read_at: float) -> bool:
        return self.clock() - read_at < self.ttl_s

    def platform(self, session: Session, issuer: str, client_id: str | None) -> PlatformEntry | None:
        """The registration for (issuer, client_id); without client_id only if the issuer has exactly one."""
        key = (issuer, client_id or None)
        hit = self._platforms.get(key)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        row = find_platform(session, issuer, client_id)
        if row is None:
            self._drop(self._platforms, key)
            return None
        entry = PlatformEntry.of(row)
        with self._lock:
            self._platforms[key] = (self.clock(), entry)
        return entry

    def approved_deployment(self, session: Session, platform_id: int, deployment_id: str) -> DeploymentEntry | None:
        """The deployment if it is approved (a pending, revoked or unknown one is read again every time)."""
        key = (platform_id, deployment_id)
        hit = self._deployments.get(key)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        row = session.scalar(
            select(Deployment).where(Deployment.platform_id == platform_id, Deployment.deployment_id == deployment_id)
        )
        if row is None or row.status is not DeploymentStatus.APPROVED:
            self._drop(self._deployments, key)
            return None
        entry = DeploymentEntry(row.id, row.platform_id, row.deployment_id)
        with self._lock:
            self._deployments[key] = (self.clock(), entry)
        return entry

    def forget_deployment(self, platform_id: int, deployment_id: str) -> None:
        """Drop one deployment (its launch found it no longer approved)."""
        self._drop(self._deployments, (platform_id, deployment_id))

    def forget(self) -> None:
        """Drop everything (after a registration or removal in this process, and in tests)."""
        with self._lock:
            self._platforms.clear()
            self._deployments.clear()

    def _drop(self, table: dict, key: object) -> None:  # type: ignore[type-arg]
        with self._lock:
            table.pop(key, None)
