"""HTTPS for `make run`: a local certificate authority and a server certificate made with `cryptography`, or yours.

A real LMS launches the tool with a cross-site form post, which carries the tool's cookies only when they are
`SameSite=None; Secure`, so only over HTTPS. `CWC_DEV_HTTPS=1 make run` serves the tool (and the Demo LMS) on
https://127.0.0.1:<port> with a certificate from a local CA kept under `<data dir>/tls/` (made once, reused);
`CWC_DEV_TLS_CERT` and `CWC_DEV_TLS_KEY` serve your own certificate instead. Development only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1")
CA_DAYS, CERT_DAYS = 3650, 397  # browsers refuse server certificates valid for longer than 398 days


@dataclass(frozen=True)
class TlsFiles:
    """The certificate and key the server presents, and the CA that signed them (None for your own)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A server context for werkzeug's make_server."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cloud Workstation development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def make_ca(directory: Path, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign only server certificates for this machine (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Cloud Workstation local development CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digital_signature, key_cert_sign, crl_sign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / "ca.key", key)
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    return (cert, key) if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _cert_covers(path: Path, hosts: Sequence[str], now: dt.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return set(_san(hosts)) <= set(san) and cert.not_valid_after_utc > now + dt.timedelta(days=7)


def local_certificate(
    directory: Path, hosts: Sequence[str] = DEFAULT_HOSTS, now: dt.datetime | None = None
) -> TlsFiles:
    """The CA (made once) and a server certificate for `hosts` (made again when hosts change or it nears expiry)."""
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "server.pem", directory / "server.key", directory / "ca.pem")
    ca = _load_ca(directory)
    if ca is not None and _cert_covers(files.cert, hosts, now):
        return files
    ca_cert, ca_key = ca or make_ca(directory, now)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(files.key, key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def tls_from_env(env: Mapping[str, str], data_dir: Path) -> TlsFiles | None:
    """Your own certificate (CWC_DEV_TLS_CERT + CWC_DEV_TLS_KEY), a local one (CWC_DEV_HTTPS=1), or None (http)."""
    cert, key = env.get("CWC_DEV_TLS_CERT", ""), env.get("CWC_DEV_TLS_KEY", "")
    if cert or key:
        if not (cert and key and os.path.isfile(cert) and os.path.isfile(key)):
            raise SystemExit("Set both CWC_DEV_TLS_CERT and CWC_DEV_TLS_KEY to readable PEM files.")
        return TlsFiles(Path(cert), Path(key))
    if env.get("CWC_DEV_HTTPS", "").lower() not in ("1", "true", "yes", "on"):
        return None
    extra = [h.strip() for h in env.get("CWC_DEV_TLS_HOSTS", "").split(",") if h.strip()]
    return local_certificate(data_dir / "tls", [*DEFAULT_HOSTS, *extra])


def ca_bundle(files: TlsFiles, directory: Path) -> Path | None:
    """Public CAs plus the local one, so the tool and the Demo LMS (requests) trust each other and the world."""
    if files.ca is None:
        return None
    import certifi

    bundle = directory / "bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + files.ca.read_bytes())
    return bundle


def trust_instructions(files: TlsFiles) -> str:
    """What to do so browsers and an LMS accept the certificate (printed by `make run`)."""
    if files.ca is None:
        return f"HTTPS with your certificate {files.cert}."
    ca = files.ca
    return f"""HTTPS with a local CA: {ca}
               Trust it once (development only):
                 Debian/Ubuntu: sudo cp {ca} /usr/local/share/ca-certificates/cwc-dev.crt && sudo update-ca-certificates
                 macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}
                 Chromium/Chrome on Linux: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n cwc-dev -i {ca}
                 Firefox: Settings, Certificates, View Certificates, Authorities, Import
                 A local Moodle/Canvas server must trust it too (its CA store, or PHP's curl.cainfo for Moodle)."""


def gateway_tls_env(tls: TlsFiles | None) -> dict[str, str]:
    """An https page may open only wss://: over HTTPS the terminal gateway serves the same certificate."""
    return {"CWC_GATEWAY_TLS_CERT": str(tls.cert), "CWC_GATEWAY_TLS_KEY": str(tls.key)} if tls else {}
