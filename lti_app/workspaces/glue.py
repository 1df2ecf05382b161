"""Web-side glue: the launch's data, the cloud backend, and enqueueing workspace jobs after commit."""

from __future__ import annotations

from typing import Any

from flask import g

from classroom.claims import LTI
from classroom.jobs.queue import enqueue
from classroom.services.workspaces import Job
from config.prices import RegionPrices, load_prices
from lti_app.auth import current
from lti_app.lti.launch import RedisLaunchDataStorage
from lti_app.runtime import after_commit, runtime, settings
from provisioning.backend import CloudBackend
from provisioning.factory import backend_from_settings


def launch_body() -> dict[str, Any]:
    """The id_token body of the launch this tool token belongs to ({} if it has expired)."""
    body = RedisLaunchDataStorage(runtime().redis).get_value(current().claims.launch_id)
    return body or {}


def link_of(body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(link key, link title, template id asked by the link's custom parameters) of a launch."""
    link = body.get(LTI + "resource_link") or {}
    custom = body.get(LTI + "custom") or {}
    template = custom.get("template") if isinstance(custom, dict) else None
    return str(link.get("id") or "course"), str(link.get("title") or "Cloud Workstation"), template


def release_after_commit(todo: list[Job]) -> None:
    """Enqueue the jobs once the request's transaction is committed."""
    if not todo:
        return
    redis = runtime().redis

    def _enqueue() -> None:
        for job in todo:
            enqueue(redis, job.func, job.workspace_id, job_id=job.job_id)

    after_commit(_enqueue)


def prices() -> RegionPrices:
    """Prices for the deployment's region (the only source of cost figures)."""
    return load_prices().region(settings().aws_region)


def backend() -> CloudBackend:
    """The cloud backend, once per request."""
    if "backend" not in g:
        g.backend = backend_from_settings(settings(), runtime().redis)
    return g.backend  # type: ignore[no-any-return]
