"""Demo LMS: a development-only LTI 1.3 platform (OIDC, deep linking, NRPS, AGS, Dynamic Registration).

It is served by the tool's own process on the other loopback host name (localhost <-> 127.0.0.1) so the
tool's iframe is really cross-site, and it refuses every request unless CWC_DEMO_LMS is on and the caller
is on this machine.
"""

from __future__ import annotations

from dev.demo_lms import (  # noqa: F401
    ags,
    course,
    deep_link,
    nrps,
    oauth,
    oidc,
    personas,
    registration,
    scores,
)
from dev.demo_lms.blueprint import bp

__all__ = ["bp"]
