"""Deep linking: the instructor picks a template and an assignment; we return a signed LtiResourceLink."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from classroom.audit import append_event
from classroom.budget.date_warnings import due_date_warning
from classroom.claims import DL, LTI
from classroom.db import utcnow
from classroom.deep_link_form import AssignmentChoice, parse_assignment_form
from classroom.models import Platform
from classroom.roles import can_configure
from config.catalog import load_catalog
from lti_app.auth import current, requires
from lti_app.boundary import parse_form
from lti_app.boundary.forms import DeepLinkForm
from lti_app.lti.launch import RedisLaunchDataStorage
from lti_app.lti.services import signing_key
from lti_app.lti.tool_conf import registration_for
from lti_app.runtime import commit, db, runtime, settings

bp = Blueprint("deep_link", __name__)


class AssignmentLink(DeepLinkResource):
    """An LtiResourceLink that can also carry `submission.endDateTime` (pylti1p3 omits it)."""

    def __init__(self, end: str | None = None) -> None:
        self._end = end

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        if self._end:
            data["submission"] = {"endDateTime": self._end}
        return data


def _launch_body() -> dict[str, Any]:
    storage = RedisLaunchDataStorage(runtime().redis)
    body = storage.get_value(current().claims.launch_id)
    if not body or body.get(LTI + "message_type") != "LtiDeepLinkingRequest":
        abort(400, "This page needs a deep-linking launch: use 'Add assignment' in your course.")
    return body  # type: ignore[no-any-return]


def build_content_item(choice: AssignmentChoice) -> AssignmentLink:
    """The content item: template and due date as custom parameters, a line item when graded."""
    end = choice.due_at.isoformat().replace("+00:00", "Z") if choice.due_at else None
    custom = {
        "template": choice.template_id,
        "assignment_title": choice.title,
        "due_at": "$Canvas.assignment.dueAt.iso8601",
        "resource_end_at": "$ResourceLink.submission.endDateTime",
    }
    if end:
        custom["tool_due_at"] = end
    item = AssignmentLink(end).set_title(choice.title).set_url(settings().url("/lti/launch")).set_custom_params(custom)
    if choice.points is not None:
        item.set_lineitem(
            LineItem()
            .set_label(choice.title)
            .set_score_maximum(float(choice.points))
            .set_resource_id(choice.template_id)
            .set_tag("cloud-workstation")
        )
    return item


def _time_zones() -> tuple[str, ...]:
    from lti_app.setup_views import TIME_ZONES

    return TIME_ZONES


def _course_zone_unset(course_id: int) -> bool:
    """Before the set-up wizard the course has no chosen time zone (it reads UTC): the form asks for one."""
    from classroom.models import CoursePolicy

    return db().get(CoursePolicy, course_id) is None


def _set_course_zone(course: Any, zone: str) -> None:
    """Keep the zone the instructor meant: the wizard starts from it, and due dates read the same in it."""
    append_event(
        db(),
        "course.time_zone_set",
        actor_person_id=current().person.id,
        course_id=course.id,
        details={"from": course.time_zone, "to": zone, "source": "deep_link"},
    )
    course.time_zone = zone


def _form(errors: dict[str, str] | None = None, values: dict[str, str] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    from classroom.models import CoursePolicy
    from lti_app.pages.views import page

    catalog = load_catalog()
    policy = db().get(CoursePolicy, current().course.id)
    return page(
        "lti/deep_link.html",
        ask_zone=policy is None,
        time_zones=_time_zones(),
        templates=catalog.templates,
        default=policy.default_template if policy else catalog.default,
        access=dict(policy.templates) if policy else {},
        errors=errors or {},
        values=values or {},
    ), status


@bp.get("/lti/deep-link")
@requires(can_configure)
def picker():  # type: ignore[no-untyped-def]
    """Show the assignment form."""
    _launch_body()
    return _form()


@bp.post("/lti/deep-link")
@requires(can_configure)
def respond():  # type: ignore[no-untyped-def]
    """Validate the form and return the signed deep-linking response to the LMS."""
    body = _launch_body()
    form = parse_form(DeepLinkForm, status=400)
    values = form.values()
    course = current().course
    unset_zone = _course_zone_unset(course.id)
    choice, errors = parse_assignment_form(
        values, load_catalog(), course.time_zone, ask_zone_from=_time_zones() if unset_zone else None
    )
    if choice is None:
        return _form(errors, values, 400)
    late = due_date_warning(choice.due_at, utcnow()) if choice.due_at else ""
    if late and not form.confirm_past:  # nothing is sent to the LMS until confirmed
        return _form({"due_at": late + " Tick “Yes, add it with this due date” to add it anyway."}, values, 400)
    if unset_zone and course.time_zone != choice.time_zone:
        _set_course_zone(course, choice.time_zone)
    platform = db().get(Platform, current().course.platform_id)
    assert platform is not None
    registration = registration_for(platform, signing_key())
    link = DeepLink(registration, body[LTI + "deployment_id"], body[DL + "deep_linking_settings"])
    jwt_value = link.get_response_jwt([build_content_item(choice)])
    append_event(
        db(),
        "deep_link.created",
        actor_person_id=current().person.id,
        course_id=current().course.id,
        subject=choice.title,
        details={
            "template": choice.template_id,
            "due_at": choice.due_at.isoformat() if choice.due_at else None,
            "points": str(choice.points) if choice.points else None,
        },
    )
    commit()
    return render_template(
        "lti/deep_link_return.html",
        return_url=body[DL + "deep_linking_settings"]["deep_link_return_url"],
        jwt=jwt_value,
    )
