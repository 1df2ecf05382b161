"""Pure rules of the local runtime and the activity API: who may log in, the sandbox's argv, batch validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioning.activity import MAX_EVENTS, parse_batch
from provisioning.agent.cwc_agent import event, parse_git_log
from provisioning.runtime.access import CertFacts, DebugFacts, WorkspaceFacts, decide_cert, decide_key
from provisioning.runtime.sandbox import SandboxSpec, bwrap_argv, etc_files
from provisioning.ssh_ca import workspace_id_from_login, workspace_login

NOW = datetime(2026, 10, 1, 12, tzinfo=UTC)
CA = "ssh-ed25519 AAAAcourseCA"
VIEW = DebugFacts(9, "D9", "view", NOW + timedelta(minutes=30), "Sophie Martin", "Alex Thompson")
FULL = DebugFacts(9, "D9", "full", NOW + timedelta(minutes=30), "Sophie Martin", "Alex Thompson")


def facts(**overrides: object) -> WorkspaceFacts:
    values: dict[str, object] = dict(
        workspace_id=7, course_id=1, instance_id="i-1", instance_state="running", os_user="ubuntu",
        mount_point="/mnt/cs229-materials", student_key_fingerprints=frozenset({"SHA256:emily"}),
        ca_public_key=CA, valid_serials=frozenset({42}),
    )  # fmt: skip
    values.update(overrides)
    return WorkspaceFacts(**values)  # type: ignore[arg-type]


def cert(**overrides: object) -> CertFacts:
    values: dict[str, object] = dict(
        ca_public_key=CA,
        principals=("ws7",),
        valid_after=NOW - timedelta(minutes=1),
        valid_before=NOW + timedelta(minutes=30),
        serial=42,
        key_id="staff:3:Alex",
    )
    values.update(overrides)
    return CertFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ws", "fp", "allowed", "reason"),
    [
        (facts(), "SHA256:emily", True, "student key"),
        (facts(), "SHA256:david", False, "not an active key"),
        (None, "SHA256:emily", False, "no such workspace"),
        (facts(instance_state="stopped"), "SHA256:emily", False, "not running (stopped)"),
        (facts(instance_state="missing"), "SHA256:emily", False, "not running (missing)"),
    ],
)
def test_key_decisions(ws: WorkspaceFacts | None, fp: str, allowed: bool, reason: str) -> None:
    decision = decide_key(ws, fp)
    assert decision.allowed is allowed and reason in decision.reason


@pytest.mark.parametrize(
    ("ws", "presented", "now", "allowed", "reason"),
    [
        (facts(), cert(), NOW, True, "staff certificate"),
        (facts(), cert(ca_public_key="ssh-ed25519 AAAArogue"), NOW, False, "not signed by this course's CA"),
        (facts(ca_public_key=None), cert(), NOW, False, "not signed by this course's CA"),
        (facts(), cert(principals=("ws8",)), NOW, False, "not ws7"),
        (facts(), cert(), NOW + timedelta(minutes=30), False, "expired"),
        (facts(), cert(), NOW - timedelta(minutes=2), False, "not valid before"),
        (facts(valid_serials=frozenset()), cert(), NOW, False, "revoked or unknown"),
        (facts(instance_state="stopped"), cert(), NOW, False, "not running"),
        # a view-only debug certificate names ws7-view (EC2's view user): taken for ws7 only for a view session
        (facts(debug={42: VIEW}), cert(principals=("ws7-view",)), NOW, True, "staff certificate"),
        (facts(), cert(principals=("ws7-view",)), NOW, False, "not ws7"),
        (facts(debug={42: FULL}), cert(principals=("ws7-view",)), NOW, False, "not ws7"),
        (facts(debug={42: VIEW}), cert(principals=("ws8-view",)), NOW, False, "not ws7"),
    ],
)
def test_certificate_decisions(ws: WorkspaceFacts, presented: CertFacts, now: datetime, allowed: bool,
                               reason: str) -> None:  # fmt: skip
    decision = decide_cert(ws, "ws7", presented, now)
    assert decision.allowed is allowed and reason in decision.reason


@pytest.mark.parametrize(("login", "ws_id"), [("ws7", 7), ("ws123", 123), ("ws07", None), ("ws", None),
                                              ("emily", None), ("ws1x", None), ("ws" + "9" * 12, None)])  # fmt: skip
def test_logins_name_workspaces(login: str, ws_id: int | None) -> None:
    assert workspace_id_from_login(login) == ws_id
    if ws_id is not None:
        assert workspace_login(ws_id) == login


def test_sandbox_binds_only_home_materials_tools_and_its_own_etc() -> None:
    spec = SandboxSpec(os_user="ubuntu", home=Path("/data/homes/i-1"), materials=Path("/data/materials/m"),
                       mount_point="/mnt/cs229-materials", etc=Path("/data/etc/i-1"), hostname="ws7")  # fmt: skip
    argv = bwrap_argv(spec, ["/bin/bash", "-c", "id"], {"TERM": "xterm"})
    assert argv[:2] == ["bwrap", "--unshare-all"] and "--clearenv" in argv and "--new-session" in argv
    binds = [(argv[i], argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert binds == [("--ro-bind", "/usr", "/usr"), ("--ro-bind", "/data/etc/i-1", "/etc"),
                     ("--bind", "/data/homes/i-1", "/home/ubuntu"),
                     ("--ro-bind", "/data/materials/m", "/mnt/cs229-materials")]  # fmt: skip
    assert argv[-4:] == ["--", "/bin/bash", "-c", "id"]
    assert "--new-session" not in bwrap_argv(spec, ["bash"], {}, new_session=False)
    assert "ubuntu:x:1000:1000::/home/ubuntu:/bin/bash" in etc_files(spec, "banner")["passwd"]


def test_only_the_students_own_sandboxes_bind_the_tmux_socket_folder() -> None:
    spec = SandboxSpec(os_user="ubuntu", home=Path("/h"), materials=Path("/m"), mount_point="/mnt/m",
                       etc=Path("/e"), hostname="ws7", tmux_dir=Path("/data/tmux/i-1"))  # fmt: skip
    assert "--bind /data/tmux/i-1 /tmp/tmux-1000" in " ".join(bwrap_argv(spec, ["tmux"], {}, student_tmux=True))
    assert "/data/tmux/i-1" not in bwrap_argv(spec, ["bash"], {})  # scans, snapshots, debug sessions
    assert "/data/tmux/i-1" not in bwrap_argv(spec, ["bash"], {}, home_read_only=True)


def _batch(*events: dict[str, object], ws: object = 7) -> dict[str, object]:
    return {"workspace_id": ws, "events": list(events)}


GOOD = {"id": "a" * 32, "kind": "git_commit", "at": 1_790_000_000, "details": {"hash": "abc"}}


def test_a_good_batch_parses_and_repeated_ids_collapse() -> None:
    ws_id, events = parse_batch(_batch(GOOD, GOOD, {**GOOD, "id": "b" * 32}))
    assert ws_id == 7 and [e.event_id for e in events] == ["a" * 32, "b" * 32]
    assert events[0].at == datetime.fromtimestamp(1_790_000_000, UTC)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"events": "x"},
        _batch(GOOD, ws="7"),
        _batch(GOOD, ws=True),
        _batch({**GOOD, "id": "short"}),
        _batch({**GOOD, "id": "a b" * 10}),
        _batch({**GOOD, "kind": "keystrokes"}),
        _batch({**GOOD, "at": "now"}),
        _batch({**GOOD, "at": -1}),
        _batch({**GOOD, "details": []}),
        _batch({**GOOD, "details": {"x": "y" * 9000}}),
        _batch(*[{**GOOD, "id": f"{i:032d}"} for i in range(MAX_EVENTS + 1)]),
    ],
)
def test_bad_batches_are_refused_whole(body: object) -> None:
    with pytest.raises(ValueError):
        parse_batch(body)


def test_agent_event_ids_are_stable_and_git_log_parses() -> None:
    assert event("jupyter", {"running": True}, 100)["id"] == event("jupyter", {"running": True}, 100.4)["id"]
    assert event("jupyter", {"running": True}, 100)["id"] != event("jupyter", {"running": False}, 100)["id"]
    text = "\x1eabc\x1f1790000000\x1ffirst model\n\nmodel.py\ndata.csv\n\x1ebad record\n"
    assert parse_git_log("repo", text) == [
        {"repo": "repo", "hash": "abc", "time": 1790000000, "message": "first model", "files": ["model.py", "data.csv"]}
    ]
