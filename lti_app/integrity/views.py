"""Integrity pages for the instructor and head TA (read-only TAs and students are refused); every view of
evidence, every report and every run is an audit event. The course always comes from the launch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, abort, request
from sqlalchemy import select

from classroom.audit import append_event
from classroom.integrity import settings as integrity_settings
from classroom.integrity.evidence import describe_transfer
from classroom.integrity.render import csv_text, pdf_bytes, when
from classroom.integrity.services import ReportError, build_report, students_of
from classroom.integrity.snapshots import assignments_of, read_sources, snapshots_of
from classroom.jobs.queue import enqueue
from classroom.models import SimilarityRun
from classroom.roles import can_act, can_configure
from lti_app.auth import current, requires
from lti_app.pages.views import page
from lti_app.runtime import after_commit, commit, db, runtime
from lti_app.workspaces.glue import backend
from provisioning.aws_evidence import store_for
from provisioning.backend import CloudError

bp = Blueprint("integrity", __name__)
MAX_STARTER_BYTES = 512 * 1024


def _audit(action: str, **details: object) -> None:
    ctx = current()
    append_event(db(), action, actor_person_id=ctx.person.id, course_id=ctx.course.id, subject=action, details=details)


def _day(value: str, default: datetime) -> datetime:
    if not value:
        return default
    try:
        return (
            datetime.fromisoformat(value).replace(tzinfo=UTC)
            if "T" in value or len(value) > 10
            else datetime.fromisoformat(value + "T00:00:00").replace(tzinfo=UTC)
        )
    except ValueError:
        abort(400, description=f"{value!r} is not a date such as 2024-10-15.")


@bp.get("/app/integrity")
@requires(can_act)
def index() -> tuple[str, int]:
    """Assignments, the report form, similarity runs and (for instructors) the course's integrity settings."""
    ctx = current()
    runs = (
        db()
        .scalars(
            select(SimilarityRun)
            .where(SimilarityRun.course_id == ctx.course.id)
            .order_by(SimilarityRun.id.desc())
            .limit(20)
        )
        .all()
    )
    return page(
        "integrity/index.html",
        assignments=assignments_of(db(), ctx.course.id),
        students=students_of(db(), ctx.course.id),
        runs=runs,
        cfg=integrity_settings.load(db(), ctx.course.id),
        errors={},
    ), 200


@bp.post("/app/integrity/settings")
@requires(can_configure)
def save_settings() -> tuple[str, int]:
    """Save campus ranges, command recording, snapshot path and threshold (audited)."""
    ctx = current()
    values, errors = integrity_settings.parse_form(request.form.to_dict())
    if values is None:
        return page(
            "integrity/index.html",
            assignments=assignments_of(db(), ctx.course.id),
            students=students_of(db(), ctx.course.id),
            runs=[],
            cfg=integrity_settings.load(db(), ctx.course.id),
            errors=errors,
        ), 400
    integrity_settings.save(db(), ctx.course.id, values)
    _audit(
        "integrity.settings_saved",
        campus_ranges=list(values.campus_ranges),
        record_commands=values.record_commands,
        snapshot_path=values.snapshot_path,
        similarity_threshold=values.similarity_threshold,
    )
    commit()
    return index()


@bp.get("/app/integrity/report")
@requires(can_act)
def report() -> Response | tuple[str, int]:
    """The report as a page, PDF or CSV (audited, with the students and time frame)."""
    ctx = current()
    link_key = request.args.get("assignment", "")
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "pdf", "csv"):
        abort(400, description="format is html, pdf or csv.")
    try:
        people = [int(x) for x in request.args.getlist("student") if x]
    except ValueError:
        abort(400, description="Choose students from the list.")
    due = next((a[3] for a in assignments_of(db(), ctx.course.id) if a[0] == link_key), None)
    around = due or datetime.now(UTC)  # empty dates: the 30 days before the due time to 7 days after it
    start = _day(request.args.get("start", ""), around - timedelta(days=30))
    end = _day(request.args.get("end", ""), around + timedelta(days=7))
    if request.args.get("end") and len(request.args["end"]) <= 10:
        end += timedelta(days=1)  # a day includes its whole date
    try:
        rep = build_report(db(), ctx.course.id, link_key, people, start, end)
    except ReportError as exc:
        abort(400, description=str(exc))
    _audit(
        "integrity.report_viewed",
        assignment=link_key,
        students=[s.person.id for s in rep.students],
        start=start.isoformat(),
        end=end.isoformat(),
        format=fmt,
        cited=len(rep.cited),
    )
    commit()
    name = f"{rep.title or 'assignment'}-integrity-report".replace(" ", "-").replace("/", "-")[:80]
    if fmt == "pdf":
        return Response(
            pdf_bytes(rep),
            mimetype="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )
    if fmt == "csv":
        return Response(
            csv_text(rep), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
        )
    zone = rep.course.time_zone or "UTC"
    return page(
        "integrity/report.html",
        rep=rep,
        query=request.query_string.decode(),
        zone=zone,
        when=lambda at: when(at, zone),
        describe=describe_transfer,
    ), 200


@bp.post("/app/integrity/similarity")
@requires(can_act)
def start_similarity() -> tuple[str, int]:
    """Queue a similarity run over the assignment's deadline snapshots, starter code excluded (audited)."""
    ctx = current()
    link_key = request.form.get("assignment", "")
    if link_key not in {a[0] for a in assignments_of(db(), ctx.course.id)}:
        abort(400, description="No such assignment in this course.")
    starter: dict[str, str] = {}
    size = 0
    for f in request.files.getlist("starter"):
        if not f.filename:
            continue
        data = f.read(MAX_STARTER_BYTES + 1)
        size += len(data)
        if size > MAX_STARTER_BYTES:
            abort(400, description="Starter code is at most 512 KB in total.")
        starter[f.filename.rsplit("/", 1)[-1]] = data.decode("utf-8", "replace")
    cfg = integrity_settings.load(db(), ctx.course.id)
    run = SimilarityRun(
        course_id=ctx.course.id,
        link_key=link_key,
        threshold=cfg.similarity_threshold,
        starter=starter,
        requested_by=ctx.person.id,
    )
    db().add(run)
    db().flush()
    _audit("integrity.similarity_started", assignment=link_key, run=run.id, starter_files=sorted(starter))
    run_id = run.id
    after_commit(
        lambda: enqueue(
            runtime().redis, "provisioning.integrity_jobs.run_similarity", run_id, job_id=f"similarity-{run_id}"
        )
    )
    commit()
    return show_run_page(run_id)


def show_run_page(run_id: int) -> tuple[str, int]:
    """A run's progress, then its pairs (refreshes itself while it runs)."""
    ctx = current()
    run = db().get(SimilarityRun, run_id)
    if run is None or run.course_id != ctx.course.id:
        abort(404)
    names = {str(p.id): p.display_name for p in students_of(db(), ctx.course.id)}
    return page("integrity/run.html", run=run, names=names), 200


@bp.get("/app/integrity/similarity/<int:run_id>")
@requires(can_act)
def show_run(run_id: int) -> tuple[str, int]:
    """Progress and pairs of one run (viewing the pairs is audited once it is done)."""
    out = show_run_page(run_id)
    run = db().get(SimilarityRun, run_id)
    if run is not None and run.status == "done":
        _audit("integrity.similarity_viewed", run=run_id)
        commit()
    return out


@bp.get("/app/integrity/similarity/<int:run_id>/pair")
@requires(can_act)
def pair(run_id: int) -> tuple[str, int]:
    """Two students' same-named files side by side, matching regions highlighted (audited)."""
    ctx = current()
    run = db().get(SimilarityRun, run_id)
    if run is None or run.course_id != ctx.course.id or run.status != "done":
        abort(404)
    a, b = request.args.get("a", ""), request.args.get("b", "")
    found = next((p for p in run.pairs if {p["a"], p["b"]} == {a, b}), None)
    if found is None:
        abort(404)
    shots = {str(s.person_id): s for s in snapshots_of(db(), ctx.course.id, run.link_key)}
    if a not in shots or b not in shots:
        abort(404, description="These students' deadline snapshots are no longer kept.")
    store = store_for(backend())
    try:
        files_a = read_sources(store.get(shots[a].s3_key or ""), shots[a].folder)
        files_b = read_sources(store.get(shots[b].s3_key or ""), shots[b].folder)
    except CloudError:
        abort(503, description="The archive bucket did not answer; try again in a minute.")
    from classroom.integrity.similarity import side_by_side  # copydetect, numpy, matplotlib: loaded by this view

    views = [
        (n, *side_by_side(n, files_a[n], files_b[n], run.starter))
        for n in found["files"]
        if n in files_a and n in files_b
    ]
    _audit("integrity.pair_viewed", run=run_id, students=[int(a), int(b)])
    commit()
    names = {str(p.id): p.display_name for p in students_of(db(), ctx.course.id)}
    return page("integrity/pair.html", run=run, pair=found, views=views, names=names, a=a, b=b), 200
