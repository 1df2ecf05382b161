"""Staff's archives page: every student's archived homes (where, size, SHA-256, until when); instructors and the
head TA may download one (a short presigned link, audited) and act on a disk kept without an archive (retry the
archive, or delete the disk without one; reason and typed confirmation, audited); TAs see the page read-only;
students are refused."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError
from flask import Blueprint, Response, g, redirect, url_for
from pydantic import Field

from classroom.db import utcnow
from classroom.models import CoursePolicy
from classroom.roles import can_act, is_staff
from lti_app.auth import current, requires
from lti_app.boundary import FormModel, parse_form
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import backend, release_after_commit
from provisioning.archive_retention import DOWNLOAD_URL_S, archive_of, archives_by_student, record_download
from provisioning.archive_staff import (
    REASON_MAX,
    KeptDiskError,
    already_done,
    delete_without_archive,
    kept_disks,
    lock_kept,
    retry_archive,
)

bp = Blueprint("archives", __name__)


class KeptDiskForm(FormModel):
    """A staff action on a kept disk: the reason (audited) and, to delete, the typed confirmation."""

    reason: str = Field(default="", max_length=REASON_MAX + 100)
    confirm: str = Field(default="", max_length=64)


def _page(status: int = 200, **extra: object) -> tuple[str, int]:
    ctx = current()
    policy = db().get(CoursePolicy, ctx.course.id)
    html = page(
        "pages/archives.html",
        groups=archives_by_student(db(), ctx.course.id),
        kept=kept_disks(db(), ctx.course.id),
        retention_days=policy.archive_retention_days if policy else 365,
        now=utcnow(),
        **extra,
    )
    return html, status


@bp.get("/app/archives")
@requires(is_staff)
def index() -> tuple[str, int]:
    """The course's archives, per student, and the disks kept without one."""
    return _page()


def _act_on_kept(workspace_id: int, action: str) -> Response | tuple[str, int]:
    ctx = current()
    form = parse_form(KeptDiskForm)
    ws = lock_kept(db(), ctx.course.id, workspace_id)
    if ws is None and already_done(db(), ctx.course.id, workspace_id, action):  # a second click: done once
        db().rollback()
        return redirect(url_for("archives.index", t=g.tool_token), code=303)  # type: ignore[return-value]
    if ws is None:
        db().rollback()
        raise ToolError("There is no disk kept without an archive with that number in this course.", status=404,
                        title="Workspace not found")  # fmt: skip
    try:
        if action == "retry":
            todo = retry_archive(db(), ws, actor_person_id=ctx.person.id, reason=form.reason)
        else:
            todo = delete_without_archive(db(), ws, actor_person_id=ctx.person.id, reason=form.reason,
                                          typed=form.confirm, now=utcnow())  # fmt: skip
    except KeptDiskError as exc:
        db().rollback()
        return _page(422, error=str(exc), error_for=workspace_id)
    release_after_commit(todo)
    commit()
    return redirect(url_for("archives.index", t=g.tool_token), code=303)  # type: ignore[return-value]


@bp.post("/app/archives/kept/<int:workspace_id>/retry")
@requires(can_act)
def retry_kept(workspace_id: int) -> Response | tuple[str, int]:
    """Try the archive of a kept disk again (reason required, audited); the retire flow does it."""
    return _act_on_kept(workspace_id, "retry")


@bp.post("/app/archives/kept/<int:workspace_id>/delete")
@requires(can_act)
def delete_kept(workspace_id: int) -> Response | tuple[str, int]:
    """Delete a kept disk without its archive (reason and typed confirmation, audited); the retire flow ends it."""
    return _act_on_kept(workspace_id, "delete")


@bp.post("/app/archives/<int:archive_id>/download")
@requires(can_act)
def download(archive_id: int) -> Response:
    """Audit the download, then send the browser to a 5-minute presigned link; 404 for another course's."""
    ctx = current()
    archive = archive_of(db(), ctx.course.id, archive_id)
    if archive is None or archive.purged_at is not None:
        raise ToolError("There is no such archive in this course (it may have expired).", status=404,
                        title="Archive not found")  # fmt: skip
    try:
        url = backend().archive_download_url(archive.s3_key, DOWNLOAD_URL_S)
    except BotoCoreError as exc:
        raise ToolError("The archive's link cannot be made now; try again later.", status=503,
                        title="Storage unavailable") from exc  # fmt: skip
    record_download(db(), archive, ctx.person.id)
    commit()
    return redirect(url, code=303)  # type: ignore[return-value]
