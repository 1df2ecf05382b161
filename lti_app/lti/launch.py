"""A pylti1p3 message launch with the checks pylti1p3 2.x leaves out.

Closed here: the state must come from a login of ours, once, from the same browser; the registration is
the one that login chose (not `aud[0]`); `iss`, `aud`, `azp`, `exp` and `iat` are verified with clock
leeway; the nonce must be the login's and is used up; platform keys come from a cache refetched once
on an unknown kid. Every pylti1p3 check (format, registration, deployment, message validators) still runs.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskRequest
from pylti1p3.exception import LtiException
from pylti1p3.launch_data_storage.cache import CacheDataStorage
from redis import Redis

from lti_app.lti.jwks_cache import KeySetError, PlatformKeyCache
from lti_app.lti.state import LoginState, LoginStateStore, Outcome

NONCE_TTL_S = 24 * 3600  # a used nonce is remembered a day: far longer than any id_token lives


class LaunchInvalid(Exception):
    """The id_token or its context failed a check; the message is safe to show."""


class DeploymentNotApproved(LaunchInvalid):
    """The signature is good but this deployment has not been approved by an administrator."""

    def __init__(self, deployment_id: str) -> None:
        super().__init__("This course's installation of Cloud Workstation is waiting for an administrator's approval.")
        self.deployment_id = deployment_id


class _RedisCache:
    """The get/set interface pylti1p3's CacheDataStorage expects, on Redis with JSON values."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def get(self, key: str) -> Any:
        raw = self.redis.get("cwc:lti:launch:" + key)
        return json.loads(raw) if raw else None

    def set(self, key: str, value: Any, exp: int | None = None) -> None:
        self.redis.set("cwc:lti:launch:" + key, json.dumps(value), ex=exp)


class RedisLaunchDataStorage(CacheDataStorage):  # type: ignore[type-arg]
    """Launch data in Redis, keyed by the random launch id (no session cookie: it may be blocked)."""

    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self._cache = _RedisCache(redis)

    def get_session_cookie_name(self) -> None:
        return None


class HardenedMessageLaunch(FlaskMessageLaunch):
    """Validate one launch against the login state it belongs to."""

    def __init__(
        self,
        form: dict[str, str],
        tool_conf: Any,
        *,
        redis: Redis,
        store: LoginStateStore,
        keys: PlatformKeyCache,
        binding: str,
        leeway_s: int,
        launch_ttl_s: int,
        unbound: bool = False,
        admit_deployment: Callable[[int, str], bool] | None = None,
    ) -> None:
        request = FlaskRequest(request_data=form, request_is_secure=False, cookies={}, session={})
        super().__init__(request, tool_conf, launch_data_storage=RedisLaunchDataStorage(redis))
        self.set_launch_data_lifetime(launch_ttl_s)
        self._store, self._keys, self._binding, self._leeway = store, keys, binding, leeway_s
        self._login: LoginState | None = None
        self._unbound = unbound  # no browser binding came back: validated to be parked, not signed in here
        self._admit_deployment = admit_deployment

    def validate(self) -> HardenedMessageLaunch:
        """Run every check, in an order where nothing is used up before the signature is verified.

        Launch data is not saved here: the caller saves it (save_launch_data) once the launch is accepted.
        """
        if self._restored:
            raise LtiException("A restored launch can't be validated.")
        self._validated = True
        try:
            (
                self.validate_jwt_format()  # parsing only: the state step needs the token's nonce
                .validate_state()
                .validate_registration()
                .validate_jwt_signature()
                .validate_nonce()
                .validate_deployment()
                .validate_message()
            )
        except Exception:
            self._validated = False
            raise
        return self

    @property
    def login(self) -> LoginState:
        assert self._login is not None, "validate_state first"
        return self._login

    def validate_state(self) -> HardenedMessageLaunch:
        """The state must be a live login of ours, bound to this browser; using it deletes it.

        The same atomic step marks the token's nonce used; validate_nonce then checks it is the login's.
        """
        state = self._get_request_param("state") or ""
        nonce = str(self._jwt.get("body", {}).get("nonce") or "")
        if self._unbound:
            outcome, login = self._store.take_unbound(state, nonce, nonce_ttl_s=NONCE_TTL_S)
        else:
            outcome, login = self._store.take(state, self._binding, nonce, nonce_ttl_s=NONCE_TTL_S)
        if outcome is Outcome.MISSING:
            raise LaunchInvalid("This sign-in has expired or was already used. Open the link in your course again.")
        if outcome is Outcome.OTHER_BROWSER:
            raise LaunchInvalid(
                "This sign-in was started in another browser window. Open the link in your course again."
            )
        if outcome is Outcome.NONCE_USED:
            raise LaunchInvalid("This launch token was used already.")
        assert login is not None
        self._login = login
        return self

    def get_client_id(self) -> str:
        """The client id the login chose, not `aud[0]` of an unverified token."""
        return self.login.client_id

    def validate_registration(self) -> HardenedMessageLaunch:
        body = self._jwt.get("body", {})
        if body.get("iss") != self.login.issuer:
            raise LaunchInvalid("The launch came from a different platform than the sign-in.")
        super().validate_registration()
        return self

    def get_public_key(self) -> tuple[Any, str]:
        """The platform's public key named by the token's kid (a parsed key object), and the algorithm."""
        header = self._jwt.get("header", {})
        kid, alg = header.get("kid"), header.get("alg")
        if alg != "RS256" or not kid:
            raise LaunchInvalid("The launch token must be signed with RS256 and name its key (kid).")
        assert self._registration is not None
        try:
            key = self._keys.public_key(self._registration.get_key_set_url() or "", kid)
        except KeySetError as exc:
            raise LaunchInvalid(str(exc)) from exc
        return key, "RS256"

    def save_launch_data(self) -> HardenedMessageLaunch:
        """Keep the launch data for later pages, under the launch id (one Redis write).

        pylti1p3 also marks the state valid for its own relaunch check; our states are used up instead.
        """
        self._session_service.save_launch_data(self._launch_id, self._jwt["body"])
        return self

    def validate_jwt_signature(self) -> HardenedMessageLaunch:
        """Verify signature, iss, aud (this client), azp, exp and iat, with clock leeway."""
        public_key, alg = self.get_public_key()
        client_id = self.login.client_id
        try:
            claims = jwt.decode(
                self._get_id_token(),
                public_key,
                algorithms=[alg],
                audience=client_id,
                issuer=self.login.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise LaunchInvalid(f"The launch token is not valid: {exc}.") from exc
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(aud) > 1 or azp is not None) and azp != client_id:
            raise LaunchInvalid("The launch token was issued for another tool (azp).")
        return self

    def validate_nonce(self) -> HardenedMessageLaunch:
        """The nonce must be the one our login sent (validate_state has marked it used)."""
        nonce = self._jwt.get("body", {}).get("nonce") or ""
        if not hmac.compare_digest(str(nonce), self.login.nonce):
            raise LaunchInvalid("The launch token does not answer this sign-in (nonce).")
        return self

    def validate_deployment(self) -> HardenedMessageLaunch:
        """Only approved deployments launch; an unknown one is offered to `admit_deployment` (records it)."""
        deployment_id = self._get_deployment_id()
        try:
            super().validate_deployment()
        except LtiException as exc:
            # The hook records the deployment (approved at once on a platform that accepts new ones): then
            # this very launch goes on, rather than the second one.
            if self._admit_deployment is None or not self._admit_deployment(self.login.platform_id, deployment_id):
                raise DeploymentNotApproved(deployment_id) from exc
            try:
                super().validate_deployment()
            except LtiException as again:
                raise DeploymentNotApproved(deployment_id) from again
        return self

    def known_platform_id(self) -> int | None:
        """The platform of this launch's login, once validate_state has found it (else None)."""
        return self._login.platform_id if self._login is not None else None

    def registration_platform_id(self) -> int:
        """Primary key of the platform row this launch belongs to."""
        return self.login.platform_id
