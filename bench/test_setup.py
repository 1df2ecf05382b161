"""What a test's set-up costs, the old way against the suite's way: `python -m bench.test_setup [--n 8]`.

Three pieces every test used to pay for, each measured `--n` times on this machine (median, min, max, ratio):
- its database: CREATE DATABASE … TEMPLATE plus DROP … WITH (FORCE), against tests/support/dbpool.py's reset of a
  database after a test that wrote a course, a person and an audit event;
- its RSA keys: three 2048-bit keys generated, against tests/support/rsa_pool.py handing out the process's keys;
- its AWS backend: AwsBackend on a fresh boto3.Session, against provisioning.factory.boto_session() (a new
  session on the process's parsed service models).
And what the suite still paid per test until issue 14 (each old way rebuilt here, in the same run):
- stopping a test's HTTP server: serve_forever's default 0.5 s poll interval, against tests/support/serving.py;
- a test platform's key: its public JWK read by parsing its PEM and the PEM parsed again to sign, against both
  from the key object (tests/support/platform.py KeyPair);
- an app's templates: a new app rendering the staff and student pages' templates compiled anew, against the
  process's compiled templates (lti_app/template_cache.py);
- the AWS backend fixture: moto reset, AwsBackend with its six clients made at once and the seed, with moto's
  thousand-odd extra AMIs per region, against lazy clients and moto's 44 default AMIs (tests/support/moto_amis.py)
  on a moto server in this process (CPU time of the process, which includes the server's thread).
The database piece and the templates need PostgreSQL (bench/services.py finds or starts one).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import psycopg
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from moto.utilities.utils import load_resource
from werkzeug.serving import make_server

from bench.services import admin_url, fresh_database
from classroom.audit import append_event
from classroom.db import make_engine, make_session_factory
from provisioning.aws import AwsBackend
from provisioning.factory import boto_session
from provisioning.simulated import seed_simulated_aws
from tests.support.dbpool import DatabasePool, db_url
from tests.support.factories import make_course, make_person
from tests.support.rsa_pool import KeyPool
from tests.support.serving import POLL_S


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """Seconds for each of `n` calls of `fn`."""
    out = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        out.append(time.perf_counter() - began)
    return out


def report(name: str, old: list[float], new: list[float]) -> None:
    """One line: median, min and max of both, and the ratio of the medians."""
    o, w = statistics.median(old), statistics.median(new)
    ratio = f"{o / w:6.1f}x" if o < 1000 * w else ">1000x"
    print(
        f"{name:<9} old {o * 1000:8.1f} ms (min {min(old) * 1000:.1f}, max {max(old) * 1000:.1f})"
        f"   new {w * 1000:8.2f} ms (min {min(new) * 1000:.2f}, max {max(new) * 1000:.2f})   old/new {ratio}"
    )


def write_a_little(url: str) -> None:
    """What a small test leaves behind: a course, a person, an audit event."""
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        course = make_course(session)
        make_person(session, course, name="Emily Chen")
        append_event(session, "bench.test_setup", course_id=course.id)
        session.commit()
    engine.dispose()


def bench_database(admin: str, n: int) -> None:
    with fresh_database(admin, f"cwc_bench_tpl_{os.getpid()}") as template_url:
        template = template_url.rsplit("/", 1)[1]
        pool = DatabasePool(admin, template, f"cwc_bench_pool_{os.getpid()}")
        pool.create()
        try:
            clone_name = f"cwc_bench_clone_{os.getpid()}"
            old, new = [], []
            for _ in range(n):  # the test's own writes happen between the timed set-up and clean-up
                began = time.perf_counter()
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{clone_name}" TEMPLATE "{template}"')
                cloned = time.perf_counter() - began
                write_a_little(db_url(admin, clone_name))
                began = time.perf_counter()
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{clone_name}" WITH (FORCE)')
                old.append(cloned + time.perf_counter() - began)
                write_a_little(pool.url)
                began = time.perf_counter()
                pool.reset()
                new.append(time.perf_counter() - began)
            report("database", old, new)
            print(f"          (resets {pool.resets}, fallbacks to a clone {pool.clones - 1})")
        finally:
            pool.drop()


def bench_keys(n: int) -> None:
    pool = KeyPool()

    def three_from_pool() -> None:
        pool.start_test()
        for _ in range(3):
            pool.generate_private_key(65537, 2048)

    three_from_pool()  # the process's first test generates them
    report(
        "rsa keys",
        timed(lambda: [rsa.generate_private_key(65537, 2048) for _ in range(3)], n),
        timed(three_from_pool, n),
    )


def bench_backend(n: int) -> None:
    def build(session: Callable[[], boto3.Session]) -> Callable[[], object]:
        def run() -> None:
            backend = AwsBackend(session(), region="us-east-1", bucket="b", endpoint_url="http://127.0.0.1:9")
            for client in ("ec2", "efs", "ssm", "s3", "iam", "cloudwatch"):  # made on first use: make all six
                getattr(backend, client)

        return run

    build(boto_session)()  # the process's first backend parses the models
    report("backend", timed(build(boto3.Session), n), timed(build(boto_session), n))


def bench_server_stop(n: int) -> None:
    def serve_and_stop(poll: float) -> Callable[[], object]:
        def run() -> None:
            server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll}, daemon=True).start()
            time.sleep(0.01)  # serving, as in a test
            server.shutdown()
            server.server_close()

        return run

    report("stop srv", timed(serve_and_stop(0.5), n), timed(serve_and_stop(POLL_S), n))


def bench_platform_key(n: int) -> None:
    private = rsa.generate_private_key(65537, 2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()

    def old() -> None:
        JWK.from_pem(pem.encode()).export_public()
        serialization.load_pem_private_key(pem.encode(), password=None)

    report("pem keys", timed(old, n), timed(lambda: JWK.from_pyca(private.public_key()).export_public(), n))


def bench_templates(admin: str, n: int) -> None:
    from config.settings import Settings
    from lti_app import create_app

    with fresh_database(admin, "cwc_bench_templates") as url:
        settings = Settings(env="test", secret_key="bench-" + "x" * 40, base_url="http://localhost",
                            database_url=url, redis_url="redis://127.0.0.1:6379/12", log_json=False,
                            log_level="WARNING")  # fmt: skip
        names: list[str] = []

        def new_app(cache: bool) -> Callable[[], object]:
            def run() -> None:
                app = create_app(settings)
                if not cache:
                    app.jinja_env.bytecode_cache = None
                names[:] = names or [t for t in app.jinja_env.list_templates() if t.endswith(".html")]
                for name in names:
                    app.jinja_env.get_template(name)
                app.extensions["cwc"].engine.dispose()

            return run

        new_app(True)()  # the process's first app compiles them
        report("templates", cpu_timed(new_app(False), n), cpu_timed(new_app(True), n))
        print(f"          (a new app loading all {len(names)} templates; CPU time)")


def bench_backend_fixture(n: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    quiet = logging.getLogger("werkzeug")
    quiet.setLevel(logging.WARNING)
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    amis = Path(tempfile.mkdtemp(prefix="cwc-bench-")) / "amis.json"
    amis.write_text(json.dumps(load_resource("ec2/resources/amis.json")), encoding="utf-8")

    def fixture(new: bool) -> Callable[[], object]:
        def run() -> None:
            if new:
                os.environ["MOTO_AMIS_PATH"] = str(amis)
            else:
                os.environ.pop("MOTO_AMIS_PATH", None)
            requests.post(f"{url}/moto-api/reset", timeout=60).raise_for_status()
            backend = AwsBackend(boto_session(), region="us-east-1", bucket="cwc-test",
                                 instance_profile="cwc-workspace", endpoint_url=url, max_attempts=4)  # fmt: skip
            if not new:  # the six clients made at once, as AwsBackend did
                for client in ("ec2", "efs", "ssm", "s3", "iam", "cloudwatch"):
                    getattr(backend, client)
            seed_simulated_aws(backend)

        return run

    try:
        fixture(False)()  # the first round imports moto's services
        report("backend fx", cpu_timed(fixture(False), n), cpu_timed(fixture(True), n))
        print("          (moto reset, AwsBackend, seed; CPU time of this process, moto's thread included)")
    finally:
        os.environ.pop("MOTO_AMIS_PATH", None)
        server.stop()
        shutil.rmtree(amis.parent, ignore_errors=True)


def cpu_timed(fn: Callable[[], object], n: int) -> list[float]:
    """CPU seconds of this process (every thread) for each of `n` calls of `fn`."""
    out = []
    for _ in range(n):
        began = time.process_time()
        fn()
        out.append(time.process_time() - began)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="measurements of each (default 8)")
    parser.add_argument("--pg-admin-url", default=None)
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.n} runs each")
    bench_database(admin_url(args.pg_admin_url), args.n)
    bench_keys(args.n)
    bench_backend(args.n)
    bench_server_stop(args.n)
    bench_platform_key(args.n)
    bench_templates(admin_url(args.pg_admin_url), args.n)
    bench_backend_fixture(args.n)


if __name__ == "__main__":
    main()
