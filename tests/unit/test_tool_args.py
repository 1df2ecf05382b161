"""Pure pieces of download and extraction reporting: what a curl, wget, tar or unzip command line did, the URL
as recorded, which new files an archive explains, and the spool's bound."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from provisioning.agent.cwc_agent import Spool, event
from provisioning.agent.cwc_scp import scp_events
from provisioning.agent.cwc_toolargs import (
    clean_url,
    curl_downloads,
    scp_transfer,
    tar_extraction,
    unzip_extraction,
    wget_downloads,
)
from provisioning.agent.cwc_toolwrap import ssh_client
from provisioning.agent.cwc_transfers import file_extractions, read_tool_log, tool_events

HOME = "/home/ubuntu"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-sSLo", "data.zip", "http://h/d.zip"], [("http://h/d.zip", f"{HOME}/data.zip")]),
        (["-O", "https://h/p/f.tgz", "-s"], [("https://h/p/f.tgz", f"{HOME}/f.tgz")]),
        (["--output-dir", "dl", "-O", "http://h/y/z.csv", "-H", "A: b"], [("http://h/y/z.csv", f"{HOME}/dl/z.csv")]),
        (["-o", "a", "http://h/1", "-o", "b", "http://h/2"],
         [("http://h/1", f"{HOME}/a"), ("http://h/2", f"{HOME}/b")]),
        (["http://h/page"], [("http://h/page", None)]),  # standard output
        (["-o", "-", "http://h/page"], [("http://h/page", None)]),
        (["--remote-name-all", "http://h/a.txt", "http://h/b.txt"], [("http://h/a.txt", f"{HOME}/a.txt"),
                                                                     ("http://h/b.txt", f"{HOME}/b.txt")]),
    ],
)  # fmt: skip
def test_curl_downloads(args, expected):
    assert curl_downloads(args, HOME) == expected


def test_wget_downloads():
    assert wget_downloads(["-q", "http://h/a/b.zip"], HOME) == [("http://h/a/b.zip", f"{HOME}/b.zip")]
    assert wget_downloads(["-qO-", "http://h/a/b.zip"], HOME) == [("http://h/a/b.zip", None)]
    assert wget_downloads(["-P", "d", "--tries=3", "http://h/"], HOME) == [("http://h/", f"{HOME}/d/index.html")]
    assert wget_downloads(["--output-document=x.bin", "http://h/y"], HOME) == [("http://h/y", f"{HOME}/x.bin")]


def test_tar_and_unzip_extractions():
    assert tar_extraction(["xzf", "a.tgz", "-C", "out"], HOME) == (f"{HOME}/a.tgz", f"{HOME}/out")
    assert tar_extraction(["-xvf", "../a.tar"], f"{HOME}/w") == (f"{HOME}/a.tar", f"{HOME}/w")
    assert tar_extraction(["--extract", "--file=a.tar", "--directory", "o"], HOME) == (f"{HOME}/a.tar", f"{HOME}/o")
    assert tar_extraction(["-xz"], HOME) == (None, HOME)  # from standard input
    assert tar_extraction(["-czf", "a.tgz", "x"], HOME) is None and tar_extraction(["tf", "a.tar"], HOME) is None
    assert unzip_extraction(["-q", "data.zip", "-d", "out"], HOME) == (f"{HOME}/data.zip", f"{HOME}/out")
    assert unzip_extraction(["-l", "d.zip"], HOME) is None and unzip_extraction(["-p", "d.zip", "x"], HOME) is None


def test_scp_server_side_arguments_give_direction_and_paths():
    assert scp_transfer(["-t", "--", "data.csv"], HOME) == ("upload", [f"{HOME}/data.csv"], False)
    assert scp_transfer(["-v", "-r", "-p", "-d", "-t", "--", "hw/"], HOME) == ("upload", [f"{HOME}/hw"], True)
    assert scp_transfer(["-f", "a.py", "/tmp/b.txt"], HOME) == ("download", [f"{HOME}/a.py", "/tmp/b.txt"], False)
    assert scp_transfer(["-P", "22", "a.py", "h:x"], HOME) is None  # the student's own scp to elsewhere
    assert scp_transfer(["-t", "a", "b"], HOME) is None and scp_transfer(["-f"], HOME) is None


def test_the_recorder_names_the_ssh_clients_address_and_port():
    both = {"SSH_CONNECTION": "203.0.113.5 50000 10.0.0.5 22", "SSH_CLIENT": "x y 22"}
    assert ssh_client(both) == "203.0.113.5 50000"
    assert ssh_client({"SSH_CLIENT": "203.0.113.5 50001 22"}) == "203.0.113.5 50001"
    assert ssh_client({}) == "" and ssh_client({"SSH_CONNECTION": "junk"}) == ""


def test_scp_records_give_one_transfer_per_file_named_by_their_login(tmp_path):
    (tmp_path / "in").mkdir()
    for name, data in (("in/a.py", "a\n"), ("in/b.py", "bb\n"), ("up.csv", "1,2\n")):
        (tmp_path / name).write_text(data)
    now = min((tmp_path / name).stat().st_ctime for name in ("in/a.py", "in/b.py", "up.csv"))  # the run's start
    sessions = {"203.0.113.5 50000": {"who": "student key SHA256:k", "session": "50000-1"}}
    records = [
        {"tool": "scp", "argv": ["-t", "--", "up.csv"], "cwd": str(tmp_path), "start": now, "end": now + 1, "exit": 0,
         "ssh": "203.0.113.5 50000"},
        {"tool": "scp", "argv": ["-d", "-t", "--", "in"], "cwd": str(tmp_path), "start": now, "end": now + 1,
         "exit": 0, "ssh": "203.0.113.5 50000"},
        {"tool": "scp", "argv": ["-r", "-t", "in"], "cwd": str(tmp_path), "start": now + 60, "end": now + 61,
         "exit": 1},  # nothing in the folder changed during the run: the folder, no size
        {"tool": "scp", "argv": ["-f", "up.csv"], "cwd": str(tmp_path), "start": now, "end": now + 1, "exit": 1,
         "ssh": "198.51.100.9 4"},
        {"tool": "scp", "argv": ["-f", "/etc/shadow"], "cwd": str(tmp_path), "end": now + 1, "exit": 0},
        {"tool": "scp", "argv": [None, 7], "cwd": 3, "end": "x"},
    ]  # fmt: skip
    events = scp_events(records, str(tmp_path), sessions, event)
    got = [(e["details"]["direction"], e["details"]["path"], e["details"]["bytes"], e["details"]["who"],
            e["details"]["exit"]) for e in events]  # fmt: skip
    assert got[0] == ("upload", "up.csv", 4, "student key SHA256:k", 0)
    assert got[1:3] == [
        ("upload", "in/a.py", 2, "student key SHA256:k", 0),
        ("upload", "in/b.py", 3, "student key SHA256:k", 0),
    ]
    assert got[3:] == [("upload", "in", None, "unknown", 1), ("download", "up.csv", 4, "unknown", 1),
                       ("download", "/etc/shadow", None, "unknown", 0)]  # fmt: skip  # outside the home: not read
    assert all(e["kind"] == "transfer" and e["details"]["protocol"] == "scp" for e in events)
    assert events[0]["at"] == int(now + 1)
    assert [e["id"] for e in events] == [e["id"] for e in scp_events(records, str(tmp_path), sessions, event)]
    assert tool_events(records, str(tmp_path), set(), event) == []  # never a download or an extraction


def test_urls_are_recorded_without_credentials_or_query():
    assert clean_url("https://u:secret@h.org:8080/p/f.zip?token=abc#x") == "https://h.org:8080/p/f.zip"
    assert clean_url("http://127.0.0.1:8765/pkg.zip?X-Amz-Signature=s") == "http://127.0.0.1:8765/pkg.zip"
    assert clean_url("file:///tmp/x") == "file:///tmp/x"


def _zip(path: Path, names: list[str]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in names:
            z.writestr(name, "x")
    path.write_bytes(buf.getvalue())


def test_new_files_are_given_to_the_archive_that_explains_most_of_them(tmp_path):
    _zip(tmp_path / "hw.zip", ["hw/a.py", "hw/b.py", "hw/c.py"])
    _zip(tmp_path / "other.zip", ["hw/a.py", "x.txt"])
    created = {"start/hw/a.py", "start/hw/b.py", "start/hw/c.py", "notes.txt"}
    (found,) = file_extractions(str(tmp_path), created, ["hw.zip", "other.zip"], event, 1_800_000_000)
    assert found["details"] == {"tool": "unzip", "archive": "hw.zip", "dest": "start", "files": 3, "seen": "files",
                                "paths": ["start/hw/a.py", "start/hw/b.py", "start/hw/c.py"]}  # fmt: skip
    assert file_extractions(str(tmp_path), {"start/hw/a.py"}, ["hw.zip"], event, 1) == []  # one file: no evidence


def test_a_tool_log_is_read_once_and_a_half_written_line_waits(tmp_path):
    log, state = tmp_path / "tools.jsonl", {}
    rec = '{"tool": "curl", "argv": ["-o", "f", "http://h/f"], "cwd": "%s", "start": 1, "end": 2, "exit": 0}\n'
    log.write_text(rec % tmp_path + "not json\n" + '{"tool": "rm", "argv": []}\n' + '{"tool": "wget"')
    records = read_tool_log(str(log), state)
    assert [r["tool"] for r in records] == ["curl"] and read_tool_log(str(log), state) == []
    (tmp_path / "f").write_text("data\n")
    (download,) = tool_events(records, str(tmp_path), set(), event)
    assert download["details"]["path"] == "f" and download["details"]["bytes"] == 5
    assert download["at"] == 2 and download["id"] == tool_events(records, str(tmp_path), set(), event)[0]["id"]


def test_the_spool_keeps_only_the_newest_events(tmp_path):
    spool = Spool(str(tmp_path / "spool.jsonl"), limit=3)
    spool.add([event("file_changed", {"path": str(n)}, 1_800_000_000 + n) for n in range(5)])
    assert [e["details"]["path"] for e in spool.read()] == ["2", "3", "4"]


def test_a_forged_record_reads_nothing_outside_the_home(tmp_path):
    home, outside = tmp_path / "home", tmp_path / "secret"
    home.mkdir()
    outside.mkdir()
    (outside / "key.txt").write_text("secret\n")
    _zip(outside / "private.zip", ["a.txt", "b.txt"])
    (home / "link").symlink_to(outside)
    records = [
        {"tool": "curl", "argv": ["-o", str(outside / "key.txt"), "http://h/k"], "cwd": str(home), "end": 5},
        {"tool": "curl", "argv": ["-o", "link/key.txt", "http://h/k"], "cwd": str(home), "end": 5},
        {"tool": "unzip", "argv": ["link/private.zip", "-d", str(outside)], "cwd": str(home), "end": 5},
    ]
    first, second, extract = (e["details"] for e in tool_events(records, str(home), set(), event))
    assert (first["bytes"], first["sha256"], second["bytes"], second["sha256"]) == (None, None, None, None)
    assert extract["files"] == 0 and extract["paths"] == []


def test_forged_or_huge_records_give_events_the_tool_accepts(tmp_path):
    from provisioning.activity import parse_batch

    deep = "/".join(["d" * 40] * 6)
    _zip(tmp_path / "big.zip", [f"{deep}/{n}.txt" for n in range(60)])
    for n in range(60):
        (tmp_path / "out" / deep).mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / deep / f"{n}.txt").write_text("x")
    records = [
        {"tool": "unzip", "argv": ["big.zip", "-d", "out"], "cwd": str(tmp_path), "end": 1_800_000_000, "exit": 0},
        {"tool": "curl", "argv": ["-o", "x" * 5000, "http://h/" + "y" * 5000], "cwd": str(tmp_path), "end": 1e20},
        {"tool": "wget", "argv": [None, {"a": 1}], "cwd": 7, "start": "soon", "end": True, "exit": "zero"},
        {"tool": "tar", "argv": ["-xf"], "cwd": str(tmp_path), "end": float("nan")},
    ]
    events = tool_events(records, str(tmp_path), set(), event)
    assert [e["kind"] for e in events][:2] == ["extract", "download"]
    assert events[0]["details"]["files"] == 60 and 0 < len(events[0]["details"]["paths"]) <= 50
    _, parsed = parse_batch({"workspace_id": 1, "events": events})  # all of them pass the tool's validation
    assert len(parsed) == len(events)
