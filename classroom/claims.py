"""Read what the tool needs out of a validated id_token body. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from classroom.text import control_chars, remove_controls, strip_controls

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"

RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"


class ClaimError(ValueError):
    """A claim the tool needs is missing or malformed."""


ID_MAX = 255  # sub, context id, deployment id and resource link id columns


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _name(value: Any, limit: int) -> str:
    """A display value from the LMS: control characters (NUL…) removed, never a reason to refuse a launch."""
    return strip_controls(_str(value))[:limit]


def _check_ids(**ids: str) -> None:
    """Identifiers are compared, stored and sent back: one with a control character or too long is refused."""
    for claim, value in ids.items():
        if control_chars(value):
            raise ClaimError(
                f"The LMS sent a {claim} containing a control character, which the tool cannot store. "
                "Ask your LMS administrator to check this course's LTI settings."
            )
        if len(value) > ID_MAX:
            raise ClaimError(f"The LMS sent a {claim} longer than {ID_MAX} characters, which the tool cannot store.")


@dataclass(frozen=True)
class LaunchClaims:
    """The parts of a launch the tool acts on."""

    message_type: str
    deployment_id: str
    sub: str
    roles: tuple[str, ...]
    context_id: str
    context_label: str = ""
    context_title: str = ""
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    email: str = ""
    resource_link_id: str = ""
    resource_link_title: str = ""
    target_link_uri: str = ""
    custom: Mapping[str, str] = field(default_factory=dict)
    nrps_url: str = ""
    ags: Mapping[str, Any] = field(default_factory=dict)
    deep_linking: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_deep_linking(self) -> bool:
        return self.message_type == DEEP_LINKING


def parse_claims(body: Mapping[str, Any]) -> LaunchClaims:
    """Build LaunchClaims from an id_token body that pylti1p3 has validated."""
    context = body.get(LTI + "context") or {}
    if not isinstance(context, Mapping) or not _str(context.get("id")):
        raise ClaimError("This link was launched outside a course (no context claim); open it from a course.")
    sub = _str(body.get("sub"))
    if not sub:
        raise ClaimError("The launch did not identify the user (no sub claim); anonymous launches are not supported.")
    roles = body.get(LTI + "roles") or []
    link = body.get(LTI + "resource_link") or {}
    custom = body.get(LTI + "custom") or {}
    nrps = body.get(NRPS) or {}
    claims = LaunchClaims(
        message_type=_str(body.get(LTI + "message_type")),
        deployment_id=_str(body.get(LTI + "deployment_id")),
        sub=sub,
        roles=tuple(r for r in roles if isinstance(r, str)),
        context_id=_str(context.get("id")),
        context_label=_name(context.get("label"), 255),
        context_title=_name(context.get("title"), 512),
        name=_name(body.get("name"), 255),
        given_name=_name(body.get("given_name"), 255),
        family_name=_name(body.get("family_name"), 255),
        email=_name(body.get("email"), 320),
        resource_link_id=_str(link.get("id")) if isinstance(link, Mapping) else "",
        resource_link_title=_name(link.get("title"), 512) if isinstance(link, Mapping) else "",
        target_link_uri=_str(body.get(LTI + "target_link_uri")),
        custom={remove_controls(str(k)): remove_controls(str(v)) for k, v in custom.items()}
        if isinstance(custom, Mapping)
        else {},
        nrps_url=_str(nrps.get("context_memberships_url")) if isinstance(nrps, Mapping) else "",
        ags=dict(body.get(AGS) or {}),
        deep_linking=dict(body.get(DL + "deep_linking_settings") or {}),
    )
    _check_ids(
        sub=claims.sub,
        context_id=claims.context_id,
        deployment_id=claims.deployment_id,
        resource_link_id=claims.resource_link_id,
    )
    return claims
