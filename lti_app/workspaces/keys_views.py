"""SSH keys: generate a key pair (private key downloaded once, never stored), upload your own, revoke."""

from __future__ import annotations

from flask import Blueprint, Response, g, make_response, redirect, url_for

from classroom.course_paths import course_slug
from lti_app.auth import current, requires
from lti_app.boundary import parse_form
from lti_app.boundary.forms import KeyUploadForm
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from provisioning.ssh_keys import SshKeyError, active_keys, add_key, generate_key_pair, revoke_key

bp = Blueprint("keys", __name__)


def _index(error: str = "", status: int = 200) -> tuple[str, int]:
    ctx = current()
    return page(
        "workspaces/keys.html",
        keys=active_keys(db(), ctx.person.id),
        error=error,
        key_file=f"cwc_{course_slug(ctx.course.label or ctx.course.title, ctx.course.id)}",
    ), status


@bp.get("/app/keys")
@requires()
def index() -> tuple[str, int]:
    """List my keys, with forms to generate or upload one."""
    return _index()


@bp.post("/app/keys/generate")
@requires()
def generate() -> Response:
    """Create an ed25519 key pair; the private key is sent once as a download and not kept."""
    ctx = current()
    slug = course_slug(ctx.course.label or ctx.course.title, ctx.course.id)
    private, public = generate_key_pair(f"{ctx.person.email or ctx.person.sub} {slug}")
    add_key(db(), person_id=ctx.person.id, course_id=ctx.course.id, public_key=public, source="generated")
    commit()
    response = make_response(private)
    response.headers["Content-Type"] = "application/octet-stream"
    response.headers["Content-Disposition"] = f'attachment; filename="cwc_{slug}"'
    return response


@bp.post("/app/keys/upload")
@requires()
def upload() -> Response | tuple[str, int]:
    """Register a public key the student already has."""
    ctx = current()
    form = parse_form(KeyUploadForm, status=400)
    try:
        add_key(
            db(),
            person_id=ctx.person.id,
            course_id=ctx.course.id,
            public_key=form.public_key,
            source="uploaded",
        )
    except SshKeyError as exc:
        db().rollback()
        return _index(str(exc), 400)
    commit()
    return redirect(url_for("keys.index", t=g.tool_token), code=303)


@bp.post("/app/keys/<int:key_id>/revoke")
@requires()
def revoke(key_id: int) -> Response | tuple[str, int]:
    """Revoke one of my keys; workspaces drop it within a minute."""
    try:
        revoke_key(db(), person_id=current().person.id, key_id=key_id)
    except SshKeyError as exc:
        return _index(str(exc), 404)
    commit()
    return redirect(url_for("keys.index", t=g.tool_token), code=303)
