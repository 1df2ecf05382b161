"""Installing the tool: LTI Dynamic Registration (tool side) and the Canvas developer-key JSON."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import requests
from pylti1p3.dynamic_registration import DynamicRegistration
from pylti1p3.exception import LtiException

from classroom.services.platforms import PlatformError, PlatformInput
from config.settings import Settings

SCOPES = [
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
PLATFORM_CONF = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"
DUE_DATE_CUSTOM = {
    "due_at": "$Canvas.assignment.dueAt.iso8601",
    "resource_end_at": "$ResourceLink.submission.endDateTime",
}
# Next term (classroom.services.next_term): the context ids a course copy came from, most recent first.
LAUNCH_CUSTOM = {**DUE_DATE_CUSTOM, "context_history": "$Context.id.history"}


class RegistrationFailed(Exception):
    """Dynamic Registration could not complete; the message is shown to the LMS administrator."""


class ToolDynamicRegistration(DynamicRegistration):
    """pylti1p3's registration flow with our URLs, and the platform configuration fetched once, checked."""

    client_name = "Cloud Workstation Classroom"
    description = "Cloud workspaces for your class with hard per-student budgets, inside your LMS."

    def __init__(
        self,
        settings: Settings,
        openid_configuration_url: str,
        registration_token: str | None,
        http: requests.Session | None = None,
    ) -> None:
        self.settings, self.config_url, self.token = settings, openid_configuration_url, registration_token
        self.http = http or requests.Session()
        self._config: dict[str, Any] | None = None

    def get_request_session(self) -> requests.Session:
        return self.http

    def get_initiate_login_uri(self) -> str:
        return self.settings.url("/lti/login")

    def get_jwks_uri(self) -> str:
        return self.settings.url("/.well-known/jwks.json")

    def get_redirect_uris(self) -> list[str]:
        return [self.settings.url("/lti/launch")]

    def get_target_link_uri(self) -> str:
        return self.settings.url("/lti/launch")

    def get_domain(self) -> str:
        return self.settings.base_host

    def get_scopes(self) -> list[str]:
        return SCOPES

    def get_claims(self) -> list[str]:
        return ["iss", "sub", "name", "given_name", "family_name", "email"]

    def get_logo_uri(self) -> str:
        return self.settings.url("/static/logo.svg")

    def get_messages(self) -> list[dict[str, Any]]:
        launch = self.settings.url("/lti/launch")
        return [
            {
                "type": "LtiResourceLinkRequest",
                "target_link_uri": launch,
                "label": "Cloud Workstation",
                "placements": ["course_navigation"],
                "custom_parameters": LAUNCH_CUSTOM,
            },
            {
                "type": "LtiDeepLinkingRequest",
                "target_link_uri": launch,
                "label": "Cloud Workstation assignment",
                "placements": ["link_selection", "assignment_selection", "ContentArea"],
            },
        ]

    def lti_registration_data(self) -> dict[str, Any]:
        """pylti1p3's registration plus tool-level `custom_parameters`: Moodle reads custom parameters only there
        (it ignores those inside `messages[]`, and the placements); Canvas reads the per-message ones. An LMS that
        does not know a substitution variable sends it back as written, which the due-date reader ignores."""
        data: dict[str, Any] = super().lti_registration_data()
        data[TOOL_CONF]["custom_parameters"] = dict(LAUNCH_CUSTOM)
        return data

    def get_openid_configuration_endpoint(self) -> str:
        return self.config_url

    def get_registration_token(self) -> str:
        return self.token  # type: ignore[return-value]

    def get_openid_configuration(self) -> dict[str, Any]:
        """Fetch the platform's configuration once and check it names an issuer on the same host."""
        if self._config is None:
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = "Bearer " + self.token
            try:
                resp = self.http.get(self.config_url, headers=headers, timeout=10)
                resp.raise_for_status()
                config = resp.json()
            except (requests.RequestException, ValueError) as exc:
                raise RegistrationFailed(f"Could not read the LMS configuration at {self.config_url}.") from exc
            check_platform_configuration(config, self.config_url)
            self._config = config
        return self._config

    def complete_registration(
        self, openid_configuration: dict[str, Any], openid_registration: dict[str, Any]
    ) -> tuple[PlatformInput, str | None]:
        """Turn the platform's answer into what we store (the caller stores it)."""
        return platform_input(openid_configuration, openid_registration), (
            openid_registration.get(TOOL_CONF) or {}
        ).get("deployment_id")

    def run(self) -> tuple[PlatformInput, str | None]:
        """Fetch, POST our registration, and return the platform to store and its deployment id."""
        try:
            return self.register()  # type: ignore[no-any-return]
        except (LtiException, AssertionError, requests.RequestException, KeyError) as exc:
            raise RegistrationFailed(f"The LMS did not accept the registration: {exc}") from exc


def check_platform_configuration(config: Any, config_url: str) -> None:
    """The issuer must be on the configuration URL's host, and the LTI endpoints must be present."""
    if not isinstance(config, dict):
        raise RegistrationFailed("The LMS configuration is not a JSON object.")
    issuer = str(config.get("issuer", ""))
    if urlparse(issuer).netloc.lower() != urlparse(config_url).netloc.lower():
        raise RegistrationFailed("The LMS configuration's issuer is not on the host it was served from.")
    missing = [
        k
        for k in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint", PLATFORM_CONF)
        if not config.get(k)
    ]
    if missing:
        raise RegistrationFailed(f"The LMS configuration lacks {', '.join(missing)}.")


def platform_input(config: dict[str, Any], registration: dict[str, Any]) -> PlatformInput:
    """What we store for a platform that registered us."""
    product = str((config.get(PLATFORM_CONF) or {}).get("product_family_code", ""))
    client_id = str(registration.get("client_id") or "")
    if not client_id:
        raise RegistrationFailed("The LMS did not return a client_id.")
    return PlatformInput(
        issuer=str(config["issuer"]),
        client_id=client_id,
        name=product or urlparse(str(config["issuer"])).netloc,
        product=product,
        auth_login_url=str(config["authorization_endpoint"]),
        auth_token_url=str(config["token_endpoint"]),
        key_set_url=str(config["jwks_uri"]),
        auth_audience=str(config["authorization_server"]) if config.get("authorization_server") else None,
    )


def canvas_developer_key(settings: Settings) -> dict[str, Any]:
    """The JSON an admin pastes (or links) when creating a Canvas LTI developer key."""
    launch = settings.url("/lti/launch")
    placement = {
        "enabled": True,
        "message_type": "LtiResourceLinkRequest",
        "target_link_uri": launch,
        "text": "Cloud Workstation",
    }
    deep = {
        "enabled": True,
        "message_type": "LtiDeepLinkingRequest",
        "target_link_uri": launch,
        "text": "Cloud Workstation assignment",
    }
    return {
        "title": "Cloud Workstation Classroom",
        "description": ToolDynamicRegistration.description,
        "oidc_initiation_url": settings.url("/lti/login"),
        "target_link_uri": launch,
        "public_jwk_url": settings.url("/.well-known/jwks.json"),
        "scopes": SCOPES,
        "extensions": [
            {
                "platform": "canvas.instructure.com",
                "privacy_level": "public",
                "domain": settings.base_host,
                "settings": {
                    "placements": [
                        {"placement": "course_navigation", **placement, "default": "enabled"},
                        {"placement": "link_selection", **deep},
                        {"placement": "assignment_selection", **deep},
                    ]
                },
            }
        ],
        "custom_fields": {
            **LAUNCH_CUSTOM,
            "canvas_course_id": "$Canvas.course.id",
            "canvas_assignment_id": "$Canvas.assignment.id",
        },
    }


__all__ = ["PlatformError", "RegistrationFailed", "ToolDynamicRegistration", "canvas_developer_key"]
