"""Pure integrity decisions: sessions, work time, campus ranges, the five indicators, similarity, export checks."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import UTC, datetime, timedelta

import pytest

from classroom.audit import GENESIS, event_hash
from classroom.integrity.chain import verify_records
from classroom.integrity.evidence import Event, build_evidence, on_campus, parse_ranges, union_seconds
from classroom.integrity.flags import Subject, class_figures, flags_for
from classroom.integrity.settings import parse_form
from classroom.integrity.similarity import find_pairs
from classroom.integrity.snapshots import SnapshotRefused, check_archive, read_sources

T0 = datetime(2024, 10, 15, 21, 30, tzinfo=UTC)
CAMPUS = parse_ranges(["128.12.0.0/16"])


def _session(n: int, start: datetime, minutes: int, ip: str = "128.12.4.5") -> list[Event]:
    return [
        Event(n, "ssh_login", start, {"session": f"s{n}", "source_ip": ip}, f"h{n}a"),
        Event(n + 1, "ssh_logout", start + timedelta(minutes=minutes), {"session": f"s{n}"}, f"h{n}b"),
    ]


def test_sessions_pair_by_id_and_work_time_counts_overlaps_once():
    events = _session(1, T0, 60) + _session(3, T0 + timedelta(minutes=30), 60, ip="8.8.8.8")
    ev = build_evidence(events, CAMPUS, record_commands=False)
    assert [s.seconds for s in ev.sessions] == [3600, 3600]
    assert [s.on_campus for s in ev.sessions] == [True, False]
    assert ev.work_seconds == 90 * 60
    assert union_seconds([(T0, None)]) == 0
    ec2 = [
        Event(9, "login", T0, {"session": "e", "source_ip": "128.12.9.9"}, "l"),
        Event(10, "logout", T0 + timedelta(hours=2), {"session": "e"}, "o"),
    ]
    assert build_evidence(ec2, CAMPUS, record_commands=False).work_seconds == 7200  # EC2's names for the same
    assert on_campus("128.12.0.1", []) is None and on_campus("not-an-ip", CAMPUS) is False


def test_commands_only_when_the_course_records_them_and_late_edits_are_seen():
    due = T0 + timedelta(hours=1)
    events = [
        Event(1, "command", T0, {"line": "unzip emily-code.zip"}, "c"),
        Event(2, "file_changed", due + timedelta(minutes=5), {"path": "homework/hw5/a.py", "lines_added": 3}, "f"),
    ]
    assert build_evidence(events, CAMPUS, record_commands=False).commands == []
    ev = build_evidence(events, CAMPUS, record_commands=True, folder="homework/hw5", due_at=due)
    assert [c.details["line"] for c in ev.commands] == ["unzip emily-code.zip"]
    assert [e.id for e in ev.late_edits] == [2] and ev.files[0].lines_added == 3


def test_the_five_indicators_and_none_for_independent_work():
    due = datetime(2024, 10, 21, 6, 59, tzinfo=UTC)
    emily = build_evidence(_session(1, T0, 500) + [Event(9, "git_commit", T0, {}, "g")], CAMPUS, record_commands=False)
    david = build_evidence(
        _session(11, due - timedelta(hours=9), 72)
        + [
            Event(
                20,
                "transfer",
                due - timedelta(hours=8),
                {"protocol": "scp", "direction": "upload", "path": "emily-code.zip"},
                "t",
            )
        ],
        CAMPUS,
        record_commands=False,
    )
    sophie = build_evidence(
        _session(31, T0, 400) + [Event(39, "git_commit", T0, {}, "g2")], CAMPUS, record_commands=False
    )
    median, with_commits = class_figures([emily, david, sophie])
    from classroom.integrity.similarity import Pair

    pairs = [Pair("1", "2", 94, 94, 90, ("hw5.py",))]
    names = {"1": "Emily Chen", "2": "David Kim", "3": "Sophie"}

    def codes(key, created, ev):  # type: ignore[no-untyped-def]
        return [
            f.code
            for f in flags_for(Subject(key, names[key], created, ev), due, median, with_commits, pairs, names, 80)
        ]

    assert codes("2", due - timedelta(hours=25), david) == [
        "late_workspace",
        "low_work_time",
        "outside_transfer",
        "similarity",
        "no_git_history",
    ]
    assert codes("1", due - timedelta(days=5), emily) == ["similarity"]
    assert codes("3", due - timedelta(days=5), sophie) == []


def test_planted_pair_is_found_and_starter_code_is_not_evidence():
    starter = {"hw.py": "".join(f"def given_{i}(x):\n    return x * {i} + len(str(x))\n\n" for i in range(30))}

    def own(seed: int) -> str:
        return starter["hw.py"] + "".join(
            f"def part_{seed}_{i}(a, b={seed * i}):\n    out = a ** {i % 4 + 1} - b\n    while out > {seed}:\n"
            f"        out -= {i + seed * 3}\n    return [out] * {i % 5 + seed}\n\n"
            for i in range(25)
        )

    subs = {
        "1": {"hw.py": own(1)},
        "2": {"hw.py": own(1).replace("out", "res")},
        "3": {"hw.py": own(3)},
        "4": {"hw.py": starter["hw.py"]},
    }
    pairs = find_pairs(subs, starter, 50)
    assert [(p.a, p.b) for p in pairs] == [("1", "2")] and pairs[0].score >= 90


def _record(prev: str, n: int, details: dict) -> dict:  # type: ignore[type-arg]
    at = T0 + timedelta(seconds=n)
    h = event_hash(prev, at, "activity.recorded", None, 7, f"activity:{n}", details)
    return {
        "id": n,
        "at": at.isoformat(),
        "action": "activity.recorded",
        "actor": None,
        "course": 7,
        "subject": f"activity:{n}",
        "details": details,
        "prev_hash": prev,
        "hash": h,
    }


def test_verify_records_finds_an_edited_and_a_removed_event():
    a = _record(GENESIS, 1, {"kind": "transfer"})
    b = _record(a["hash"], 2, {"kind": "ssh_login"})
    c = _record(b["hash"], 3, {"kind": "ssh_logout"})
    assert verify_records([a, b, c]).ok
    edited = {**b, "details": {"kind": "nothing"}}
    assert "edited" in verify_records([a, edited, c]).problems[0]
    assert "removed" in verify_records([a, c]).problems[0]


def test_settings_form_refuses_bad_ranges_paths_and_thresholds():
    ok, errors = parse_form(
        {
            "campus_ranges": "128.12.0.0/16\n10.0.0.0/8",
            "snapshot_path": "hw/{assignment}",
            "similarity_threshold": "70",
            "record_commands": "on",
        }
    )
    assert errors == {} and ok is not None and ok.record_commands and ok.folder("hw5") == "hw/hw5"
    off, _ = parse_form({"snapshot_path": "hw/{assignment}", "similarity_threshold": "70"})
    assert off is not None and not off.record_commands  # an unticked box: typed commands not recorded
    bad, errors = parse_form(
        {"campus_ranges": "campus", "snapshot_path": "../{assignment}", "similarity_threshold": "0"}
    )
    assert bad is None and set(errors) == {"campus_ranges", "snapshot_path", "similarity_threshold"}


def _tar(entries: dict[str, bytes], link: str | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return gzip.compress(raw.getvalue())


def test_snapshot_archives_must_stay_inside_the_folder():
    good = _tar({"homework/hw5/hw5_solution.py": b"print(1)\n", "homework/hw5/data.bin": b"\0"})
    assert check_archive(good, "homework/hw5").files == 2
    assert read_sources(good, "homework/hw5") == {"hw5_solution.py": "print(1)\n"}
    for bad in (
        _tar({"homework/hw5/../../.ssh/id": b"x"}),
        _tar({".bashrc": b"x"}),
        _tar({}, link="homework/hw5/x"),
        b"not a tar",
    ):
        with pytest.raises(SnapshotRefused):
            check_archive(bad, "homework/hw5")
