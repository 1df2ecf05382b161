"""Administrator commands: migrations, signing keys, platforms and deployments, registration invites, audit."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from classroom import schema
from classroom.audit import verify_chain
from classroom.db import make_engine, make_session_factory, session_scope
from classroom.integrity.cli import register as register_integrity
from classroom.models import DeploymentStatus
from classroom.services import keys, platforms, registration
from config.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


def _engine():  # type: ignore[no-untyped-def]
    url = _settings().database_url
    if not url:
        raise click.ClickException("DATABASE_URL is not set.")
    return make_engine(url)


@contextmanager
def _session() -> Iterator[Session]:
    engine = _engine()
    schema.check_migrated(engine)
    with session_scope(make_session_factory(engine)) as session:
        yield session


@click.group()
def main() -> None:
    """Cloud Workstation Classroom administration."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations (default: to the newest)."""
    schema.upgrade(_engine(), revision)
    click.echo(f"database at {', '.join(sorted(schema.current_revisions(_engine())))}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' for an empty schema)."""
    schema.downgrade(_engine(), revision)
    click.echo(f"database at {', '.join(sorted(schema.current_revisions(_engine()))) or 'base'}")


@db.command("check")
def db_check() -> None:
    """Exit non-zero if the database is not at the code's migration head."""
    try:
        schema.check_migrated(_engine())
    except schema.SchemaNotMigrated as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("database is migrated")


@main.group("keys")
def keys_group() -> None:
    """The tool's signing keys."""


@keys_group.command("rotate")
def keys_rotate() -> None:
    """Promote the next key, retire the current one (published for the grace period), create a new next."""
    with _session() as session:
        old, new = keys.rotate_keys(session)
    click.echo(f"rotated: {old} retired, {new} current")


@keys_group.command("list")
def keys_list() -> None:
    """Show keys and their status."""
    from sqlalchemy import select

    from classroom.models import ToolKey

    with _session() as session:
        keys.ensure_keys(session)
        for k in session.scalars(select(ToolKey).order_by(ToolKey.id)):
            click.echo(f"{k.kid}  {k.status.value:8}  created {k.created_at:%Y-%m-%d}")


@main.group("platform")
def platform_group() -> None:
    """LMS registrations."""


@platform_group.command("add")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--auth-login-url", required=True)
@click.option("--auth-token-url", required=True)
@click.option("--key-set-url", required=True)
@click.option("--auth-audience", default=None)
@click.option("--name", default="")
@click.option("--product", default="", help="canvas, moodle, blackboard, d2l …")
@click.option("--accept-new-deployments", is_flag=True, help="Let new deployments launch without approval.")
@click.option("--frame-origin", multiple=True, help="Origin allowed to frame the tool (repeatable).")
def platform_add(**opts: object) -> None:
    """Register a platform by hand."""
    data = platforms.PlatformInput(frame_origins=tuple(opts.pop("frame_origin")), **opts)  # type: ignore[arg-type]
    with _session() as session:
        try:
            p = platforms.register_platform(session, data, allow_http=not _settings().is_production)
        except platforms.PlatformError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"platform {p.id} registered")


@platform_group.command("list")
def platform_list() -> None:
    """List platforms with their deployments."""
    with _session() as session:
        for p in platforms.list_platforms(session):
            click.echo(f"{p.id}  {p.issuer}  client_id={p.client_id}  {p.name}")
            for d in p.deployments:
                click.echo(f"      deployment {d.deployment_id}: {d.status.value}")


@platform_group.command("remove")
@click.argument("platform_id", type=int)
@click.confirmation_option(prompt="Remove this platform, its deployments, people and courses?")
def platform_remove(platform_id: int) -> None:
    """Remove a platform and everything under it."""
    with _session() as session:
        try:
            platforms.remove_platform(session, platform_id)
        except platforms.PlatformError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"platform {platform_id} removed")


@platform_group.command("invite")
@click.option("--note", default="")
@click.option("--accept-new-deployments", is_flag=True)
def platform_invite(note: str, accept_new_deployments: bool) -> None:
    """Print a one-time Dynamic Registration URL for an LMS administrator (valid 24 hours)."""
    with _session() as session:
        token = registration.create_invite(session, note=note, accept_new_deployments=accept_new_deployments)
    click.echo(_settings().url(f"/lti/register?invite={token}"))


@main.group("deployment")
def deployment_group() -> None:
    """Approve or revoke deployments."""


@deployment_group.command("approve")
@click.argument("platform_id", type=int)
@click.argument("deployment_id")
def deployment_approve(platform_id: int, deployment_id: str) -> None:
    """Let a deployment launch (it can spend money)."""
    _set_status(platform_id, deployment_id, DeploymentStatus.APPROVED)


@deployment_group.command("revoke")
@click.argument("platform_id", type=int)
@click.argument("deployment_id")
def deployment_revoke(platform_id: int, deployment_id: str) -> None:
    """Stop a deployment from launching."""
    _set_status(platform_id, deployment_id, DeploymentStatus.REVOKED)


def _set_status(platform_id: int, deployment_id: str, status: DeploymentStatus) -> None:
    with _session() as session:
        try:
            platforms.set_deployment_status(session, platform_id, deployment_id, status)
        except platforms.PlatformError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"deployment {deployment_id}: {status.value}")


@main.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Recompute the hash chain; exit 1 naming the first broken event."""
    with _session() as session:
        report = verify_chain(session)
    if not report.ok:
        click.echo(f"BROKEN at event {report.broken_at}: {report.reason} ({report.checked} good events before it)")
        sys.exit(1)
    click.echo(f"audit chain ok: {report.checked} events")


register_integrity(audit_group, _session)  # audit export, audit verify-export
