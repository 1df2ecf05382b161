"""The browser terminal gateway: WebSocket ↔ SSH, in its own process (`python -m provisioning.gateway`)."""
