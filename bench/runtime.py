"""The local workspace runtime: 50 workspaces, then 50 concurrent SSH logins each running a command.

Run: `python -m bench.runtime [--n 50]` (as root, with bubblewrap; PostgreSQL as for the other benches).

A fresh migrated database (`cwc_bench_runtime_<pid>`, dropped at the end), an in-process moto server, 50
students each with a generated key and a running workspace (a real moto instance with rendered user data), and
the runtime in its own process (`python -m provisioning.runtime`, as make run starts it). "Start" is what the
runtime does the first time a workspace is used (one login after another): read its facts
(DB + EC2), create its home and private /etc, and run a first sandboxed command. Then 50 asyncssh clients log in
at once (each with its own key) and run `echo ok`: login time (TCP to authenticated) and the command's round
trip. Then the sim host (`python -m provisioning.sim_host`, as make run starts it) plays the agents' heartbeats
from the runtime's status files (started after the logins: its first beats read 50 user data from moto, which
slowed the runtime's fact loading into refused logins).

Memory per idle workspace (no session open), its agent included, is measured, not assumed: what its sandbox
processes hold once every session has ended (/proc), plus the runtime's and the sim host's RSS divided by the
workspaces (one process each serves all: connections, status passes, heartbeats, leases), plus the peak RSS of the
agent's scan of one home (bwrap, its init and the agent's Python, as the runtime runs it each activity pass; the
largest over a sample of workspaces, sampled from /proc every 2 ms). An idle logged-in shell is measured apart as
the RSS of its sandbox's processes (bwrap, its namespace init, bash). Prints p50/p99 and PASS/FAIL against the
targets (all logins succeed, p99 login under 1 s, an idle workspace with its agent under 30 MB, at the scan's
peak); writes bench/out/runtime.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncssh
import boto3
from moto.server import ThreadedMotoServer

from bench.services import admin_url, fresh_database
from classroom.db import make_engine, make_session_factory, utcnow
from dev.services import free_port, wait_listening
from provisioning.aws import AwsBackend
from provisioning.runtime.activity import scan_argv
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.sandbox import arm_tool_log
from provisioning.runtime.service import LocalRuntime
from provisioning.simulated import seed_simulated_aws
from provisioning.ssh_keys import add_key, generate_key_pair

OUT = Path(__file__).resolve().parent / "out" / "runtime.json"
SCAN_SAMPLE = 5  # workspaces whose agent scan is measured (each a sandbox start: ~0.5 s)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def seed_rows(sessions: Any, backend: AwsBackend, n: int) -> list[dict[str, Any]]:
    """n students with keys and running workspaces: workspace, person, name, course and private key of each."""
    from tests.support.budget import make_running
    from tests.support.factories import make_course, make_person
    from tests.support.outage import launch_instance

    out = []
    with sessions() as session:
        course = make_course(session)
        for i in range(n):
            person = make_person(session, course, name=f"Student {i}")
            private, public = generate_key_pair(f"s{i}")
            add_key(session, person_id=person.id, course_id=course.id, public_key=public, source="generated")
            ws = make_running(session, course.id, person.id, utcnow(), link=f"hw{i}")
            session.flush()
            ws.instance_id = launch_instance(backend, ws.id, f"tok-{ws.id}", grace_s=3600)
            out.append({"ws": ws.id, "person": person.id, "name": person.name, "course": course.id, "key": private})
        session.commit()
    return out


def seed(sessions: Any, backend: AwsBackend, n: int) -> list[tuple[str, str]]:
    """n students with keys and running workspaces; returns (login, private key) pairs."""
    return [(f"ws{r['ws']}", r["key"]) for r in seed_rows(sessions, backend, n)]


async def login_and_run(port: int, login: str, key: asyncssh.SSHKey) -> tuple[float, float]:
    """(login seconds, command round-trip seconds)."""
    t0 = time.perf_counter()
    async with asyncssh.connect("127.0.0.1", port, username=login, client_keys=[key], known_hosts=None,
                                agent_path=None, config=None, connect_timeout=60) as conn:  # fmt: skip
        t1 = time.perf_counter()
        res = await conn.run("echo ok", check=True)
        assert res.stdout == "ok\n"
        return t1 - t0, time.perf_counter() - t1


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def children(pid: int) -> list[int]:
    """A process's direct children (from /proc)."""
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        out += [int(c) for c in _read(f"/proc/{pid}/task/{task}/children").split()]
    return out


def rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants, in kB (from /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(next(line.split()[1] for line in _read(f"/proc/{p}/status").splitlines()
                              if line.startswith("VmRSS")))  # fmt: skip
            todo += children(p)
        except (OSError, StopIteration):
            pass
    return total


async def idle_shell_rss(runtime_pid: int, port: int, login: str, key: asyncssh.SSHKey) -> int:
    """Log in to a shell, leave it idle, and measure its sandbox's processes (the runtime's children)."""
    async with asyncssh.connect("127.0.0.1", port, username=login, client_keys=[key], known_hosts=None,
                                agent_path=None, config=None) as conn:  # fmt: skip
        proc = await conn.create_process(term_type="xterm")
        await asyncio.sleep(1.5)
        kb = sum(rss_kb(pid) for pid in children(runtime_pid))
        proc.close()
        return kb


def peak_tree_kb(argv: list[str], options: dict[str, Any], stdin: bytes) -> int:
    """Run a command to its end; the peak RSS of its process tree, sampled from /proc every 2 ms, in kB.

    Not getrusage(RUSAGE_CHILDREN): Linux keeps a child's high-water RSS across exec, so a child forked from this
    (moto-carrying, ~300 MB) process would report this process's size, not the command's."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # a pipe left unread could stall it
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err, **options)
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
        peak = 0
        while proc.poll() is None:
            peak = max(peak, rss_kb(proc.pid))
            time.sleep(0.002)
        out.seek(0), err.seek(0)
        if proc.returncode != 0 or not out.read(10).startswith(b'{"events"'):  # a failed scan measures nothing
            raise SystemExit(f"the agent's scan failed: {err.read().decode(errors='replace')[-500:]}")
    return peak


def agent_scan_kb(sessions: Any, backend: AwsBackend, root: Path, logins: list[str]) -> list[int]:
    """The agent's scan of each of these workspaces' homes, run as the runtime runs it: its peak RSS (kB) each."""
    rt = LocalRuntime(FactsLoader(sessions, backend), root)
    out = []
    for login in logins:
        facts = rt.loader.load(login)
        assert facts is not None
        spec = rt.sandbox_for(facts)
        arm_tool_log(spec.tool_log, True)  # as for a course that collects activity: the agent's full scan
        argv, options = scan_argv(spec)
        out.append(peak_tree_kb(argv, options, b"{}"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        os.environ[name] = value
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    root = Path(tempfile.mkdtemp(prefix="cwc-bench-runtime-", dir="/tmp"))
    root.chmod(0o711)
    try:
        host, mport = moto.get_host_and_port()
        backend = AwsBackend(boto3.Session(), region="us-east-1", bucket="cwc-bench", instance_profile="cwc-workspace",
                             endpoint_url=f"http://{host}:{mport}")  # fmt: skip
        seed_simulated_aws(backend)
        with fresh_database(admin_url(), f"cwc_bench_runtime_{os.getpid()}") as url:
            engine = make_engine(url)
            try:
                return run(args.n, make_session_factory(engine), backend, root, url)
            finally:
                engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        moto.stop()


def spawn_listening(module: str, env: dict[str, str], port: int, args: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """`python -m <module> [args]` (as make run starts it), returned once it accepts connections on `port`."""
    proc = subprocess.Popen([sys.executable, "-m", module, *args], env=env, stderr=subprocess.DEVNULL)
    if wait_listening(proc, port):
        return proc
    proc.kill()
    raise SystemExit(f"{module} did not start")


def start_runtime(url: str, backend: AwsBackend, root: Path) -> tuple[subprocess.Popen[bytes], int, dict[str, str]]:
    """`python -m provisioning.runtime`, listening once this returns; its port and environment."""
    port = free_port(0)
    env = {**os.environ, "CWC_ENV": "development", "CWC_SECRET_KEY": "bench-" + "x" * 40, "DATABASE_URL": url,
           "CWC_AWS_ENDPOINT_URL": backend.ec2.meta.endpoint_url, "CWC_DATA_DIR": str(root),
           "CWC_RUNTIME_SSH_PORT": str(port)}  # fmt: skip
    return spawn_listening("provisioning.runtime", env, port), port, env


def start_sim_host(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`python -m provisioning.sim_host` beside the runtime (the same environment: it reads the runtime's status
    files), beating every 2 s; its heartbeats go to an agent URL nothing answers, so each lease stands."""
    return subprocess.Popen([sys.executable, "-m", "provisioning.sim_host"], env={**env, "CWC_SIM_TICK_S": "2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def run(n: int, sessions: Any, backend: AwsBackend, root: Path, url: str) -> int:
    users = seed(sessions, backend, n)
    keys = [asyncssh.import_private_key(k) for _, k in users]
    runtime, port, env = start_runtime(url, backend, root)
    sim_host: subprocess.Popen[bytes] | None = None
    time.sleep(3)  # one sync pass has seen the instances
    try:
        starts = []
        for (login, _), key in zip(users, keys, strict=True):
            t0 = time.perf_counter()
            asyncio.run(login_and_run(port, login, key))  # the first use: facts, home, /etc, a sandboxed command
            starts.append(time.perf_counter() - t0)

        async def burst() -> list[Any]:
            return await asyncio.gather(*(login_and_run(port, u[0], k) for u, k in zip(users, keys, strict=True)),
                                        return_exceptions=True)  # fmt: skip

        t0 = time.perf_counter()
        results = asyncio.run(burst())
        wall = time.perf_counter() - t0
        ok = [r for r in results if isinstance(r, tuple)]
        idle_kb = asyncio.run(idle_shell_rss(runtime.pid, port, users[0][0], keys[0]))
        sim_host = start_sim_host(env)  # after the logins: its first beats (50 user data reads) slow moto down
        time.sleep(8)  # every session has ended; sync passes and beats have run since
        no_session_kb = sum(rss_kb(pid) for pid in children(runtime.pid))  # all workspaces' sandboxes: none
        runtime_kb, sim_host_kb = rss_kb(runtime.pid), rss_kb(sim_host.pid)
        if sim_host.poll() is not None:
            raise SystemExit("the sim host ended")
        scans_kb = agent_scan_kb(sessions, backend, root, [login for login, _ in users[:SCAN_SAMPLE]])
    finally:
        for proc in (sim_host, runtime):
            if proc is not None:
                proc.terminate()
                proc.wait(20)
    per_idle_kb = (no_session_kb + runtime_kb + sim_host_kb) / n + max(scans_kb)
    logins, rtts = [r[0] for r in ok], [r[1] for r in ok]
    figures = {
        "workspaces": n, "logins_ok": len(ok), "logins_failed": len(results) - len(ok),
        "burst_wall_s": round(wall, 3),
        "login_ms": {"p50": round(pct(logins, 50), 1), "p99": round(pct(logins, 99), 1)} if ok else {},
        "command_rtt_ms": {"p50": round(pct(rtts, 50), 1), "p99": round(pct(rtts, 99), 1)} if ok else {},
        "start_ms": {"p50": round(pct(starts, 50), 1), "p99": round(pct(starts, 99), 1),
                     "mean": round(1000 * statistics.mean(starts), 1)},
        "idle_workspace_mb": {
            "total_with_agent": round(per_idle_kb / 1024, 1),
            "between_scans": round((per_idle_kb - max(scans_kb)) / 1024, 1),
            "sandbox_processes": round(no_session_kb / n / 1024, 2),
            "runtime_share": round(runtime_kb / n / 1024, 2),
            "sim_host_share": round(sim_host_kb / n / 1024, 2),
            "agent_scan_peak": round(max(scans_kb) / 1024, 1),
            "agent_scan_peak_mean": round(statistics.mean(scans_kb) / 1024, 1),
        },
        "idle_shell_session_mb": round(idle_kb / 1024, 1),
        "runtime_process_mb_after": round(runtime_kb / 1024, 1),
        "sim_host_process_mb_after": round(sim_host_kb / 1024, 1),
    }  # fmt: skip
    verdicts = {
        "all logins succeed": len(ok) == n,
        "p99 login under 1 s": bool(ok) and pct(logins, 99) < 1000,
        "idle workspace (its agent included) under 30 MB": per_idle_kb / 1024 < 30,
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"figures": figures, "verdicts": verdicts}, indent=2))
    print(json.dumps(figures, indent=2))
    print(f"idle workspace, its agent included: {per_idle_kb / 1024:.1f} MB (target 30 MB)")
    for name, passed in verdicts.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
