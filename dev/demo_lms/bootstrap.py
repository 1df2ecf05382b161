"""Installing the tool into the Demo LMS through the tool's real Dynamic Registration endpoint."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlencode

import requests
from sqlalchemy import select

from classroom.db import make_engine, make_session_factory, session_scope
from config.settings import Settings
from dev.demo_lms.models import DemoRegistrationToken, DemoTool
from dev.demo_lms.origins import demo_url, issuer, openid_configuration_url
from dev.demo_lms.tools import issue_registration_token, token_hash

REGISTRATION_URL_ENV = "CWC_DEMO_REGISTRATION_URL"


class AutoRegisterFailed(RuntimeError):
    """The tool did not complete the registration; the message says what it answered."""


class HttpGet(Protocol):
    """Anything with requests' `get` (the module, a Session, a test double)."""

    def get(self, url: str, **kwargs: Any) -> Any: ...


def install_url(settings: Settings) -> str:
    """The Demo LMS admin page ("Install Cloud Workstation"), on the demo host name."""
    return demo_url(settings, "/admin")


def registration_launch_url(registration_url: str, settings: Settings, token: str) -> str:
    """The tool's registration URL plus openid_configuration and registration_token (LTI DR, step 1)."""
    sep = "&" if "?" in registration_url else "?"
    return (
        registration_url
        + sep
        + urlencode({"openid_configuration": openid_configuration_url(settings), "registration_token": token})
    )


def auto_register(settings: Settings, registration_url: str, http: HttpGet = requests) -> dict[str, Any]:
    """Register the tool server-to-server (the Demo LMS must already be serving) and describe the result."""
    if not settings.database_url:
        raise AutoRegisterFailed("DATABASE_URL is needed to issue a registration token.")
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            token = issue_registration_token(session)
        resp = http.get(registration_launch_url(registration_url, settings, token), timeout=60)
        if resp.status_code != 200:
            raise AutoRegisterFailed(
                f"The tool answered {resp.status_code} to the registration: {str(resp.text)[:300]}"
            )
        with session_scope(factory) as session:
            tool = session.scalar(
                select(DemoTool)
                .join(DemoRegistrationToken, DemoRegistrationToken.tool_id == DemoTool.id)
                .where(DemoRegistrationToken.token_hash == token_hash(token))
            )
            if tool is None:
                raise AutoRegisterFailed("The tool answered 200 but never registered with the Demo LMS.")
            return {
                "issuer": issuer(settings),
                "client_id": tool.client_id,
                "deployment_id": tool.deployment_id,
                "tool_name": tool.client_name,
                "course_url": demo_url(settings, "/course"),
            }
    finally:
        engine.dispose()
