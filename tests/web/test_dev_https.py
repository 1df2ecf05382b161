"""`make run` over HTTPS: the local CA and server certificate (cryptography), a real TLS request to the dev app
served by werkzeug with that certificate, and your own certificate instead."""

from __future__ import annotations

import pytest
import requests
from cryptography import x509
from werkzeug.serving import make_server

from dev.tls import tls_from_env, trust_instructions
from tests.support.serving import serve_in_thread


@pytest.fixture
def https_app(settings, tmp_path):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    files = tls_from_env({"CWC_DEV_HTTPS": "1"}, tmp_path)
    assert files is not None
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True, ssl_context=files.ssl_context())
    thread = serve_in_thread(server)
    yield files, server.server_port
    server.shutdown()
    thread.join(5)


def test_the_dev_app_answers_over_tls_with_a_certificate_from_the_local_ca(https_app):
    files, port = https_app
    for host in ("127.0.0.1", "localhost"):  # the tool and the Demo LMS: both names are on the certificate
        resp = requests.get(f"https://{host}:{port}/healthz", verify=str(files.ca), timeout=10)
        assert resp.status_code in (200, 503) and "database" in resp.json()
    with pytest.raises(requests.exceptions.SSLError):  # real TLS: without the local CA nobody trusts it
        requests.get(f"https://127.0.0.1:{port}/healthz", timeout=10)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    assert cert.issuer == ca.subject and ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "Trust it once" in trust_instructions(files) and str(files.ca) in trust_instructions(files)


def test_the_ca_is_made_once_and_the_certificate_again_only_for_new_hosts(tmp_path):
    first = tls_from_env({"CWC_DEV_HTTPS": "1"}, tmp_path)
    assert first is not None
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()  # type: ignore[union-attr]
    again = tls_from_env({"CWC_DEV_HTTPS": "1"}, tmp_path)
    assert again.cert.read_bytes() == cert and again.ca.read_bytes() == ca  # type: ignore[union-attr]
    wider = tls_from_env({"CWC_DEV_HTTPS": "1", "CWC_DEV_TLS_HOSTS": "tool.test, 10.0.2.2"}, tmp_path)
    assert wider.ca.read_bytes() == ca and wider.cert.read_bytes() != cert  # type: ignore[union-attr]
    san = (
        x509.load_pem_x509_certificate(wider.cert.read_bytes())
        .extensions.get_extension_for_class(  # type: ignore[union-attr]
            x509.SubjectAlternativeName
        )
        .value
    )
    assert "tool.test" in san.get_values_for_type(x509.DNSName)
    assert oct(wider.key.stat().st_mode & 0o777) == "0o600"  # type: ignore[union-attr]


def test_plain_http_unless_asked_and_your_own_certificate_when_given(tmp_path):
    assert tls_from_env({}, tmp_path) is None and tls_from_env({"CWC_DEV_HTTPS": "0"}, tmp_path) is None
    local = tls_from_env({"CWC_DEV_HTTPS": "1"}, tmp_path / "made")
    own = tls_from_env({"CWC_DEV_TLS_CERT": str(local.cert), "CWC_DEV_TLS_KEY": str(local.key)}, tmp_path)  # type: ignore[union-attr]
    assert own is not None and own.cert == local.cert and own.ca is None  # type: ignore[union-attr]
    with pytest.raises(SystemExit):
        tls_from_env({"CWC_DEV_TLS_CERT": str(local.cert)}, tmp_path)  # type: ignore[union-attr]
