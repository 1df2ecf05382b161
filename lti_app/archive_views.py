"""Staff's archives page: every student's archived homes (where, size, SHA-256, until when); instructors and the
head TA may download one (a short presigned link, audited); TAs see the list read-only; students are refused."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError
from flask import Blueprint, Response, redirect

from classroom.db import utcnow
from classroom.models import CoursePolicy
from classroom.roles import can_act, is_staff
from lti_app.auth import current, requires
from lti_app.errors import ToolError
from lti_app.pages.views import page
from lti_app.runtime import commit, db
from lti_app.workspaces.glue import backend
from provisioning.archive_retention import DOWNLOAD_URL_S, archive_of, archives_by_student, record_download

bp = Blueprint("archives", __name__)


@bp.get("/app/archives")
@requires(is_staff)
def index() -> str:
    """The course's archives, per student."""
    ctx = current()
    policy = db().get(CoursePolicy, ctx.course.id)
    return page(
        "pages/archives.html",
        groups=archives_by_student(db(), ctx.course.id),
        retention_days=policy.archive_retention_days if policy else 365,
        now=utcnow(),
    )


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
