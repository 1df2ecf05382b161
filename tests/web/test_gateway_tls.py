"""`CWC_DEV_HTTPS=1 make run`: the page is https, so the terminal gateway serves the same dev certificate and pages
open wss:// (an https page may not open ws://). The URL derivation, and a real TLS WebSocket handshake."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from config.settings import Settings
from dev.tls import gateway_tls_env, tls_from_env
from provisioning.gateway.host import GatewayThread, build_gateway, tls_context

BASE = {"CWC_SECRET_KEY": "k" * 48, "CWC_GATEWAY_PORT": "8022"}


def test_over_dev_https_the_terminal_url_is_wss_and_plain_http_keeps_ws(tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = tls_from_env({"CWC_DEV_HTTPS": "1"}, tmp_path)
    https = Settings.from_env({**BASE, "CWC_BASE_URL": "https://127.0.0.1:5000", **gateway_tls_env(files)})
    assert https.terminal_url == "wss://127.0.0.1:8022/terminal"
    assert https.gateway_tls_cert == str(files.cert) and https.gateway_tls_key == str(files.key)
    plain = Settings.from_env({**BASE, "CWC_BASE_URL": "http://127.0.0.1:5000", **gateway_tls_env(None)})
    assert plain.terminal_url == "ws://127.0.0.1:8022/terminal" and tls_context(plain) is None
    proxied = Settings.from_env({**BASE, **gateway_tls_env(files), "CWC_GATEWAY_URL": "wss://tool.example/terminal"})
    assert proxied.terminal_url == "wss://tool.example/terminal"  # behind a proxy its URL wins
    assert Settings.from_env({"CWC_SECRET_KEY": "k" * 48}).terminal_url == ""  # no gateway: no terminal


def test_the_gateway_answers_a_tls_websocket_handshake_with_the_dev_certificate(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = tls_from_env({"CWC_DEV_HTTPS": "1"}, tmp_path)
    cfg = settings.with_(gateway_tls_cert=str(files.cert), gateway_tls_key=str(files.key))
    thread = GatewayThread(build_gateway(cfg, origins={"https://127.0.0.1:5000"}))
    port = thread.start(tls=tls_context(cfg))
    trusting = ssl.create_default_context(cafile=str(files.ca))

    async def handshake(context: ssl.SSLContext) -> int:
        async with aiohttp.ClientSession() as http:
            try:
                await http.ws_connect(f"wss://127.0.0.1:{port}/terminal?ticket=made-up", ssl=context,
                                      headers={"Origin": "https://127.0.0.1:5000"})  # fmt: skip
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
            return 101

    try:
        assert asyncio.run(handshake(trusting)) == 401  # through TLS to the gateway's ticket check
        with pytest.raises(aiohttp.ClientConnectorCertificateError):  # real TLS: the local CA's certificate
            asyncio.run(handshake(ssl.create_default_context()))
    finally:
        thread.stop()
