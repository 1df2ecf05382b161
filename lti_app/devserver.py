"""`python -m lti_app.devserver` (what `make run` starts): the whole tool on the embedded default.

Embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), simulated AWS on a local moto
server, an RQ worker and the periodic scheduler as child processes, the web app with the Demo LMS on
127.0.0.1, and the Demo LMS registered with the tool through the tool's own Dynamic Registration.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import requests
from werkzeug.serving import make_server

from classroom import schema
from classroom.db import make_engine, make_session_factory, session_scope
from classroom.services.keys import ensure_keys
from config.embedded import start_embedded_postgres, start_embedded_redis
from config.settings import Settings

DATA = Path(os.environ.get("CWC_DATA_DIR", ".run"))


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _secret_key() -> str:
    """A development secret, generated once into .run/secret_key (mode 600) and never printed."""
    path = DATA / "secret_key"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _database() -> str:
    """DATABASE_URL, or a `cwc` database in the embedded PostgreSQL."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    admin = start_embedded_postgres(DATA, stop_at_exit=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'cwc'").fetchone():
            conn.execute("CREATE DATABASE cwc")
    return admin.replace("/postgres?", "/cwc?", 1)


def _simulated_aws(env: dict[str, str]) -> object:
    """A moto server on loopback, seeded like a real account (bucket, instance profile, image parameters)."""
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "simulated",
        "AWS_SECRET_ACCESS_KEY": "simulated",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)
        env.setdefault(key, os.environ[key])
    port = _free_port(5005)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env.update(
        {
            "CWC_AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "CWC_IMAGE_PARAMETER_PREFIX": "/cwc-sim",
            "CWC_AWS_BUCKET": env.get("CWC_AWS_BUCKET", "cwc-classroom-dev"),
        }
    )
    os.environ.update(env)
    from provisioning.factory import backend_from_settings
    from provisioning.simulated import seed_simulated_aws

    seed_simulated_aws(backend_from_settings(Settings.from_env()))
    return server


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    port = int(env.get("CWC_PORT", "5000"))
    env.setdefault("CWC_ENV", "development")
    env.setdefault("CWC_SECRET_KEY", _secret_key())
    env.setdefault("CWC_BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("CWC_DEMO_LMS", "1")
    env.setdefault("CWC_LOG_JSON", "0")
    env["DATABASE_URL"] = _database()
    env["REDIS_URL"] = env.get("REDIS_URL") or start_embedded_redis(DATA, stop_at_exit=True)
    os.environ.update(env)
    return env


def _prepare(settings: Settings) -> None:
    engine = make_engine(settings.database_url or "")
    schema.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        ensure_keys(session)
    engine.dispose()


def _children(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    log_dir = DATA / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, module in (("worker", "classroom.jobs.worker"), ("scheduler", "classroom.jobs.schedule")):
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed when the child exits
        procs.append(subprocess.Popen([sys.executable, "-m", module], env=env, stdout=log, stderr=log))
    return procs


def _register_demo_lms(settings: Settings) -> str:
    """Register the Demo LMS with the tool through Dynamic Registration, once."""
    from sqlalchemy import select

    from classroom.models import Platform
    from classroom.services.registration import create_invite
    from lti_app.demo_lms.bootstrap import auto_register
    from lti_app.demo_lms.origins import issuer

    engine = make_engine(settings.database_url or "")
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        if session.scalar(select(Platform.id).where(Platform.issuer == issuer(settings))):
            return "already registered"
        token = create_invite(session, note="Demo LMS", accept_new_deployments=True)
    engine.dispose()
    result = auto_register(settings, settings.url(f"/lti/register?invite={token}"))
    return f"registered (client_id {result['client_id']})"


def main() -> None:
    """Start everything, print where to go, and stop everything on Ctrl-C or SIGTERM."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # per-request lines of the app and of moto
    env = _environment()
    moto = _simulated_aws(env)
    settings = Settings.from_env(env)
    _prepare(settings)
    procs = _children(env)
    from lti_app import create_app

    port = int(settings.base_url.rsplit(":", 1)[1])
    server = make_server("127.0.0.1", port, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    requests.get(settings.url("/healthz"), timeout=10)
    demo = _register_demo_lms(settings)
    from lti_app.demo_lms.origins import demo_url

    print(
        f"""
  Cloud Workstation Classroom is running (embedded default; simulated AWS; nothing real is spent).

    Demo LMS:  {demo_url(settings, "/")}   <- open this, sign in as any persona ({demo})
    Tool:      {settings.base_url}   health: {settings.url("/healthz")}   outgoing mail: {settings.url("/dev/mail")}
    Logs:      worker and scheduler in {DATA / "logs"}/; warnings and errors below.   Stop with Ctrl-C.
""",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set() and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        server.shutdown()
        moto.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
