"""`python -m provisioning.gateway`: the browser terminal gateway on 127.0.0.1:CWC_GATEWAY_PORT."""

from __future__ import annotations

import logging
import sys

from config.settings import Settings
from provisioning.gateway.host import serve


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(levelname)s %(message)s")
    settings = Settings.from_env()
    if not settings.gateway_port:
        sys.exit("provisioning.gateway needs CWC_GATEWAY_PORT (make run chooses one)")
    serve(settings)


if __name__ == "__main__":
    main()
