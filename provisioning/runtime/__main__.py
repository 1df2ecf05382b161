"""`python -m provisioning.runtime`: the local workspace runtime (simulated account, development and demos).

Refuses to start when bubblewrap cannot confine the workspaces: never silently unconfined. It checks before
importing the runtime (SQLAlchemy, asyncssh, boto3, Redis: 2.6 s of CPU), so a refusal comes at once.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from provisioning.runtime.sandbox import SandboxUnavailable, check_bwrap


def main() -> None:
    """Check bubblewrap, then serve SSH on 127.0.0.1:CWC_RUNTIME_SSH_PORT until stopped."""
    from config.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s runtime %(levelname)s %(message)s")
    settings = Settings.from_env()
    if settings.is_production or not settings.aws_endpoint_url:
        sys.exit("provisioning.runtime runs the simulated account's workspaces only (CWC_AWS_ENDPOINT_URL)")
    if not settings.runtime_ssh_port:
        sys.exit("provisioning.runtime needs CWC_RUNTIME_SSH_PORT (make run chooses one)")
    try:
        check_bwrap()
    except SandboxUnavailable as exc:
        sys.exit(f"provisioning.runtime refuses to start: workspaces would run unconfined: {exc}")
    from provisioning.runtime.host import build_runtime, host_key, run_forever

    rt = build_runtime(settings)
    key = host_key(settings.data_dir / "runtime" / "ssh_host_ed25519_key")
    asyncio.run(run_forever(rt, "127.0.0.1", settings.runtime_ssh_port, key, sync_every_s=2.0))


if __name__ == "__main__":
    main()
