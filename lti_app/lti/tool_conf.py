"""pylti1p3 tool configuration read from the database (many platforms, many client ids per issuer)."""

from __future__ import annotations

from typing import Any

from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy.orm import Session

from classroom.models import Deployment, DeploymentStatus, Platform
from classroom.services.keys import SigningKey
from classroom.services.platforms import find_platform


class ToolRegistration(Registration):
    """A pylti1p3 Registration that signs with the tool's current key and names its kid."""

    def __init__(self, platform: Platform, key: SigningKey) -> None:
        self.platform_id = platform.id
        self._kid = key.kid
        (
            self.set_issuer(platform.issuer)
            .set_client_id(platform.client_id)
            .set_auth_login_url(platform.auth_login_url)
            .set_auth_token_url(platform.auth_token_url)
            .set_key_set_url(platform.key_set_url)
            .set_tool_private_key(key.private_pem)
        )
        if platform.auth_audience:
            self.set_auth_audience(platform.auth_audience)

    def get_kid(self) -> str:
        return self._kid


def registration_for(platform: Platform, key: SigningKey) -> ToolRegistration:
    """Build the pylti1p3 registration for one platform row."""
    return ToolRegistration(platform, key)


class DbToolConf(ToolConfAbstract):  # type: ignore[type-arg]
    """Registrations keyed by (issuer, client_id); deployments must be approved."""

    def __init__(self, session: Session, key: SigningKey) -> None:
        self.session, self.key = session, key

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        raise NotImplementedError("registrations are always looked up by (issuer, client_id)")

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any, **kwargs: Any) -> Registration:
        platform = find_platform(self.session, iss, client_id)
        return registration_for(platform, self.key) if platform else None  # type: ignore[return-value]

    def find_deployment(self, iss: str, deployment_id: str) -> LtiDeployment | None:
        raise NotImplementedError("deployments are always looked up by (issuer, client_id, deployment_id)")

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> LtiDeployment | None:
        platform = find_platform(self.session, iss, client_id)
        if platform is None:
            return None
        row = next((d for d in platform.deployments if d.deployment_id == deployment_id), None)
        if row is None or row.status is not DeploymentStatus.APPROVED:
            return None
        return LtiDeployment().set_deployment_id(deployment_id)


def approved(dep: Deployment | None) -> bool:
    """True when a deployment may launch."""
    return dep is not None and dep.status is DeploymentStatus.APPROVED
