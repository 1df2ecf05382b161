"""The per-student debug page: status and logs (all staff), SSH debug sessions (head TA, instructors), and the
recordings' replay (instructors)."""

from __future__ import annotations

from flask import Response, abort, g, redirect, request, url_for
from sqlalchemy import select

from classroom.db import utcnow
from classroom.models import DebugRecording, DebugSession, Person, Workspace
from classroom.roles import can_configure, is_staff
from classroom.services.debug_sessions import (
    DebugRefused,
    end_session,
    is_live,
    open_session,
    parse_request,
    sessions_of,
)
from classroom.services.debug_status import workspace_status
from classroom.services.terminal import forget_debug_credentials, keep_debug_credentials
from classroom.workspaces.host_keys import current_pin, key_fingerprint
from config.catalog import load_catalog
from lti_app.auth import current, requires
from lti_app.debug import bp
from lti_app.debug.common import chosen_workspace, require_acting, student_in_course, student_workspaces
from lti_app.debug.notebook import ANSI
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db, runtime, settings
from lti_app.workspaces.glue import backend
from lti_app.workspaces.terminal_views import terminal_enabled
from provisioning.backend import CloudError
from provisioning.home_access import readable
from provisioning.runtime.recording import CAST_TYPE, parse_cast
from provisioning.ssh_ca import VIEW_USER, workspace_login
from provisioning.ssh_keys import SshKeyError, generate_key_pair


def _debug_page(person: Person, *, status: int = 200, **extra: object) -> tuple[str, int]:
    ws = chosen_workspace(person)
    now = utcnow()
    state = workspace_status(db(), ws, now) if ws else None
    sessions = sessions_of(db(), current().course.id, person.id)
    files, files_why = readable(ws, settings()) if ws else (False, "")
    pinned = current_pin(ws.ssh_host_keys, ws.ssh_host_keys_instance_id, ws.instance_id) if ws else ()
    host_keys = [key_fingerprint(k) for k in pinned]
    context = dict(person=person, ws=ws, workspaces=student_workspaces(person), status=state, sessions=sessions,
                   now=now, is_live=is_live, files_here=files, files_why=files_why, host_keys=host_keys,
                   can_replay=can_configure(current().level), login=workspace_login(ws.id) if ws else "", cert="",
                   command="", error="", opened=None)  # fmt: skip
    context.update(extra)
    return page("debug/page.html", **context), status


@bp.get("/app/students/<int:person_id>/debug")
@requires(is_staff)
def debug_page(person_id: int) -> tuple[str, int]:
    """Status and logs for all staff; the SSH session form for the head TA and instructors."""
    return _debug_page(student_in_course(person_id))


def _ssh_command(ws: Workspace, mode: str) -> str:
    """How to connect: the local runtime by login; EC2 as the view user (view-only) or the student's OS user."""
    s = settings()
    login = workspace_login(ws.id)
    if s.runtime_ssh_port and s.aws_endpoint_url and not s.is_production:
        return f"ssh -p {s.runtime_ssh_port} -i ~/.ssh/id_ed25519 {login}@127.0.0.1"
    template = load_catalog().get(ws.template_id)
    user = VIEW_USER if mode == "view" else (template.os_user if template else "ubuntu")
    return f"ssh -i ~/.ssh/id_ed25519 {user}@{ws.public_ip or '<instance address>'}"


@bp.post("/app/students/<int:person_id>/debug/ssh")
@requires(is_staff)
def open_ssh(person_id: int) -> tuple[str, int]:
    """Open a debug session: reason required, view-only unless full control with its own reason."""
    person = student_in_course(person_id)
    require_acting("debug.session.start", person)
    ws = chosen_workspace(person)
    if ws is None:
        abort(404)
    f = request.form
    browser = f.get("where") == "browser"  # the browser terminal: a key pair made for the session here
    if browser and not terminal_enabled():
        return _debug_page(person, status=400, error="The browser terminal is not available here; use SSH.")
    private, public = generate_key_pair(f"debug-{workspace_login(ws.id)}") if browser else ("", f.get("public_key", ""))
    try:
        req = parse_request(f.get("reason"), f.get("mode"), f.get("full_reason"), f.get("minutes"))
        cert, ds = open_session(db(), settings=settings(), ws=ws, staff=current().person, public_key=public, req=req)
    except (DebugRefused, SshKeyError) as exc:
        db().rollback()
        return _debug_page(person, status=400, error=str(exc))
    commit()
    if browser:
        ttl = int((ds.expires_at - utcnow()).total_seconds())
        keep_debug_credentials(runtime().redis, ds.id, private, cert, ttl)
        return redirect(url_for("terminal.debug_terminal", session_id=ds.id, t=g.tool_token), code=303)
    return _debug_page(person, cert=cert, command=_ssh_command(ws, ds.mode), opened=ds)


def _session_in_course(session_id: int) -> DebugSession:
    ds = db().get(DebugSession, session_id)
    if ds is None or ds.course_id != current().course.id:
        abort(404)
    return ds


@bp.post("/app/debug-sessions/<int:session_id>/end")
@requires(is_staff)
def end_ssh(session_id: int) -> Response:
    """End a session early: its certificate is revoked and the runtime disconnects it."""
    ds = _session_in_course(session_id)
    person = student_in_course(ds.student_person_id)
    require_acting("debug.session.end", person)
    end_session(db(), ds, actor_person_id=current().person.id, why=f"ended by {current().person.display_name}")
    commit()
    forget_debug_credentials(runtime().redis, ds.id)
    return redirect(url_for("debug.debug_page", person_id=person.id, t=g.tool_token, ws=ds.workspace_id), code=303)


def _recording(session_id: int, recording_id: int) -> tuple[DebugSession, DebugRecording, bytes]:
    ds = _session_in_course(session_id)
    require_acting("debug.recording.replay", student_in_course(ds.student_person_id), can_configure)
    rec = db().scalar(
        select(DebugRecording).where(DebugRecording.id == recording_id, DebugRecording.debug_session_id == ds.id)
    )
    if rec is None:
        abort(404)
    try:
        raw = backend().get_private_object(rec.s3_key)
    except CloudError as exc:
        raise ToolError(f"The recording cannot be read from storage now: {exc}", status=503,
                        title="Recording unavailable") from None  # fmt: skip
    return ds, rec, raw


@bp.get("/app/debug-sessions/<int:session_id>/recordings")
@requires(is_staff)
def recordings(session_id: int) -> str:
    """The session's recordings (one per SSH channel), for the instructors."""
    ds = _session_in_course(session_id)
    person = student_in_course(ds.student_person_id)
    require_acting("debug.recording.replay", person, can_configure)
    rows = db().scalars(
        select(DebugRecording).where(DebugRecording.debug_session_id == ds.id).order_by(DebugRecording.id)
    )
    return page(
        "debug/recordings.html", ds=ds, person=person, staff=db().get(Person, ds.staff_person_id), rows=list(rows)
    )


@bp.get("/app/debug-sessions/<int:session_id>/recordings/<int:recording_id>")
@requires(is_staff)
def replay(session_id: int, recording_id: int) -> str:
    """Replay one recording: the player (vendored asciinema-player) and the plain transcript of what was typed."""
    ds, rec, raw = _recording(session_id, recording_id)
    try:
        cast = parse_cast(raw)
    except ValueError:
        raise ToolError("This recording is damaged and cannot be replayed.", status=422) from None
    person = db().get(Person, ds.student_person_id)
    staff = db().get(Person, ds.staff_person_id)
    shown = ANSI.sub("", cast.shown()).replace("\r", "")
    g.csp_script_extra = " 'wasm-unsafe-eval'"  # the vendored player's terminal is WebAssembly (this page only)
    return page("debug/replay.html", ds=ds, rec=rec, cast=cast, shown=shown, person=person, staff=staff)


@bp.get("/app/debug-sessions/<int:session_id>/recordings/<int:recording_id>/cast")
@requires(is_staff)
def cast_file(session_id: int, recording_id: int) -> Response:
    """The asciicast file itself (the player loads it)."""
    _, _, raw = _recording(session_id, recording_id)
    return Response(raw, mimetype=CAST_TYPE)
