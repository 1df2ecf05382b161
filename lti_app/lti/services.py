"""Per-request LTI building blocks: the login store, the platform key cache, the tool configuration."""

from __future__ import annotations

from flask import g

from classroom.services.keys import SigningKey, current_signing_key
from lti_app.lti.jwks_cache import PlatformKeyCache
from lti_app.lti.state import LoginStateStore
from lti_app.lti.tool_conf import DbToolConf
from lti_app.runtime import db, runtime


def login_store() -> LoginStateStore:
    """Redis-backed OIDC login states."""
    rt = runtime()
    return LoginStateStore(rt.redis, rt.settings.login_state_ttl_s)


def key_cache() -> PlatformKeyCache:
    """Platform JWKS cache (shared by all workers through Redis; parsed keys kept per worker)."""
    return runtime().platform_keys


def signing_key() -> SigningKey:
    """The tool's current signing key, read once per request."""
    if "signing_key" not in g:
        g.signing_key = current_signing_key(db())
    return g.signing_key  # type: ignore[no-any-return]


def tool_conf() -> DbToolConf:
    """pylti1p3 tool configuration over the request's session."""
    return DbToolConf(db(), signing_key, runtime().registry)  # the key is read only if something gets signed
