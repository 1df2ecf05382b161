"""Agent activity: logins, file edits, git commits and scp uploads arrive in the append-only activity table,
with the workspace's token, idempotently, and only when the course's integrity setting collects them."""

from __future__ import annotations

import asyncio
import time

import asyncssh
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from classroom.db import make_session_factory
from classroom.models import ActivityEvent, Workspace
from provisioning.agent_service import token_hash
from provisioning.runtime.facts import FactsLoader
from provisioning.runtime.host import RuntimeThread
from provisioning.runtime.service import LocalRuntime
from tests.runtime.conftest import ssh_run
from tests.support.budget import make_policy
from tests.support.outage import flask_post


@pytest.fixture
def reporting(engine, backend, runtime_root, clock, client):  # type: ignore[no-untyped-def]
    rt = LocalRuntime(FactsLoader(make_session_factory(engine), backend), runtime_root, clock=clock,
                      post=flask_post(client, lambda: True))  # fmt: skip
    thread = RuntimeThread(rt, asyncssh.generate_private_key("ssh-ed25519"))
    thread.start()
    yield thread
    thread.stop()


def _with_token(session, local):  # type: ignore[no-untyped-def]
    ws = session.get(Workspace, local.workspace.id)
    ws.agent_token_hash = token_hash(f"tok-{ws.id}")  # the token launch_instance wrote into the user data
    session.commit()


def _collect(runtime) -> None:  # type: ignore[no-untyped-def]
    runtime.sync()
    runtime.call(runtime.rt.collect_all())


def _events(session, ws_id):  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(ActivityEvent).where(ActivityEvent.workspace_id == ws_id)))


def test_login_edit_commit_and_scp_upload_arrive(reporting, make_workspace, session, course, tmp_path):
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)
    port = reporting.rt.port
    script = ("echo 'x = 1' > hw.py && git init -q repo && cd repo && printf 'a\\nb\\n' > model.py && git add . && "
              "git -c user.name=Emily -c user.email=e@x commit -qm 'first model'")  # fmt: skip
    assert ssh_run(port, emily.login, [emily.key], script)[0] == 0
    (tmp_path / "data.csv").write_text("1,2\n")

    async def upload() -> None:
        async with asyncssh.connect("127.0.0.1", port, username=emily.login, client_keys=[emily.key],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            await asyncssh.scp(str(tmp_path / "data.csv"), (conn, "data.csv"))

    asyncio.run(upload())
    deadline = time.monotonic() + 20
    while True:  # the server sees the upload's logout after the client has gone
        _collect(reporting)
        events = _events(session, emily.workspace.id)
        if [e.kind for e in events].count("ssh_logout") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    kinds = sorted({e.kind for e in events})
    assert kinds == ["file_changed", "git_commit", "ssh_login", "ssh_logout", "transfer"]
    login = next(e for e in events if e.kind == "ssh_login")
    assert login.details["who"].startswith("student key SHA256:") and login.details["source_ip"] == "127.0.0.1"
    changed = {e.details["path"]: e.details for e in events if e.kind == "file_changed"}
    assert changed["hw.py"]["lines_added"] == 1 and len(changed["hw.py"]["sha256"]) == 64
    assert changed["repo/model.py"]["lines_added"] == 2 and "content" not in changed["repo/model.py"]
    (commit,) = [e.details for e in events if e.kind == "git_commit"]
    assert commit["message"] == "first model" and commit["files"] == ["model.py"] and commit["repo"] == "repo"
    (scp,) = [e.details for e in events if e.kind == "transfer"]
    assert scp == {"protocol": "scp", "direction": "upload", "path": "data.csv", "who": login.details["who"],
                   "session": scp["session"]}  # fmt: skip
    before = len(events)
    _collect(reporting)  # nothing new: nothing stored twice
    assert len(_events(session, emily.workspace.id)) == before


def test_activity_is_not_collected_when_the_course_does_not_ask(reporting, make_workspace, session, course):
    make_policy(session, course, integrity={"plagiarism_support": False})
    emily = make_workspace()
    _with_token(session, emily)
    assert ssh_run(reporting.rt.port, emily.login, [emily.key], "echo a > f")[0] == 0
    _collect(reporting)
    assert _events(session, emily.workspace.id) == []
    assert reporting.rt.activity(emily.workspace.instance_id).spool.read() == []  # sent, and dropped by the tool
    assert not (reporting.rt.root / "agent" / emily.workspace.instance_id / "scan.json").exists()  # never scanned


def test_spool_keeps_events_while_the_tool_is_down(engine, backend, runtime_root, clock, client, make_workspace,
                                                   session, course):  # fmt: skip
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)
    up = {"tool": False}
    rt = LocalRuntime(FactsLoader(make_session_factory(engine), backend), runtime_root, clock=clock,
                      post=flask_post(client, lambda: up["tool"]))  # fmt: skip
    thread = RuntimeThread(rt, asyncssh.generate_private_key("ssh-ed25519"))
    thread.start()
    try:
        assert ssh_run(rt.port, emily.login, [emily.key], "echo a > f")[0] == 0
        _collect(thread)
        waiting = len(rt.activity(emily.workspace.instance_id).spool.read())
        assert waiting >= 2 and _events(session, emily.workspace.id) == []
        up["tool"] = True
        _collect(thread)
        assert len(_events(session, emily.workspace.id)) >= waiting
    finally:
        thread.stop()


def _post(client, token, body, **kw):  # type: ignore[no-untyped-def]
    return client.post("/api/agent/activity", json=body, headers={"Authorization": f"Bearer {token}"}, **kw)


def test_bad_batches_are_refused_and_store_nothing(client, make_workspace, session, course, engine):
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily, david = make_workspace(), make_workspace("David Kim", link="hw2")
    _with_token(session, emily)
    ws_id = emily.workspace.id
    good = {"id": "a" * 32, "kind": "file_changed", "at": 1_700_000_000, "details": {"path": "x"}}
    assert _post(client, "wrong", {"workspace_id": ws_id, "events": [good]}).status_code == 403
    assert _post(client, f"tok-{ws_id}", {"workspace_id": david.workspace.id, "events": [good]}).status_code == 403
    assert client.post("/api/agent/activity", data="{not json", headers={"Authorization": f"Bearer tok-{ws_id}",
                       "Content-Type": "application/json"}).status_code == 400  # fmt: skip
    bad = [good, {**good, "id": "b" * 32, "kind": "keylogger"}]
    assert _post(client, f"tok-{ws_id}", {"workspace_id": ws_id, "events": bad}).status_code == 400
    huge = {**good, "details": {"blob": "x" * 10_000}}
    assert _post(client, f"tok-{ws_id}", {"workspace_id": ws_id, "events": [huge]}).status_code == 400
    big = {"workspace_id": ws_id, "events": [good], "pad": "x" * (1024 * 1024 + 1)}
    assert _post(client, f"tok-{ws_id}", big).status_code == 413
    assert session.scalar(select(func.count()).select_from(ActivityEvent)) == 0
    twice = {"workspace_id": ws_id, "events": [good, good]}
    assert _post(client, f"tok-{ws_id}", twice).get_json() == {"stored": 1, "duplicates": 0, "not_collected": 0}
    assert _post(client, f"tok-{ws_id}", twice).get_json() == {"stored": 0, "duplicates": 1, "not_collected": 0}
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE activity_events SET kind = 'x'"))


def test_ec2_agent_collects_only_when_the_heartbeat_says_the_course_does(client, make_workspace, session, course,
                                                                         tmp_path):  # fmt: skip
    import subprocess

    from provisioning.agent.cwc_agent import LeaseKeeper, Spool, collect_activity, heartbeat

    policy = make_policy(session, course, integrity={"plagiarism_support": False})
    emily = make_workspace()
    _with_token(session, emily)
    home = tmp_path / "home"
    (home / "proj").mkdir(parents=True)
    (home / "proj" / "a.py").write_text("print(1)\n")
    subprocess.run("git init -q && git add . && git -c user.name=E -c user.email=e@x commit -qm agent-commit",
                   shell=True, cwd=home / "proj", check=True)  # fmt: skip
    cfg = {"url": "http://localhost/api/agent/heartbeat", "token": f"tok-{emily.workspace.id}",
           "workspace_id": emily.workspace.id, "user": "ubuntu", "home": str(home)}  # fmt: skip
    post = flask_post(client, lambda: True)

    class NoPoweroff:
        def schedule(self, at):  # type: ignore[no-untyped-def]
            pass

        def now(self, reason):  # type: ignore[no-untyped-def]
            raise AssertionError(reason)

    def run_git(repo, args):  # type: ignore[no-untyped-def]  # the test runs git as itself (no runuser here)
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout

    def one_minute() -> int:
        answer: dict[str, object] = {}
        body = {"workspace_id": emily.workspace.id, "ssh_sessions": 1}
        heartbeat(cfg, LeaseKeeper(NoPoweroff()), body, time.time(), post=post, write_keys=lambda *a: None,
                  seen=answer)  # fmt: skip
        if answer.get("collect_activity") is True:
            return int(collect_activity(cfg, Spool(str(tmp_path / "spool.jsonl")), str(tmp_path / "scan.json"),
                                        time.time(), run_git, post=post, ec2=False))  # fmt: skip  # sshd/Jupyter:
            # this machine's own logs and processes are no workspace's (tests/runtime/test_ec2_sources.py)
        return -1

    assert one_minute() == -1 and not (tmp_path / "scan.json").exists()
    policy.integrity = {"plagiarism_support": True}
    session.commit()
    assert one_minute() == 2
    kinds = sorted(e.kind for e in _events(session, emily.workspace.id))
    assert kinds == ["file_changed", "git_commit"]


def test_jupyter_running_is_reported_when_it_starts(reporting, make_workspace, session, course):
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)

    async def with_jupyter() -> None:
        async with asyncssh.connect("127.0.0.1", reporting.rt.port, username=emily.login, client_keys=[emily.key],
                                    known_hosts=None, agent_path=None, config=None) as conn:  # fmt: skip
            proc = await conn.create_process("exec -a jupyter-lab sleep 60")
            await asyncio.sleep(1.0)
            await asyncio.get_running_loop().run_in_executor(None, _collect, reporting)
            proc.close()

    asyncio.run(with_jupyter())
    jupyter = [e.details for e in _events(session, emily.workspace.id) if e.kind == "jupyter"]
    assert jupyter == [{"running": True}]
