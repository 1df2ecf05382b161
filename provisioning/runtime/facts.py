"""Load what a login decision needs: the workspace, its owner's keys and certificates (DB), its instance (EC2)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from classroom.db import utcnow
from classroom.integrity.settings import COLLECTING, records_commands
from classroom.models import (
    CoursePolicy,
    CourseSshCa,
    DebugSession,
    IntegritySettings,
    Person,
    SshKey,
    StaffSshCert,
    Workspace,
    WorkspaceArchive,
    WorkspaceReset,
)
from classroom.services.term_notices import student_notice
from classroom.workspaces.archive_rules import locked_for_archive
from provisioning.activity import collecting
from provisioning.backend import CloudBackend, CloudError
from provisioning.course_cloud import course_key
from provisioning.materials_mirror import mirror_materials
from provisioning.runtime.access import DebugFacts, WorkspaceFacts
from provisioning.ssh_ca import workspace_id_from_login
from provisioning.userdata import agent_config_from_user_data

InstanceConfig = dict[str, object]
log = logging.getLogger(__name__)


class FactsLoader:
    """Reads the DB and the (simulated) EC2 account; thread-safe (one session per call)."""

    def __init__(self, sessions: Callable[[], Session], backend: CloudBackend) -> None:
        self.sessions, self.backend = sessions, backend
        self._configs: dict[str, InstanceConfig] = {}
        self.seen_running: set[str] = set()  # the last sync's running instances (see instance_state)

    def load(self, login: str) -> WorkspaceFacts | None:
        """The facts for a login, or None when it names no workspace with an instance."""
        ws_id = workspace_id_from_login(login)
        if ws_id is None:
            return None
        with self.sessions() as session:
            ws = session.get(Workspace, ws_id)
            if ws is None or not ws.instance_id:
                return None
            fps = session.scalars(
                select(SshKey.fingerprint).where(SshKey.person_id == ws.person_id, SshKey.revoked_at.is_(None))
            ).all()
            if locked_for_archive(ws.locked_out_at, ws.archiving_until, utcnow()):
                fps = []  # as EC2's heartbeat answer during the lockout: no key of the student's is authorized
            ca = session.scalar(select(CourseSshCa.public_key).where(CourseSshCa.course_id == ws.course_id))
            serials = session.scalars(
                select(StaffSshCert.serial).where(StaffSshCert.workspace_id == ws.id, StaffSshCert.revoked_at.is_(None))
            )
            course_id, instance_id = ws.course_id, ws.instance_id
            notice = student_notice(session, ws.course_id, ws.person_id, utcnow()) or ""
            fingerprints, valid = frozenset(fps), frozenset(serials)
            debug = self._debug(session, ws)
        state = self.instance_state(instance_id)
        cfg = self.config(instance_id) if state == "running" else {}
        mount = str(cfg.get("materials") or f"/mnt/course{course_id}-materials")
        return WorkspaceFacts(
            workspace_id=ws_id, course_id=course_id, instance_id=instance_id, instance_state=state,
            os_user=str(cfg.get("user") or "student"), mount_point=mount,
            student_key_fingerprints=fingerprints, valid_serials=valid,
            ca_public_key=" ".join(ca.split()[:2]) if ca else None, debug=debug, notice=notice,
        )  # fmt: skip

    @staticmethod
    def _debug(session: Session, ws: Workspace) -> dict[int, DebugFacts]:
        """The workspace's open debug sessions by certificate serial."""
        student = session.get(Person, ws.person_id)
        rows = session.execute(
            select(StaffSshCert.serial, DebugSession, Person.name)
            .join(DebugSession, DebugSession.cert_id == StaffSshCert.id)
            .join(Person, Person.id == DebugSession.staff_person_id)
            .where(DebugSession.workspace_id == ws.id, DebugSession.ended_at.is_(None))
        )
        return {
            int(serial): DebugFacts(
                ds.id, f"D{ds.id}", ds.mode, ds.expires_at, student.name if student else "", staff
            )  # fmt: skip
            for serial, ds, staff in rows
        }

    def open_debug_sessions(self, session_ids: set[int]) -> set[int]:
        """Which of these debug sessions are still open (not ended) in the database."""
        if not session_ids:
            return set()
        with self.sessions() as session:
            return set(
                session.scalars(
                    select(DebugSession.id).where(DebugSession.id.in_(session_ids), DebugSession.ended_at.is_(None))
                )
            )

    def store_recording(self, debug: DebugFacts, course_id: int, name: str, path: Path, started_at: datetime) -> None:
        """Upload one recorded channel to the course's archive bucket and record it (a failure is logged, the file
        is kept on the runtime's disk for a later upload)."""
        from classroom.models import DebugRecording
        from classroom.services.debug_recordings import recording_key
        from provisioning.runtime.recording import CAST_TYPE

        key = recording_key(course_id, debug.label, name)
        try:
            result = self.backend.put_private_object(key, path.read_bytes(), content_type=CAST_TYPE,
                                                     course_key=course_key(course_id))  # fmt: skip
        except CloudError as exc:
            log.warning("recording %s kept on disk, not uploaded: %s", path, exc)
            return
        with self.sessions() as session:
            session.add(DebugRecording(debug_session_id=debug.session_id, s3_key=result.key, sha256=result.sha256,
                                       size_bytes=result.size, started_at=started_at))  # fmt: skip
            session.commit()
        path.unlink(missing_ok=True)

    def mirror_materials(self, course_id: int, root: Path) -> None:
        """Copy the course's materials into the folder its sandboxes mount (a storage outage keeps the last copy)."""
        try:
            mirror_materials(self.backend, course_key(course_id), root)
        except CloudError as exc:
            log.warning("course %s: materials not refreshed: %s", course_id, exc)

    def collects_activity(self, instance_id: str) -> bool:
        """Whether the course of this instance's workspace collects activity (its integrity setting)."""
        with self.sessions() as session:
            course_id = session.scalar(select(Workspace.course_id).where(Workspace.instance_id == instance_id))
            return course_id is not None and collecting(session, course_id)

    def collecting_instances(self) -> frozenset[str]:
        """The instances whose course collects activity (one query for all, read by each sync pass)."""
        on = CoursePolicy.integrity[COLLECTING].as_boolean().is_(True)
        query = select(Workspace.instance_id).join(CoursePolicy, CoursePolicy.course_id == Workspace.course_id)
        with self.sessions() as session:
            return frozenset(i for i in session.scalars(query.where(on, Workspace.instance_id.is_not(None))) if i)

    def records_commands(self, instance_id: str) -> bool:
        """Whether the course of this instance's workspace collects activity and records typed commands."""
        with self.sessions() as session:
            course_id = session.scalar(select(Workspace.course_id).where(Workspace.instance_id == instance_id))
            return course_id is not None and collecting(session, course_id) and records_commands(session, course_id)

    def recording_instances(self) -> frozenset[str]:
        """The instances whose course records typed commands (one query for all, read by each sync pass)."""
        on = CoursePolicy.integrity[COLLECTING].as_boolean().is_(True)
        query = (
            select(Workspace.instance_id)
            .join(CoursePolicy, CoursePolicy.course_id == Workspace.course_id)
            .join(IntegritySettings, IntegritySettings.course_id == Workspace.course_id)
            .where(on, IntegritySettings.record_commands.is_(True), Workspace.instance_id.is_not(None))
        )
        with self.sessions() as session:
            return frozenset(i for i in session.scalars(query) if i)

    def saved_homes(self, instance_ids: set[str]) -> set[str]:
        """Which of these (terminated) instances' homes are saved, so the runtime may remove them: the workspace
        whose instance it is has its archive recorded, or staff deleted its disk without an archive (their recorded
        choice that the home is lost, as the retire flow takes it), or a reset that replaced the instance took its
        backup."""
        if not instance_ids:
            return set()
        archived = (
            select(Workspace.instance_id)
            .join(WorkspaceArchive, WorkspaceArchive.workspace_id == Workspace.id)
            .where(Workspace.instance_id.in_(instance_ids))
        )
        waived = select(Workspace.instance_id).where(
            Workspace.instance_id.in_(instance_ids), Workspace.archive_waived_at.is_not(None)
        )
        replaced = select(WorkspaceReset.old_instance_id).where(
            WorkspaceReset.old_instance_id.in_(instance_ids),
            WorkspaceReset.state == "done",
            WorkspaceReset.backup_id.is_not(None),
        )
        with self.sessions() as session:
            return {i for i in session.scalars(archived.union(waived, replaced)) if i}

    def instance_state(self, instance_id: str) -> str:
        """The instance's state ("missing" when EC2 does not know it).

        Running per the last sync pass (every few seconds; the pass that sees a stop also ends the workspace's
        sessions) is taken as is; anything else is asked of EC2 now, so a workspace just started is reachable.
        """
        if instance_id in self.seen_running:
            return "running"
        try:
            found = self.backend.describe([instance_id])
        except CloudError:  # the account cannot answer: refuse (fail closed)
            return "unknown"
        return found[0].state if found else "missing"

    def config(self, instance_id: str) -> InstanceConfig:
        """The agent config the instance's user data carries (cached: user data does not change)."""
        if instance_id not in self._configs:
            text = self.backend.user_data(instance_id)
            cfg = agent_config_from_user_data(text) if "CWC_CONFIG" in text else {}
            self._configs[instance_id] = cfg
        return self._configs[instance_id]
