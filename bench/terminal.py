"""The browser terminal gateway: 50 concurrent WebSocket terminals, each echoing keystrokes.

Run: `python -m bench.terminal [--n 50] [--keys 30]` (as root, with bubblewrap; PostgreSQL and Redis as for the
other benches).

A fresh migrated database, moto's server in its own process, n students with running workspaces, the local runtime and
the gateway each in their own process (`python -m provisioning.runtime`, `python -m provisioning.gateway`, as make
run starts them). n browser-less WebSocket clients (aiohttp) open terminals at once with one-time tickets, wait for
the prompt, then type `--keys` keystrokes one at a time, each timed from send to its echo on the screen.
Baseline, in the same run: the same keystrokes over direct SSH sessions to the runtime (asyncssh, a PTY), so the
ratio shows what the gateway adds. Memory: the gateway's RSS before the terminals open and with all n open,
per session. CPU: the process CPU time (/proc) the gateway, the runtime and this client each used while the
terminals typed, per keystroke, and the 1-minute load average then: the latency of 50 terminals typing at once on a
shared 2-core machine follows its load, the CPU a keystroke costs does not. Prints p50/p99 and PASS/FAIL against
the targets (p99 under 50 ms, under 2 MB per session); writes bench/out/terminal.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncssh
import boto3
from redis import Redis

from bench.runtime import pct, rss_kb, seed_rows, spawn_listening, start_runtime
from bench.services import admin_url, fresh_database, redis_server, with_db
from classroom.db import make_engine, make_session_factory
from classroom.services.terminal import Mode, Ticket, issue_ticket
from dev.services import free_port
from provisioning.aws import AwsBackend
from provisioning.simulated import seed_simulated_aws

OUT = Path(__file__).resolve().parent / "out" / "terminal.json"
ORIGIN = "http://127.0.0.1:5000"
SECRET = "bench-" + "x" * 40  # the runtime's and the gateway's (the course CA is stored under it)


def start_moto() -> tuple[Any, int]:
    """moto's server in its own process, not a thread of this one: the runtime's sync pass describes every instance
    every 2 s (~70 ms of moto's CPU for 50 instances here), which on a thread here would hold this process's GIL
    and stop the clients' clocks from reading an echo that has arrived, inflating the very figures measured."""
    port = free_port(0)
    return spawn_listening("moto.server", dict(os.environ), port, ("-H", "127.0.0.1", "-p", str(port))), port


def start_gateway(url: str, redis_url: str, backend: AwsBackend, root: Path, ssh_port: int) -> tuple[Any, int]:
    """`python -m provisioning.gateway`, listening once this returns."""
    port = free_port(0)
    env = {**os.environ, "CWC_ENV": "development", "CWC_SECRET_KEY": SECRET, "DATABASE_URL": url,
           "REDIS_URL": redis_url, "CWC_AWS_ENDPOINT_URL": backend.ec2.meta.endpoint_url, "CWC_DATA_DIR": str(root),
           "CWC_RUNTIME_SSH_PORT": str(ssh_port), "CWC_GATEWAY_PORT": str(port), "CWC_BASE_URL": ORIGIN}  # fmt: skip
    return spawn_listening("provisioning.gateway", env, port), port


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Typing:
    """The typing phase, from the moment every terminal is ready to the last echo: the CPU time the gateway, the
    runtime and this client used in it (CPU per keystroke holds up when the machine is loaded; latency does not)."""

    def __init__(self, parties: int, pids: dict[str, int]) -> None:
        self.ready, self.left, self.pids = asyncio.Barrier(parties), parties, pids
        self.cpu: dict[str, float] = {}
        self.load: list[float] = []

    def _sample(self, sign: float) -> None:
        for name, pid in self.pids.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + sign * cpu_s(pid)
        self.load.append(os.getloadavg()[0])

    async def start(self) -> None:
        if self.ready.n_waiting == self.ready.parties - 1:  # the last to arrive: everyone types from now on
            self._sample(-1)
        await self.ready.wait()

    def done(self) -> None:
        self.left -= 1
        if not self.left:
            self._sample(+1)


async def _until(read: Any, text: bytes, seen: bytearray) -> None:
    while text not in seen:
        seen += await read()


async def typed_over_gateway(
    http: aiohttp.ClientSession, port: int, ticket: str, keys: int, ready: Typing
) -> list[float]:
    """Open a terminal, wait for the prompt and for every other terminal, then time each keystroke's echo."""
    ws = await http.ws_connect(f"http://127.0.0.1:{port}/terminal?ticket={ticket}", headers={"Origin": ORIGIN})

    async def read() -> bytes:
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                return bytes(msg.data)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"terminal closed: {msg.type}")

    seen = bytearray()
    await asyncio.wait_for(_until(read, b"$ ", seen), 60)
    await ready.start()
    times = []
    for i in range(keys):
        char = bytes([ord("a") + i % 26])
        seen.clear()
        t0 = time.perf_counter()
        await ws.send_bytes(char)
        await asyncio.wait_for(_until(read, char, seen), 10)
        times.append(time.perf_counter() - t0)
    ready.done()
    await ws.close()
    return times


async def typed_over_ssh(ssh_port: int, login: str, key: asyncssh.SSHKey, keys: int, ready: Typing) -> list[float]:
    """The baseline: the same keystrokes on a direct SSH session with a PTY."""
    async with asyncssh.connect("127.0.0.1", ssh_port, username=login, client_keys=[key], known_hosts=None,
                                agent_path=None, config=None) as conn:  # fmt: skip
        proc = await conn.create_process(term_type="xterm", encoding=None)
        seen = bytearray()
        await asyncio.wait_for(_until(lambda: proc.stdout.read(4096), b"$ ", seen), 60)
        await ready.start()
        times = []
        for i in range(keys):
            char = bytes([ord("a") + i % 26])
            seen.clear()
            t0 = time.perf_counter()
            proc.stdin.write(char)
            await asyncio.wait_for(_until(lambda: proc.stdout.read(4096), char, seen), 10)
            times.append(time.perf_counter() - t0)
        ready.done()
        proc.close()
        return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--keys", type=int, default=30)
    args = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        os.environ[name] = value
    os.environ["CWC_SECRET_KEY"] = SECRET  # bench.runtime's runtime process reads it from the environment
    moto, mport = start_moto()
    root = Path(tempfile.mkdtemp(prefix="cwc-bench-terminal-", dir="/tmp"))
    root.chmod(0o711)
    try:
        backend = AwsBackend(boto3.Session(), region="us-east-1", bucket="cwc-bench", instance_profile="cwc-workspace",
                             endpoint_url=f"http://127.0.0.1:{mport}")  # fmt: skip
        seed_simulated_aws(backend)
        redis_url = with_db(redis_server(), 14)
        with fresh_database(admin_url(), f"cwc_bench_terminal_{os.getpid()}") as url:
            engine = make_engine(url)
            try:
                return run(args, make_session_factory(engine), backend, root, url, redis_url)
            finally:
                engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        moto.terminate()
        moto.wait(20)


def run(args: argparse.Namespace, sessions: Any, backend: AwsBackend, root: Path, url: str, redis_url: str) -> int:
    rows = seed_rows(sessions, backend, args.n)
    redis = Redis.from_url(redis_url)
    runtime, ssh_port, _env = start_runtime(url, backend, root)
    gateway = None
    try:
        time.sleep(3)  # one sync pass has seen the instances
        gateway, port = start_gateway(url, redis_url, backend, root, ssh_port)
        keys = [asyncssh.import_private_key(r["key"]) for r in rows]

        direct_typing = Typing(len(rows), {"runtime": runtime.pid, "client": os.getpid()})

        async def direct() -> list[list[float]]:
            return list(await asyncio.gather(*(typed_over_ssh(ssh_port, f"ws{r['ws']}", k, args.keys, direct_typing)
                                               for r, k in zip(rows, keys, strict=True))))  # fmt: skip

        baseline = asyncio.run(direct())
        before_kb = rss_kb(gateway.pid)
        tickets = [issue_ticket(redis, Ticket(person_id=r["person"], person_name=r["name"], course_id=r["course"],
                                              workspace_id=r["ws"], owner_person_id=r["person"], mode=Mode.SHELL,
                                              staff=False)) for r in rows]  # fmt: skip
        peak: dict[str, int] = {}

        typing = Typing(len(tickets), {"gateway": gateway.pid, "runtime": runtime.pid, "client": os.getpid()})

        async def through_gateway() -> list[list[float]]:
            async with aiohttp.ClientSession() as http:
                tasks = [asyncio.ensure_future(typed_over_gateway(http, port, t, args.keys, typing)) for t in tickets]
                while not all(t.done() for t in tasks):  # the gateway's memory with every terminal open
                    peak["kb"] = max(peak.get("kb", 0), rss_kb(gateway.pid))
                    await asyncio.sleep(0.2)
                return [t.result() for t in tasks]

        t0 = time.perf_counter()
        through = asyncio.run(through_gateway())
        wall = time.perf_counter() - t0
    finally:  # the runtime ends its sandboxes on SIGTERM
        if gateway is not None:
            gateway.terminate()
            gateway.wait(20)
        runtime.terminate()
        runtime.wait(20)
    gw = [x for per in through for x in per]
    base = [x for per in baseline for x in per]
    per_session_mb = max(0, peak.get("kb", before_kb) - before_kb) / 1024 / args.n
    typed = args.n * args.keys

    def per_key(cpu: dict[str, float]) -> dict[str, float]:
        return {name: round(1000 * seconds / typed, 3) for name, seconds in cpu.items()}

    figures = {
        "terminals": args.n, "keystrokes_each": args.keys, "wall_s": round(wall, 2),
        "gateway_keystroke_ms": {"p50": round(pct(gw, 50), 2), "p99": round(pct(gw, 99), 2)},
        "direct_ssh_keystroke_ms": {"p50": round(pct(base, 50), 2), "p99": round(pct(base, 99), 2)},
        "ratio_p50_gateway_over_direct": round(pct(gw, 50) / pct(base, 50), 2),
        "ratio_p99_gateway_over_direct": round(pct(gw, 99) / pct(base, 99), 2),
        "gateway_rss_mb_idle": round(before_kb / 1024, 1), "gateway_rss_mb_peak": round(peak.get("kb", 0) / 1024, 1),
        "gateway_mb_per_session": round(per_session_mb, 2),
        "cpu_ms_per_keystroke": per_key(typing.cpu), "direct_ssh_cpu_ms_per_keystroke": per_key(direct_typing.cpu),
        "load_avg_1m_while_typing": [round(x, 2) for x in typing.load], "load_avg_1m": os.getloadavg()[0],
    }  # fmt: skip
    verdicts = {"p99 keystroke under 50 ms": pct(gw, 99) < 50, "under 2 MB per session": per_session_mb < 2}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"figures": figures, "verdicts": verdicts}, indent=2))
    print(json.dumps(figures, indent=2))
    for name, passed in verdicts.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
