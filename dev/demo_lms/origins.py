"""Where the Demo LMS lives: the tool's URL with 127.0.0.1 and localhost swapped, so its iframe is cross-site."""

from __future__ import annotations

from urllib.parse import urlparse

from config.settings import Settings

SWAP = {"127.0.0.1": "localhost", "localhost": "127.0.0.1", "::1": "localhost"}
PREFIX = "/demo-lms"


def origin_of(url: str) -> str:
    """Return scheme://host[:port] of a URL."""
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc}"


def tool_origin(settings: Settings) -> str:
    """The tool's origin (what frames it and what may talk to the course page)."""
    return origin_of(settings.base_url)


def demo_origin(settings: Settings) -> str:
    """The tool's origin with its loopback host name swapped (a different site for the browser)."""
    parts = urlparse(settings.base_url)
    host = parts.hostname or "127.0.0.1"
    netloc = SWAP.get(host, host) + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{netloc}"


def demo_host(settings: Settings) -> str:
    """host[:port] the Demo LMS pages must be used at."""
    return urlparse(demo_origin(settings)).netloc


def issuer(settings: Settings) -> str:
    """The platform's issuer: the demo origin plus /demo-lms."""
    return demo_origin(settings) + PREFIX


def demo_url(settings: Settings, path: str) -> str:
    """Absolute URL of a Demo LMS path ('/auth' -> http://localhost:5000/demo-lms/auth)."""
    return issuer(settings) + path


def openid_configuration_url(settings: Settings) -> str:
    """The platform's OpenID configuration URL (given to the tool at Dynamic Registration)."""
    return demo_url(settings, "/.well-known/openid-configuration")
