"""`python -m classroom audit export|verify-export`: a time range of the trail, and its check against the chain."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import click
from sqlalchemy.orm import Session

from classroom.integrity.chain import export_events, verify_against_database


def _when(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def register(group: click.Group, session: Callable[[], AbstractContextManager[Session]]) -> None:
    """Add the export and verify-export commands to the audit group."""

    @group.command("export")
    @click.option("--course", type=int, default=None, help="Course id (omit: events without a course).")
    @click.option("--from", "start", required=True, help="ISO date or time, UTC unless it says otherwise.")
    @click.option("--to", "end", required=True, help="ISO date or time (exclusive).")
    def audit_export(course: int | None, start: str, end: str) -> None:
        """Print the events of a time range as JSON lines (with their hashes)."""
        with session() as s:
            for record in export_events(s, course, _when(start), _when(end)):
                click.echo(json.dumps(record, sort_keys=True))

    @group.command("verify-export")
    @click.argument("path", type=click.File("r"))
    def audit_verify_export(path: click.utils.LazyFile) -> None:
        """Check an export: every hash, the links between events, the database's copies and activity rows."""
        try:
            records = [json.loads(line) for line in path if line.strip()]
        except ValueError as exc:
            raise click.ClickException(f"not an export (JSON lines): {exc}") from exc
        with session() as s:
            result = verify_against_database(s, records)
        for problem in result.problems:
            click.echo(f"PROBLEM {problem}")
        if not result.ok:
            click.echo(f"BROKEN: {len(result.problems)} problem(s) in {result.checked} events")
            sys.exit(1)
        click.echo(f"export ok: {result.checked} events match the chain")
