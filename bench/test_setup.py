"""What a test's set-up costs, the old way against the suite's way: `python -m bench.test_setup [--n 8]`.

Three pieces every test used to pay for, each measured `--n` times on this machine (median, min, max, ratio):
- its database: CREATE DATABASE … TEMPLATE plus DROP … WITH (FORCE), against tests/support/dbpool.py's reset of a
  database after a test that wrote a course, a person and an audit event;
- its RSA keys: three 2048-bit keys generated, against tests/support/rsa_pool.py handing out the process's keys;
- its AWS backend: AwsBackend on a fresh boto3.Session, against provisioning.factory.boto_session() (a new
  session on the process's parsed service models).
No server is called for the last two; the first needs PostgreSQL (bench/services.py finds or starts one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import boto3
import psycopg
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.services import admin_url, fresh_database
from classroom.audit import append_event
from classroom.db import make_engine, make_session_factory
from provisioning.aws import AwsBackend
from provisioning.factory import boto_session
from tests.support.dbpool import DatabasePool, db_url
from tests.support.factories import make_course, make_person
from tests.support.rsa_pool import KeyPool


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
        return lambda: AwsBackend(session(), region="us-east-1", bucket="b", endpoint_url="http://127.0.0.1:9")

    build(boto_session)()  # the process's first backend parses the models
    report("backend", timed(build(boto3.Session), n), timed(build(boto_session), n))


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


if __name__ == "__main__":
    main()
