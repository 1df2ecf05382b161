"""`python -m provisioning.sim_host`: the simulated account's instances, in a process of their own.

Development and tests only. A real workspace runs the agent (provisioning/agent/cwc_agent.py) as root; in the
simulated account nothing runs inside a moto instance, so this process plays each running instance's agent
with the agent's own code: the same heartbeat handling and the same LeaseKeeper. Its poweroff stops the moto
instance, so a lease that runs out stops the instance even when the tool's web app, worker and scheduler are
all down. The lease an instance holds is kept on the instance itself (a tag), as a real instance keeps its
scheduled poweroff. The clock is injectable (tests and bench/outage.py move it with time-machine).

What a beat reports is what happens in the workspace when the local runtime runs (`runtime_root`, as `make run`
and the runtime tests have it): the runtime writes each running workspace's open SSH connections (the browser
terminal's included), whether Jupyter runs and its sandboxes' CPU (provisioning/runtime/status.py), and the beat
sends exactly that, so an open session keeps a workspace from the idle stop and none lets it stop. Only for
instances with no local runtime (plain moto: the money, outage and archive tests, bench/outage.py) does the sim
host invent a student who works for `idle_after_beats` beats and then goes idle.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from provisioning.agent.cwc_agent import DEFAULT_BOOT_GRACE_S, LeaseKeeper, archive_home, heartbeat
from provisioning.backend import CloudBackend, CloudError, InstanceInfo
from provisioning.runtime.status import read_status
from provisioning.userdata import agent_config_from_user_data

log = logging.getLogger(__name__)

LEASE_TAG = "cwc:sim-lease-until"
BEATS_TAG = "cwc:sim-beats"
KEYS_TAG = "cwc:sim-keys"
ENDED_TAG = "cwc:sim-sessions-ended"  # the played student was logged out (the final archive's lockout)
Post = Callable[[str, dict[str, Any], str], tuple[int, Any]]


def _no_dirs(home: str, user: str, folders: list[str]) -> None:
    """A played instance has no disk to create assignment folders on (the local runtime will)."""


def played_archive(cfg: dict[str, Any], request: dict[str, Any]) -> dict[str, Any] | None:
    """The played agent's archive: the real agent's function on the home a played instance has (no real disk:
    an empty home named after the user, holding a note that it is simulated), uploaded to the presigned URL."""
    with tempfile.TemporaryDirectory(prefix="cwc-sim-home-") as tmp:
        home = os.path.join(tmp, os.path.basename(str(cfg.get("home") or "home")))
        os.makedirs(home)
        with open(os.path.join(home, "SIMULATED.txt"), "w") as f:
            f.write(f"Simulated workspace {cfg.get('workspace_id')}: no disk, no files.\n")
        return archive_home({**cfg, "home": home, "archive_tmp": tmp}, request)  # type: ignore[no-any-return]


def http_post(url: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
    """The played agent's POST (requests; a connection error is an OSError, as for the real agent)."""
    resp = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, {}


@dataclass(frozen=True)
class Stopped:
    """One poweroff the played agent performed."""

    instance_id: str
    at: float
    reason: str


@dataclass
class TickReport:
    """What one pass over the running instances did."""

    beats: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)
    stopped: list[Stopped] = field(default_factory=list)


class InstancePoweroff:
    """A played instance's poweroff: the scheduled one is a tag on the instance, `now` stops it in moto."""

    def __init__(self, backend: CloudBackend, instance_id: str, clock: Callable[[], float], report: TickReport) -> None:
        self.backend, self.instance_id, self.clock, self.report = backend, instance_id, clock, report
        self.scheduled: float | None = None

    def schedule(self, at: float) -> None:
        """Hold the lease (written to the instance's tag with the tick's other tag changes, after the pass)."""
        self.scheduled = at

    def now(self, reason: str) -> None:
        """Power off: the instance stops (InstanceInitiatedShutdownBehavior=stop) and forgets its lease."""
        self.backend.stop([self.instance_id], hibernate=False)
        self.backend.untag_instance(self.instance_id, [LEASE_TAG])
        self.report.stopped.append(Stopped(self.instance_id, self.clock(), reason))
        log.info("simulated instance %s powered off: %s", self.instance_id, reason)


class SimHost:
    """Plays every running managed instance's agent, one tick at a time."""

    def __init__(
        self,
        backend: CloudBackend,
        *,
        clock: Callable[[], float] = time.time,
        post: Post = http_post,
        idle_after_beats: int = 5,
        rng: random.Random | None = None,
        runtime_root: Path | None = None,
    ) -> None:
        self.backend, self.clock, self.post = backend, clock, post
        self.runtime_root = runtime_root  # the local runtime's folder: beats report its status; None: invented
        self.idle_after_beats = idle_after_beats
        self.rng = rng or random.Random()
        self._configs: dict[str, dict[str, Any] | None] = {}

    def tick(self) -> TickReport:
        """One heartbeat per running instance, then the lease check.

        An instance the sim host powered off forgets its lease; one the tool stopped keeps its old lease tag, so
        when it is started again its first heartbeat must renew the lease or it stops at once (the safe side).
        """
        report = TickReport()
        changes: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for inst in self.backend.describe_managed(states=("running",)):
            if tags := self._play(inst, report):
                changes.setdefault(tuple(sorted(tags.items())), []).append(inst.instance_id)
        # The changed tags, one call per distinct set: the instances renewed together hold the same lease. Written
        # after the pass, so a sim host killed in the middle keeps this tick's earlier lease (the safe side).
        for tags, instance_ids in changes.items():
            self._write_tags(instance_ids, dict(tags))
        return report

    def _write_tags(self, instance_ids: list[str], tags: dict[str, str]) -> None:
        """One call for the set; if AWS refuses it (one instance terminated since the describe fails the whole
        call), one call per instance, so the others keep their renewed lease."""
        try:
            self.backend.tag_instances(instance_ids, tags)
            return
        except CloudError as exc:
            if len(instance_ids) == 1:
                log.warning("simulated instance %s: tags not written: %s", instance_ids[0], exc)
                return
        for instance_id in instance_ids:
            self._write_tags([instance_id], tags)

    def _play(self, inst: InstanceInfo, report: TickReport) -> dict[str, str]:
        """Play one instance's agent for one beat; the tags that changed (its lease, its keys, its student's beats)."""
        cfg = self._config(inst.instance_id)
        if cfg is None:
            return {}
        now = self.clock()
        grace = int(cfg.get("boot_grace_s", DEFAULT_BOOT_GRACE_S))
        poweroff = InstancePoweroff(self.backend, inst.instance_id, self.clock, report)
        keeper = LeaseKeeper(poweroff, grace)
        if LEASE_TAG in inst.tags:
            keeper.lease_until = float(inst.tags[LEASE_TAG])
        else:
            keeper.boot(now)  # first seen running: a fresh boot
        beats = int(inst.tags.get(BEATS_TAG, "0"))
        if ENDED_TAG in inst.tags:  # logged out: the played student changes nothing any more
            beats = max(beats, self.idle_after_beats + 1)
        tags: dict[str, str] = {}
        outcome = heartbeat(
            cfg,
            keeper,
            self._activity(cfg, beats, inst.instance_id, now),
            now,
            post=self._post,
            write_keys=lambda home, user, keys: tags.update({KEYS_TAG: str(len(keys))}),  # the played disk's keys
            make_dirs=_no_dirs,
            archive=played_archive,
            end_sessions=lambda user: tags.update({ENDED_TAG: "1"}),
        )
        report.beats += 1
        report.outcomes[inst.instance_id] = outcome
        if not keeper.stopped:
            keeper.check(now)
        if poweroff.scheduled is not None and not keeper.stopped:
            tags[LEASE_TAG] = repr(poweroff.scheduled)
        if self.runtime_root is None and beats <= self.idle_after_beats:  # past that the invented student idles
            tags[BEATS_TAG] = str(beats + 1)
        return {k: v for k, v in tags.items() if inst.tags.get(k) != v}  # a lease held again is not written again

    def _post(self, url: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
        return self.post(url, body, token)

    def _activity(self, cfg: dict[str, Any], beats: int, instance_id: str, now: float) -> dict[str, Any]:
        """The beat's activity: the local runtime's status of the workspace, or (no runtime) an invented one."""
        if self.runtime_root is not None:
            return read_status(self.runtime_root, instance_id, now).activity(int(cfg["workspace_id"]))
        active = beats < self.idle_after_beats  # each invented student works a few minutes, then goes idle
        return {
            "workspace_id": cfg["workspace_id"],
            "ssh_sessions": 1 if active else 0,
            "jupyter_active": active,
            "cpu_pct": round(self.rng.uniform(20, 80), 2) if active else 0.5,
            "mem_pct": round(self.rng.uniform(30, 70), 2) if active else 12.0,
            "disk_pct": 18.0,
            "changed_files": self.rng.randint(1, 5) if active else 0,
        }

    def _config(self, instance_id: str) -> dict[str, Any] | None:
        if instance_id not in self._configs:
            text = self.backend.user_data(instance_id)
            self._configs[instance_id] = agent_config_from_user_data(text) if "CWC_CONFIG" in text else None
        return self._configs[instance_id]


def main() -> None:
    """Play the simulated account's agents every CWC_SIM_TICK_S seconds (default 60) until stopped."""
    from config.settings import Settings
    from provisioning.factory import backend_from_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s sim-host %(message)s")
    settings = Settings.from_env()
    if settings.is_production or not settings.aws_endpoint_url:
        sys.exit("provisioning.sim_host plays simulated instances only (CWC_AWS_ENDPOINT_URL, not production)")
    runtime = (settings.data_dir / "runtime").resolve() if settings.runtime_ssh_port else None  # make run's runtime
    host = SimHost(backend_from_settings(settings), runtime_root=runtime)
    every = float(os.environ.get("CWC_SIM_TICK_S", "60"))
    while True:
        started = time.monotonic()
        try:
            report = host.tick()
            if report.stopped:
                log.info("powered off: %s", ", ".join(f"{s.instance_id} ({s.reason})" for s in report.stopped))
        except Exception:  # noqa: BLE001 - the safety net keeps going through a moto hiccup
            log.exception("tick failed")
        time.sleep(max(0.0, every - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
