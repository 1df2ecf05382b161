"""Helpers for workshop tests: the owner's launch, a workshop made through the form, walk-ins through the join page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from classroom.db import utcnow
from tests.support.budget import ensure_policies
from tests.support.lti import hidden_fields, launch, tool_token

CODE = re.compile(r'<code id="access-code">([A-Z2-7-]+)</code>')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def owner_token(client: Any, platform: Any, session: Any) -> str:
    """Dr. Martinez's launch (the first instructor owns the course), and the CS229 policy."""
    token = tool_token(launch(client, platform, platform.user("instructor")))
    ensure_policies(session)
    return token


def create_workshop(client: Any, token: str, **fields: str) -> tuple[int, str, Any]:
    """Post the organiser's form; returns (status, access code or "", response)."""
    page = client.get("/app/workshops", query_string={"t": token})
    assert page.status_code == 200, page.data[:300]
    start = (utcnow() - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
    form = {"title": "Intro to ML on the cloud", "starts_at": start, "hours": "3", "max_participants": "30",
            "budget": "150", "template_id": "ml-cpu-student", **fields}  # fmt: skip
    resp = client.post("/app/workshops", data={**hidden_fields(page.get_data(as_text=True)), **form})
    found = CODE.search(resp.get_data(as_text=True))
    return resp.status_code, found.group(1) if found else "", resp


def join(app: Any, code: str, name: str, *, ip: str = "127.0.0.1", **extra: str) -> Any:
    """A walk-in's browser: the join page (its cookie and CSRF value), then the form."""
    walk_in = app.test_client()
    page = walk_in.get("/workshop/join", environ_base={"REMOTE_ADDR": ip})
    csrf = CSRF.search(page.get_data(as_text=True))
    assert csrf is not None
    data = {"csrf_token": csrf.group(1), "code": code, "display_name": name, **extra}
    return walk_in.post("/workshop/join", data=data, environ_base={"REMOTE_ADDR": ip})
