"""Pinning host keys (pure): the first report for an instance pins, the same keys again change nothing, other
keys are refused, and a pin for another instance does not count."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from classroom.workspaces.host_keys import (
    HostKeyAction,
    current_pin,
    decide_host_keys,
    decide_pin,
    normalise_host_key,
    parse_host_keys,
)
from provisioning.agent.cwc_agent import host_keys

ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDSNhZoXWULhY88+pevwqmkBqcNhenM5T8XwDpmk6lnp"
ED2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGALKyzL7SyUwKC6I4IoE3/zvviPO/PQxZvjwEAAFA64"
RSA_AS_ED = "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"  # an rsa blob under an ed25519 name


def test_first_report_pins_same_again_is_nothing_new_and_a_different_one_is_refused():
    assert decide_host_keys((), None, "i-1", (ED,)).action is HostKeyAction.PIN
    assert decide_host_keys((ED,), "i-1", "i-1", (ED,)).action is HostKeyAction.SAME
    refused = decide_host_keys((ED,), "i-1", "i-1", (ED2,))
    assert refused.action is HostKeyAction.REFUSE and refused.keys == (ED2,)
    assert decide_host_keys((ED,), "i-1", "i-1", (ED, ED2)).action is HostKeyAction.REFUSE  # an added key too


def test_a_pin_for_another_instance_does_not_count_and_nothing_is_pinned_without_keys_or_instance():
    assert decide_host_keys((ED,), "i-old", "i-new", (ED2,)).action is HostKeyAction.PIN
    assert decide_host_keys((), None, "i-1", ()).action is HostKeyAction.NOTHING
    assert decide_host_keys((), None, None, (ED,)).action is HostKeyAction.NOTHING
    assert current_pin(ED, "i-1", "i-1") == (ED,)
    assert current_pin(ED, "i-old", "i-new") == () and current_pin("", None, "i-1") == ()


def test_against_the_pin_that_counts_first_report_pins_same_is_nothing_new_and_other_keys_are_refused():
    # a reset row's pin: the row has one instance, so there is no instance to check
    assert decide_pin((), (ED,)).action is HostKeyAction.PIN
    assert decide_pin((ED,), (ED,)).action is HostKeyAction.SAME
    refused = decide_pin((ED,), (ED2,))
    assert refused.action is HostKeyAction.REFUSE and refused.keys == (ED2,)
    assert decide_pin((ED,), (ED, ED2)).action is HostKeyAction.REFUSE  # an added key too
    assert decide_pin((ED,), ()).action is decide_pin((), ()).action is HostKeyAction.NOTHING


def test_keys_are_normalised_and_bad_lines_refused():
    assert normalise_host_key(f"  {ED} root@ip-10-0-0-1 \n") == ED
    assert parse_host_keys([ED2, ED, ED + " comment"]) == tuple(sorted({ED, ED2}))
    for bad in ("", "ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519 not*base64", RSA_AS_ED, "x " * 3000):
        with pytest.raises(ValueError):
            normalise_host_key(bad)
    with pytest.raises(ValueError):
        parse_host_keys([ED] * 9)


def test_the_agent_reads_the_host_public_keys_from_the_ssh_folder(tmp_path: Path):
    for kind in ("ed25519", "ecdsa", "rsa"):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "root@host",
                        "-f", str(tmp_path / f"ssh_host_{kind}_key")], check=True)  # fmt: skip
    (tmp_path / "ssh_host_dsa_key.pub").write_text("ssh-dss AAAAB3NzaC1kc3M= root@host\n")
    (tmp_path / "other.pub").write_text(ED + "\n")
    found = host_keys(str(tmp_path))
    assert len(found) == 3 and all("root@host" not in k for k in found)
    assert parse_host_keys(found) == tuple(sorted(found))  # what the agent sends, the tool accepts
    assert host_keys(str(tmp_path / "missing")) == []
