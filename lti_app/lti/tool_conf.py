"""pylti1p3 tool configuration read from the database (many platforms, many client ids per issuer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.models import Deployment, DeploymentStatus, Platform
from classroom.services.keys import SigningKey
from classroom.services.platforms import find_platform


class ToolRegistration(Registration):
    """A pylti1p3 Registration that signs with the tool's current key (read only when something is signed)."""

    def __init__(self, platform: Platform, key: SigningKey | Callable[[], SigningKey]) -> None:
        self.platform_id = platform.id
        self._key = key
        (
            self.set_issuer(platform.issuer)
            .set_client_id(platform.client_id)
            .set_auth_login_url(platform.auth_login_url)
            .set_auth_token_url(platform.auth_token_url)
            .set_key_set_url(platform.key_set_url)
        )
        if platform.auth_audience:
            self.set_auth_audience(platform.auth_audience)

    def _signing_key(self) -> SigningKey:
        if callable(self._key):
            self._key = self._key()
        return self._key

    def get_kid(self) -> str:
        return self._signing_key().kid

    def get_tool_private_key(self) -> str:
        return self._signing_key().private_pem


def registration_for(platform: Platform, key: SigningKey | Callable[[], SigningKey]) -> ToolRegistration:
    """Build the pylti1p3 registration for one platform row."""
    return ToolRegistration(platform, key)


class DbToolConf(ToolConfAbstract):  # type: ignore[type-arg]
    """Registrations keyed by (issuer, client_id); deployments must be approved."""

    def __init__(self, session: Session, key: SigningKey | Callable[[], SigningKey]) -> None:
        self.session, self.key = session, key
        self._platforms: dict[tuple[str, str], Platform | None] = {}
        self.deployment: Deployment | None = None  # the approved deployment the launch was checked against

    def platform(self, iss: str, client_id: str) -> Platform | None:
        """The registration row, looked up once per request."""
        if (iss, client_id) not in self._platforms:
            self._platforms[(iss, client_id)] = find_platform(self.session, iss, client_id)
        return self._platforms[(iss, client_id)]

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        raise NotImplementedError("registrations are always looked up by (issuer, client_id)")

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any, **kwargs: Any) -> Registration:
        platform = self.platform(iss, client_id)
        return registration_for(platform, self.key) if platform else None  # type: ignore[return-value]

    def find_deployment(self, iss: str, deployment_id: str) -> LtiDeployment | None:
        raise NotImplementedError("deployments are always looked up by (issuer, client_id, deployment_id)")

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> LtiDeployment | None:
        platform = self.platform(iss, client_id)
        if platform is None:
            return None
        row = self.session.scalar(
            select(Deployment).where(Deployment.platform_id == platform.id, Deployment.deployment_id == deployment_id)
        )
        if row is None or row.status is not DeploymentStatus.APPROVED:
            return None
        self.deployment = row
        return LtiDeployment().set_deployment_id(deployment_id)


def approved(dep: Deployment | None) -> bool:
    """True when a deployment may launch."""
    return dep is not None and dep.status is DeploymentStatus.APPROVED
