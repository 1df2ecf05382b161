"""pylti1p3 tool configuration read from the database (many platforms, many client ids per issuer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy.orm import Session

from classroom.models import Platform
from classroom.services.keys import SigningKey
from lti_app.lti.registry import DeploymentEntry, PlatformEntry, RegistryCache

PlatformLike = Platform | PlatformEntry  # a row, or the registry's copy of one


class ToolRegistration(Registration):
    """A pylti1p3 Registration that signs with the tool's current key (read only when something is signed)."""

    def __init__(self, platform: PlatformLike, key: SigningKey | Callable[[], SigningKey]) -> None:
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


def registration_for(platform: PlatformLike, key: SigningKey | Callable[[], SigningKey]) -> ToolRegistration:
    """Build the pylti1p3 registration for one platform row."""
    return ToolRegistration(platform, key)


class DbToolConf(ToolConfAbstract):  # type: ignore[type-arg]
    """Registrations keyed by (issuer, client_id); deployments must be approved (read through the registry cache)."""

    def __init__(self, session: Session, key: SigningKey | Callable[[], SigningKey], registry: RegistryCache) -> None:
        self.session, self.key, self.registry = session, key, registry
        self.deployment: DeploymentEntry | None = None  # the approved deployment the launch was checked against

    def platform(self, iss: str, client_id: str) -> PlatformEntry | None:
        """The registration, from the cache or the database."""
        return self.registry.platform(self.session, iss, client_id)

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
        self.deployment = self.registry.approved_deployment(self.session, platform.id, deployment_id)
        return LtiDeployment().set_deployment_id(deployment_id) if self.deployment else None
