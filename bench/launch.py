"""Full LTI launches per second against the tool under gunicorn, with a bare endpoint as the ceiling.

    python -m bench.launch [--n 200]

Starts a fresh PostgreSQL database, a real LTI platform (tests/support/platform.py) and gunicorn serving the
app plus one extra route, /bench/bare (same app, same hooks, no work). A launch is the browser's two requests
(OIDC login, id_token POST); the platform's RSA signing between them is not timed. Prints req/s, p50/p99,
the ratio launch/bare, and how often the platform's JWKS was downloaded (target: once per platform key).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import redis
import requests

from classroom import schema
from classroom.db import make_engine, make_session_factory
from tests.support.lti import register
from tests.support.platform import TestPlatform

PG_ADMIN = os.environ.get("CWC_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CWC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/12"


def bench_app():  # type: ignore[no-untyped-def]
    """The gunicorn factory: the real app plus the bare ceiling endpoint."""
    from lti_app import create_app

    app = create_app()
    app.add_url_rule("/bench/bare", "bench_bare", lambda: "ok")
    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database() -> tuple[str, str]:
    name = f"cwc_bench_launch_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlparse(PG_ADMIN)._replace(path="/" + name).geturl()
    schema.upgrade(make_engine(url))
    return name, url


def _gunicorn(port: int, db_url: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        CWC_ENV="development",
        CWC_SECRET_KEY=secrets.token_urlsafe(40),
        CWC_BASE_URL=f"http://127.0.0.1:{port}",
        DATABASE_URL=db_url,
        REDIS_URL=REDIS_URL,
        CWC_LOG_LEVEL="WARNING",
    )
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        "--worker-class",
        "gthread",
        "--log-level",
        "warning",
        "bench.launch:bench_app()",
    ]
    proc = subprocess.Popen(cmd, env=env)
    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def one_launch(base: str, platform: TestPlatform, n: int) -> float:
    """One browser's login and launch; returns the seconds spent in the two requests."""
    browser = requests.Session()
    user = platform.user("student", n)
    params = {
        "iss": platform.issuer,
        "login_hint": user.sub,
        "target_link_uri": f"{base}/lti/launch",
        "client_id": platform.client_id,
        "lti_deployment_id": platform.deployment_id,
    }
    t0 = time.perf_counter()
    login = browser.get(f"{base}/lti/login", params=params, allow_redirects=False)
    t1 = time.perf_counter()
    query = {k: v[0] for k, v in parse_qs(urlparse(login.headers["Location"]).query).items()}
    body = platform.claims(user, nonce=query["nonce"])
    body["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = f"{base}/lti/launch"
    token = platform.sign(body)  # the platform's work: not the tool's cost
    t2 = time.perf_counter()
    done = browser.post(f"{base}/lti/launch", data={"id_token": token, "state": query["state"]}, allow_redirects=False)
    t3 = time.perf_counter()
    if login.status_code != 302 or done.status_code != 303:
        raise RuntimeError(f"launch failed: {login.status_code} {done.status_code} {done.text[:200]}")
    return (t1 - t0) + (t3 - t2)


def one_bare(session: requests.Session, base: str) -> float:
    """One request to the ceiling endpoint."""
    t0 = time.perf_counter()
    session.get(f"{base}/bench/bare").raise_for_status()
    return time.perf_counter() - t0


def measure(fn, n: int, threads: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Run fn(i) n times on `threads` threads; figures in ms and per second."""
    t0 = time.perf_counter()
    if threads == 1:
        times = [fn(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            times = list(pool.map(fn, range(n)))
    wall = time.perf_counter() - t0
    ms = sorted(t * 1000 for t in times)
    return {
        "per_s": n / wall,
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        "mean_ms": statistics.fmean(ms),
    }


def main() -> None:
    """Set up, measure, print, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    n = parser.parse_args().n
    redis.Redis.from_url(REDIS_URL).flushdb()
    name, db_url = _database()
    platform = TestPlatform(shape="canvas").serve()
    with make_session_factory(make_engine(db_url))() as session:
        register(session, platform)
    port = _free_port()
    server = _gunicorn(port, db_url)
    base = f"http://127.0.0.1:{port}"
    counter = iter(range(10_000_000))
    try:
        bare_session = requests.Session()
        for _ in range(50):
            one_bare(bare_session, base)
        for _ in range(20):
            one_launch(base, platform, next(counter))
        results = {
            "bare_sequential": measure(lambda _: one_bare(bare_session, base), n, 1),
            "bare_8": measure(lambda _: one_bare(requests.Session(), base), n, 8),
            "launch_sequential": measure(lambda _: one_launch(base, platform, next(counter)), n, 1),
            "launch_8": measure(lambda _: one_launch(base, platform, next(counter)), n, 8),
        }
        fetches_one_key = platform.jwks_fetches
        platform.rotate()
        for _ in range(20):
            one_launch(base, platform, next(counter))
        report(results, fetches_one_key, platform.jwks_fetches, n)
    finally:
        server.terminate()
        server.wait(timeout=20)
        platform.stop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(r: dict[str, dict[str, float]], fetches_one: int, fetches_two: int, n: int) -> None:
    """Print the table and verdicts; write bench/out/launch.json."""
    print(f"\nLTI launch benchmark: gunicorn gthread 2 workers x 4 threads, {n} launches per run\n")
    print(f"{'run':<20}{'per second':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for key, fig in r.items():
        print(f"{key:<20}{fig['per_s']:>12.1f}{fig['p50_ms']:>10.2f}{fig['p99_ms']:>10.2f}")
    ratio_seq = r["launch_sequential"]["p50_ms"] / r["bare_sequential"]["p50_ms"]
    ratio_8 = r["launch_8"]["p50_ms"] / r["bare_8"]["p50_ms"]
    print(f"\nlaunch / bare request (p50): sequential {ratio_seq:.2f}x, 8 concurrent {ratio_8:.2f}x  (target <= 3x)")
    print(
        f"platform JWKS downloads: {fetches_one} for {2 * n + 20} launches with one key; "
        f"{fetches_two} after the platform added a second key  (target: once per key)"
    )
    verdict = "PASS" if ratio_seq <= 3 else "MISS"
    print(f"verdicts: ratio {verdict}; JWKS {'PASS' if (fetches_one, fetches_two) == (1, 2) else 'MISS'}")
    out = Path("bench/out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "launch.json").write_text(
        json.dumps(
            {"runs": r, "ratio_sequential": ratio_seq, "ratio_8": ratio_8, "jwks_fetches": [fetches_one, fetches_two]},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
