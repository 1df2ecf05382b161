"""Typed settings, read from the environment once and frozen.

Tests build `Settings(...)` directly instead of editing `os.environ`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

ENVIRONMENTS = ("development", "test", "production")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class SettingsError(ValueError):
    """A setting is missing or unsafe; the message says which and what to do."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Every knob the tool has. Built once by `from_env()` or directly in tests."""

    env: str = "development"
    secret_key: str = ""
    # Public base URL the LMS and browsers reach the tool at, without a trailing slash.
    base_url: str = "http://127.0.0.1:5000"
    bind_host: str = "127.0.0.1"
    # None means "start the embedded server" (development only).
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(".run"))
    demo_lms: bool = False
    demo_lms_shape: str = "canvas"  # "moodle": the Demo LMS behaves like Moodle 4.5 (dev/demo_lms/shape.py)
    log_level: str = "INFO"
    log_json: bool = True
    # LTI
    clock_leeway_s: int = 60
    login_state_ttl_s: int = 600
    tool_token_ttl_s: int = 3600
    tool_token_max_age_s: int = 12 * 3600
    platform_jwks_ttl_s: int = 3600
    key_grace_period_days: int = 7
    # AWS
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None  # set to the moto server in the embedded default
    aws_bucket: str = "cwc-classroom"  # course materials and archives: courses/<id>/materials|students/...
    ssh_allowed_cidrs: tuple[str, ...] = ()  # never 0.0.0.0/0 by default: no SSH from anywhere
    aws_instance_profile: str = "cwc-workspace"
    aws_mutating_calls_per_s: int = 5
    # Reconcile describes every managed instance at most this often (0: every pass); between, what may have changed.
    reconcile_full_every_s: int = 60
    # The local workspace runtime's SSH port (simulated account only; 0: no local runtime, e.g. on real AWS).
    runtime_ssh_port: int = 0
    # The port the tool reaches an EC2 workspace's sshd on (files, export, backup, the browser terminal).
    workspace_ssh_port: int = 22
    # The browser terminal gateway (provisioning/gateway): its loopback port, and the WebSocket URL browsers use
    # (empty: ws://127.0.0.1:<port>/terminal; behind a reverse proxy, e.g. wss://tool.example.edu/terminal).
    gateway_port: int = 0
    gateway_url: str = ""
    # The gateway's own TLS (PEM files; `CWC_DEV_HTTPS=1 make run` passes its dev certificate): browsers then use
    # wss://, as an https page may not open a ws:// socket (mixed content).
    gateway_tls_cert: str = ""
    gateway_tls_key: str = ""
    # Money safety net: an instance powers itself off this long after the tool last renewed its lease.
    lease_s: int = 900
    # Archive homes before term end: running workspaces' agents are asked this long before it (0: not asked).
    archive_lead_s: int = 3600
    # Read image parameters under this prefix: an organisation's mirror of approved images, or the
    # simulated account (which, like any account, may not write under /aws/).
    image_parameter_prefix: str = ""
    # Email (SMTP). No host: emails stay in the outbox, shown on the development mail page.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_tls: str = "starttls"  # starttls | ssl | none
    smtp_user: str = ""
    smtp_password: str = ""
    mail_from: str = "Cloud Workstation <no-reply@localhost>"
    # LMS sync and passback
    roster_stale_after_s: int = 6 * 3600  # an instructor launch re-syncs a roster older than this
    lms_http_timeout_s: int = 30
    passback_concurrency: int = 4  # score posts in flight per passback job
    # Canvas REST (due dates): a Canvas developer key (API key, not LTI) and the school's Canvas URL.
    canvas_base_url: str = ""
    canvas_client_id: str = ""
    canvas_client_secret: str = ""
    # Fernet key for OAuth tokens at rest; empty derives one from secret_key (rotate both together).
    token_encryption_key: str = ""

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"CWC_ENV must be one of {ENVIRONMENTS}, got {self.env!r}")
        if not self.secret_key:
            raise SettingsError(
                "CWC_SECRET_KEY is not set. Generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        if self.is_production:
            self._check_production()
        if self.demo_lms_shape not in ("canvas", "moodle"):
            raise SettingsError("CWC_DEMO_LMS_SHAPE must be canvas or moodle.")
        if self.demo_lms and not self.is_loopback_bind:
            raise SettingsError(
                "The Demo LMS is for development on this machine only: it is refused on a "
                f"non-loopback bind ({self.bind_host}). Unset CWC_DEMO_LMS or bind 127.0.0.1."
            )

    def _check_production(self) -> None:
        if len(self.secret_key) < 32:
            raise SettingsError("CWC_SECRET_KEY must be at least 32 characters in production.")
        if self.demo_lms:
            raise SettingsError("The Demo LMS is refused in production (CWC_DEMO_LMS).")
        if not self.database_url:
            raise SettingsError("DATABASE_URL is required in production (no embedded database).")
        if not self.redis_url:
            raise SettingsError("REDIS_URL is required in production (no embedded Redis).")
        if not self.base_url.startswith("https://"):
            raise SettingsError("CWC_BASE_URL must be https:// in production (LMS iframes need it).")

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_loopback_bind(self) -> bool:
        return self.bind_host in LOOPBACK_HOSTS

    @property
    def dev_tools_allowed(self) -> bool:
        """The `dev` surfaces (/dev/mail, the Demo LMS) may exist: not production, and bound to loopback."""
        return not self.is_production and self.is_loopback_bind

    @property
    def base_host(self) -> str:
        return urlparse(self.base_url).netloc

    @property
    def terminal_url(self) -> str:
        """Where browsers open terminal WebSockets ('' when no gateway runs)."""
        if self.gateway_url:
            return self.gateway_url
        scheme = "wss" if self.gateway_tls_cert else "ws"
        return f"{scheme}://127.0.0.1:{self.gateway_port}/terminal" if self.gateway_port else ""

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def url(self, path: str) -> str:
        """Return the absolute public URL for a tool path."""
        return self.base_url.rstrip("/") + path

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (tests, embedded start-up)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Parse settings from environment variables (see README, Configuration)."""
        env = dict(os.environ if environ is None else environ)
        return cls(
            env=env.get("CWC_ENV", "development"),
            secret_key=env.get("CWC_SECRET_KEY", ""),
            base_url=env.get("CWC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
            bind_host=env.get("CWC_BIND_HOST", "127.0.0.1"),
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            data_dir=Path(env.get("CWC_DATA_DIR", ".run")),
            demo_lms=_bool(env.get("CWC_DEMO_LMS"), False),
            demo_lms_shape=env.get("CWC_DEMO_LMS_SHAPE", "canvas").strip().lower(),
            log_level=env.get("CWC_LOG_LEVEL", "INFO"),
            log_json=_bool(env.get("CWC_LOG_JSON"), True),
            clock_leeway_s=_int(env, "CWC_CLOCK_LEEWAY_S", 60),
            login_state_ttl_s=_int(env, "CWC_LOGIN_STATE_TTL_S", 600),
            tool_token_ttl_s=_int(env, "CWC_TOOL_TOKEN_TTL_S", 3600),
            tool_token_max_age_s=_int(env, "CWC_TOOL_TOKEN_MAX_AGE_S", 12 * 3600),
            platform_jwks_ttl_s=_int(env, "CWC_PLATFORM_JWKS_TTL_S", 3600),
            key_grace_period_days=_int(env, "CWC_KEY_GRACE_DAYS", 7),
            aws_region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            aws_endpoint_url=env.get("CWC_AWS_ENDPOINT_URL") or None,
            aws_bucket=env.get("CWC_AWS_BUCKET", "cwc-classroom"),
            ssh_allowed_cidrs=tuple(c.strip() for c in env.get("CWC_SSH_ALLOWED_CIDRS", "").split(",") if c.strip()),
            aws_instance_profile=env.get("CWC_AWS_INSTANCE_PROFILE", "cwc-workspace"),
            aws_mutating_calls_per_s=_int(env, "CWC_AWS_MUTATING_CALLS_PER_S", 5),
            reconcile_full_every_s=_int(env, "CWC_RECONCILE_FULL_EVERY_S", 60),
            runtime_ssh_port=_int(env, "CWC_RUNTIME_SSH_PORT", 0),
            workspace_ssh_port=_int(env, "CWC_WORKSPACE_SSH_PORT", 22),
            gateway_port=_int(env, "CWC_GATEWAY_PORT", 0),
            gateway_url=env.get("CWC_GATEWAY_URL", "").strip(),
            gateway_tls_cert=env.get("CWC_GATEWAY_TLS_CERT", "").strip(),
            gateway_tls_key=env.get("CWC_GATEWAY_TLS_KEY", "").strip(),
            lease_s=_int(env, "CWC_LEASE_S", 900),
            archive_lead_s=_int(env, "CWC_ARCHIVE_LEAD_S", 3600),
            image_parameter_prefix=env.get("CWC_IMAGE_PARAMETER_PREFIX", "").rstrip("/"),
            smtp_host=env.get("CWC_SMTP_HOST", ""),
            smtp_port=_int(env, "CWC_SMTP_PORT", 587),
            smtp_tls=env.get("CWC_SMTP_TLS", "starttls"),
            smtp_user=env.get("CWC_SMTP_USER", ""),
            smtp_password=env.get("CWC_SMTP_PASSWORD", ""),
            mail_from=env.get("CWC_MAIL_FROM", "Cloud Workstation <no-reply@localhost>"),
            roster_stale_after_s=_int(env, "CWC_ROSTER_STALE_S", 6 * 3600),
            lms_http_timeout_s=_int(env, "CWC_LMS_HTTP_TIMEOUT_S", 30),
            passback_concurrency=_int(env, "CWC_PASSBACK_CONCURRENCY", 4),
            canvas_base_url=env.get("CWC_CANVAS_BASE_URL", "").rstrip("/"),
            canvas_client_id=env.get("CWC_CANVAS_CLIENT_ID", ""),
            canvas_client_secret=env.get("CWC_CANVAS_CLIENT_SECRET", ""),
            token_encryption_key=env.get("CWC_TOKEN_ENCRYPTION_KEY", ""),
        )
