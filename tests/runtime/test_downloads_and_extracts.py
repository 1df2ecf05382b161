"""Downloads (curl, wget) and archive extractions (unzip, tar x, or any program) inside a real sandbox become
`download` and `extract` activity events, only when the course collects activity; sftp-server's log gives one
`transfer` event per file."""

from __future__ import annotations

import asyncio
import hashlib

import asyncssh

from tests.runtime.conftest import ssh_run
from tests.runtime.test_activity import _collect, _events, _with_token, reporting  # noqa: F401 - the fixture
from tests.support.budget import make_policy

SERVE = (  # a loopback HTTP server inside the sandbox (its own network namespace: nothing else is reachable)
    "set -e; mkdir -p /tmp/site/pkg/sub && cd /tmp/site && printf 'a\\n' > pkg/sub/a.txt && "
    "printf 'b\\nb\\n' > pkg/sub/b.txt && printf 'c\\n' > pkg/c.txt && (cd pkg && /usr/bin/zip -qr ../pkg.zip . && "
    "/usr/bin/tar czf ../pkg.tgz sub) && (python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 &) && "
    "for i in $(seq 50); do /usr/bin/curl -sf -o /dev/null http://127.0.0.1:8765/ && break; sleep 0.1; done; cd ~; "
)


def test_curl_wget_unzip_and_tar_become_download_and_extract_events(reporting, make_workspace, session, course):  # noqa: F811
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)
    port = reporting.rt.port
    assert ssh_run(port, emily.login, [emily.key], "true")[0] == 0  # the sandbox exists, its tool log is armed
    _collect(reporting)  # the first scan: the state every later scan compares with
    script = SERVE + (
        "curl -sS -o data.zip 'http://127.0.0.1:8765/pkg.zip?token=secret' && wget -q http://127.0.0.1:8765/pkg.tgz"
        " && unzip -q data.zip -d unzipped && mkdir untarred && tar xzf pkg.tgz -C untarred && tar tzf pkg.tgz"
        " >/dev/null && echo done"
    )
    code, out, err = ssh_run(port, emily.login, [emily.key], script)
    assert (code, out) == (0, "done\n"), err
    home = reporting.rt.home(emily.workspace.instance_id)
    _collect(reporting)
    events = _events(session, emily.workspace.id)
    downloads = sorted((e.details for e in events if e.kind == "download"), key=lambda d: d["tool"])
    zip_bytes, tgz_bytes = (home / "data.zip").read_bytes(), (home / "pkg.tgz").read_bytes()
    assert downloads == [
        {"tool": "curl", "url": "http://127.0.0.1:8765/pkg.zip", "path": "data.zip", "bytes": len(zip_bytes),
         "sha256": hashlib.sha256(zip_bytes).hexdigest(), "exit": 0},
        {"tool": "wget", "url": "http://127.0.0.1:8765/pkg.tgz", "path": "pkg.tgz", "bytes": len(tgz_bytes),
         "sha256": hashlib.sha256(tgz_bytes).hexdigest(), "exit": 0},
    ]  # fmt: skip  # the query string (a token) is never recorded
    extracts = sorted((e.details for e in events if e.kind == "extract"), key=lambda d: d["tool"])
    assert extracts == [
        {"tool": "tar", "archive": "pkg.tgz", "dest": "untarred", "files": 2, "exit": 0, "seen": "command",
         "paths": ["untarred/sub/a.txt", "untarred/sub/b.txt"]},
        {"tool": "unzip", "archive": "data.zip", "dest": "unzipped", "files": 3, "exit": 0, "seen": "command",
         "paths": ["unzipped/c.txt", "unzipped/sub/a.txt", "unzipped/sub/b.txt"]},
    ]  # fmt: skip
    before = len(events)
    _collect(reporting)  # the same runs are never reported twice
    assert len(_events(session, emily.workspace.id)) == before


def test_an_extraction_by_another_program_is_seen_from_the_files(reporting, make_workspace, session, course):  # noqa: F811
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)
    port = reporting.rt.port
    make = "mkdir -p p/sub && echo 1 > p/sub/x.py && echo 2 > p/sub/y.py && cd p && /usr/bin/zip -qr ../hw.zip sub"
    assert ssh_run(port, emily.login, [emily.key], f"cd /tmp && {make} && cp ../hw.zip ~/hw.zip")[0] == 0
    _collect(reporting)
    unpack = "python3 -c \"import zipfile; zipfile.ZipFile('hw.zip').extractall('starter')\""
    assert ssh_run(port, emily.login, [emily.key], unpack)[0] == 0
    _collect(reporting)
    (extract,) = [e.details for e in _events(session, emily.workspace.id) if e.kind == "extract"]
    assert extract == {"tool": "unzip", "archive": "hw.zip", "dest": "starter", "files": 2, "seen": "files",
                       "paths": ["starter/sub/x.py", "starter/sub/y.py"]}  # fmt: skip


def test_nothing_is_recorded_when_the_course_does_not_collect(reporting, make_workspace, session, course):  # noqa: F811
    make_policy(session, course, integrity={"plagiarism_support": False})
    emily = make_workspace()
    _with_token(session, emily)
    script = SERVE + "curl -sS -o data.zip http://127.0.0.1:8765/pkg.zip && unzip -q data.zip -d out && ls out"
    code, out, err = ssh_run(reporting.rt.port, emily.login, [emily.key], script)
    assert code == 0 and "c.txt" in out, err  # the programs work the same
    tools = reporting.rt.root / "tools" / emily.workspace.instance_id
    assert not (tools / "tools.jsonl").exists()  # the recorders had nowhere to write
    _collect(reporting)
    assert _events(session, emily.workspace.id) == []


def test_sftp_uploads_and_downloads_are_one_transfer_event_per_file(reporting, make_workspace, session, course,  # noqa: F811
                                                                    tmp_path):  # fmt: skip
    make_policy(session, course, integrity={"plagiarism_support": True})
    emily = make_workspace()
    _with_token(session, emily)
    (tmp_path / "model.py").write_text("print('ok')\n")

    async def transfer() -> None:
        async with asyncssh.connect("127.0.0.1", reporting.rt.port, username=emily.login, client_keys=[emily.key],
                                    known_hosts=None, agent_path=None, config=None) as conn, \
                conn.start_sftp_client() as sftp:  # fmt: skip
            await sftp.put(str(tmp_path / "model.py"), "model.py")
            await sftp.get("model.py", str(tmp_path / "back.py"))

    asyncio.run(transfer())
    _collect(reporting)
    moved = [e.details for e in _events(session, emily.workspace.id) if e.kind == "transfer"]
    login = next(e.details for e in _events(session, emily.workspace.id) if e.kind == "ssh_login")
    assert sorted((m["direction"], m["path"], m["bytes"]) for m in moved) == [
        ("download", "model.py", 12),
        ("upload", "model.py", 12),
    ]
    assert {(m["protocol"], m["who"], m["session"]) for m in moved} == {("sftp", login["who"], login["session"])}
