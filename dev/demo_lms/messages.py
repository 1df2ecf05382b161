"""Build the LTI messages the Demo LMS sends: login hints, id_token claims, deep-linking settings. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer

from dev.demo_lms.models import (
    DemoCourse,
    DemoLink,
    DemoMember,
    DemoTool,
)

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
AGS_SCOPES = (AGS + "lineitem", AGS + "lineitem.readonly", AGS + "result.readonly", AGS + "score")
RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"
MESSAGE_TYPES = (RESOURCE_LINK, DEEP_LINKING)
DUE_VARIABLES = ("$ResourceLink.submission.endDateTime", "$Canvas.assignment.dueAt.iso8601")
HINT_MAX_AGE_S = 12 * 3600


class HintError(ValueError):
    """An lti_message_hint or deep-linking data value that this platform did not issue (or too old)."""


@dataclass(frozen=True)
class Hint:
    """What an lti_message_hint names: the tool, the link (None for deep linking), the message, storage."""

    tool_id: int
    link_id: int | None
    message_type: str
    storage_target: str = ""


def encode_hint(secret: str, hint: Hint) -> str:
    """Sign a hint (opaque to the tool)."""
    return URLSafeTimedSerializer(secret, salt="demo-lms-hint").dumps(
        {"t": hint.tool_id, "l": hint.link_id, "m": hint.message_type, "s": hint.storage_target}
    )


def decode_hint(secret: str, value: str) -> Hint:
    """Verify and read a hint, or raise HintError."""
    try:
        data = URLSafeTimedSerializer(secret, salt="demo-lms-hint").loads(value, max_age=HINT_MAX_AGE_S)
        hint = Hint(int(data["t"]), None if data["l"] is None else int(data["l"]), str(data["m"]), str(data["s"]))
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise HintError("The lti_message_hint was not issued by this Demo LMS or has expired.") from exc
    if hint.message_type not in MESSAGE_TYPES or (hint.message_type == RESOURCE_LINK) == (hint.link_id is None):
        raise HintError("The lti_message_hint is malformed.")
    return hint


def login_url(
    tool: DemoTool, issuer: str, member: DemoMember, hint: str, target_link_uri: str, storage_target: str = "_parent"
) -> str:
    """The tool's OIDC login initiation URL the iframe opens (third-party initiated login)."""
    params = {
        "iss": issuer,
        "login_hint": member.user_id,
        "target_link_uri": target_link_uri,
        "lti_message_hint": hint,
        "client_id": tool.client_id,
        "lti_deployment_id": tool.deployment_id,
    }
    if storage_target:  # Moodle 4.5 sends none (dev.demo_lms.shape)
        params["lti_storage_target"] = storage_target
    sep = "&" if "?" in tool.initiate_login_uri else "?"
    return tool.initiate_login_uri + sep + urlencode(params)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a Z."""
    return value.isoformat().replace("+00:00", "Z")


def resolve_custom(
    custom: dict[str, Any], link: DemoLink | None, member: DemoMember, course: DemoCourse
) -> dict[str, str]:
    """Expand the substitution variables this platform knows; unknown ones pass unexpanded (as the spec says)."""
    known: dict[str, str] = {
        "$User.id": member.user_id,
        "$Person.email.primary": member.email,
        "$Context.id": course.context_id,
        "$CourseSection.label": course.label,
    }
    if link is not None:
        known["$ResourceLink.id"] = link.resource_link_id
        if link.due_at is not None:
            known.update(dict.fromkeys(DUE_VARIABLES, iso(link.due_at)))
    out = {str(k): known.get(str(v), str(v)) for k, v in custom.items()}
    if link is not None and link.due_at is not None:
        out["due_at"] = iso(link.due_at)
    return out


def tool_custom(tool: DemoTool, message_type: str) -> dict[str, Any]:
    """The custom parameters the tool registered for a message type."""
    for message in tool.messages:
        if isinstance(message, dict) and message.get("type") == message_type:
            params = message.get("custom_parameters") or {}
            return dict(params) if isinstance(params, dict) else {}
    return {}


@dataclass(frozen=True)
class LaunchInput:
    """Everything an id_token is made from."""

    issuer: str
    tool: DemoTool
    member: DemoMember
    course: DemoCourse
    message_type: str
    nonce: str
    now: int
    link: DemoLink | None = None
    line_item_url: str | None = None
    deep_link_data: str = ""
    return_url: str = ""
    roles: list[str] | None = None  # the roles claim when the LMS shape sends other roles than the member's


def _services(data: LaunchInput) -> dict[str, Any]:
    base = f"{data.issuer}/api/contexts/{data.course.context_id}"
    claims: dict[str, Any] = {}
    if NRPS_SCOPE in data.tool.scopes:
        claims[NRPS_CLAIM] = {"context_memberships_url": base + "/memberships", "service_versions": ["2.0"]}
    scopes = [s for s in AGS_SCOPES if s in data.tool.scopes]
    if scopes:
        ags: dict[str, Any] = {"scope": scopes, "lineitems": base + "/lineitems"}
        if data.line_item_url:
            ags["lineitem"] = data.line_item_url
        claims[AGS_CLAIM] = ags
    return claims


def launch_claims(data: LaunchInput) -> dict[str, Any]:
    """The id_token body for a resource link or deep-linking launch."""
    m, tool, course = data.member, data.tool, data.course
    custom = {**tool_custom(tool, data.message_type), **(data.link.custom if data.link else {})}
    claims: dict[str, Any] = {
        "iss": data.issuer,
        "aud": tool.client_id,
        "azp": tool.client_id,
        "sub": m.user_id,
        "exp": data.now + 3600,
        "iat": data.now,
        "nbf": data.now,
        "nonce": data.nonce,
        "name": m.name,
        "given_name": m.given_name,
        "family_name": m.family_name,
        "email": m.email,
        LTI + "message_type": data.message_type,
        LTI + "version": "1.3.0",
        LTI + "deployment_id": tool.deployment_id,
        LTI + "roles": list(m.roles) if data.roles is None else data.roles,
        LTI + "context": {
            "id": course.context_id,
            "label": course.label,
            "title": course.title,
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
        },
        LTI + "tool_platform": {
            "guid": "demo-lms-" + data.issuer.split("//", 1)[-1],
            "name": "Demo LMS",
            "product_family_code": "demo",
            "version": "1.0",
        },
        LTI + "custom": resolve_custom(custom, data.link, m, course),
        LTI + "launch_presentation": {
            "document_target": "iframe",
            "locale": "en-US",
            "height": 700,
            "return_url": data.return_url,
        },
        **_services(data),
    }
    if data.message_type == DEEP_LINKING:
        claims[LTI + "target_link_uri"] = tool.target_link_uri
        claims[DL + "deep_linking_settings"] = {
            "deep_link_return_url": data.issuer + "/deep-link-return",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": False,
            "auto_create": True,
            "title": "Cloud Workstation assignment",
            "data": data.deep_link_data,
        }
    else:
        assert data.link is not None
        claims[LTI + "target_link_uri"] = data.link.url or tool.target_link_uri
        claims[LTI + "resource_link"] = {"id": data.link.resource_link_id, "title": data.link.title}
    return claims


def encode_dl_data(secret: str, course_id: int, user_id: str, tool_id: int) -> str:
    """The opaque deep_linking_settings.data: which course, persona and tool asked."""
    return URLSafeTimedSerializer(secret, salt="demo-lms-dl-data").dumps({"c": course_id, "u": user_id, "t": tool_id})


def decode_dl_data(secret: str, value: Any) -> tuple[int, str, int]:
    """Verify the data the tool echoed back and return (course_id, user_id, tool_id), or raise HintError."""
    try:
        data = URLSafeTimedSerializer(secret, salt="demo-lms-dl-data").loads(str(value), max_age=3600)
        return int(data["c"]), str(data["u"]), int(data["t"])
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise HintError("The deep-linking response does not carry this Demo LMS's data, or it is too old.") from exc
