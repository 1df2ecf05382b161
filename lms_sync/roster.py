"""The roster diff: what the LMS says against what the tool has, as a list of changes. Pure: no I/O.

Rules: levels follow the LMS the way a launch does (classroom.roles.level_for_launch: the LMS says staff or
student, a staff member stays staff whatever the roster says, a level the owner set is kept, a newcomer the LMS
calls staff starts as a read-only TA, nobody becomes owner by sync); staff the roster lists as students (Moodle's
non-editing teachers) are reported, not demoted; the roles the roster lists are recorded per enrollment;
the owner is never changed or dropped by a sync; Inactive/Deleted members and members whose role gives no
access are dropped (data kept); on a complete roster, active members the LMS no longer lists are dropped too,
except people added by CSV import who have not been matched to an LMS account yet; sections change only
when the source knows them; a CSV placeholder is claimed by the LMS account with the same email.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from classroom.models import EnrollmentStatus
from classroom.roles import LtiRole, StaffLevel, is_staff, level_for_launch, map_lti_roles
from lms_sync.ports import RemoteMember

PLACEHOLDER_PREFIX = "csv:"


@dataclass(frozen=True)
class LocalMember:
    """One enrollment of the course with its person."""

    enrollment_id: int
    person_id: int
    sub: str
    level: StaffLevel
    status: EnrollmentStatus
    section: str = ""
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    email: str = ""
    pinned: bool = False  # the owner set this level
    nrps_roles: tuple[str, ...] = ()  # as the previous sync recorded them

    @property
    def is_placeholder(self) -> bool:
        """Added by CSV import and not yet matched to an LMS account."""
        return self.sub.startswith(PLACEHOLDER_PREFIX)


@dataclass(frozen=True)
class NewMember:
    """Someone to enroll (their person row may exist from another course)."""

    member: RemoteMember
    level: StaffLevel


@dataclass(frozen=True)
class LevelChange:
    enrollment_id: int
    person_id: int
    before: StaffLevel
    after: StaffLevel


@dataclass(frozen=True)
class StatusChange:
    enrollment_id: int
    person_id: int
    level: StaffLevel
    reason: str


@dataclass(frozen=True)
class PersonUpdate:
    person_id: int
    name: str
    given_name: str
    family_name: str
    email: str


@dataclass
class RosterChanges:
    """Everything a sync must write; empty means "write nothing"."""

    adds: list[NewMember] = field(default_factory=list)
    claims: list[tuple[int, str]] = field(default_factory=list)  # (placeholder person id, LMS user id)
    person_updates: list[PersonUpdate] = field(default_factory=list)
    level_changes: list[LevelChange] = field(default_factory=list)
    drops: list[StatusChange] = field(default_factory=list)
    reactivations: list[StatusChange] = field(default_factory=list)
    sections: list[tuple[int, str]] = field(default_factory=list)  # (enrollment id, section)
    roles_seen: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # (enrollment id, roster roles)
    kept_staff: list[int] = field(default_factory=list)  # person ids of staff the roster lists as students

    @property
    def empty(self) -> bool:
        """Nothing to write (kept_staff is a report, not a write)."""
        return not any(
            (
                self.adds,
                self.claims,
                self.person_updates,
                self.level_changes,
                self.drops,
                self.reactivations,
                self.sections,
                self.roles_seen,
            )
        )

    def counts(self) -> dict[str, int]:
        """How many of each change (for progress, audit and the page)."""
        return {
            "added": len(self.adds),
            "claimed": len(self.claims),
            "updated": len(self.person_updates),
            "role_changes": len(self.level_changes),
            "dropped": len(self.drops),
            "reactivated": len(self.reactivations),
            "sections": len(self.sections),
            "kept_staff": len(self.kept_staff),
        }


def _person_update(local: LocalMember, remote: RemoteMember) -> PersonUpdate | None:
    """New names or email when the LMS sends them (an omitted field never blanks ours)."""
    fields = {}
    for name in ("name", "given_name", "family_name", "email"):
        value = getattr(remote, name)
        fields[name] = value if value else getattr(local, name)
    if all(fields[n] == getattr(local, n) for n in fields):
        return None
    return PersonUpdate(local.person_id, **fields)


def _is_active(remote: RemoteMember) -> bool:
    return remote.status.strip().lower() not in ("inactive", "deleted")


def _compare(local: LocalMember, remote: RemoteMember, changes: RosterChanges) -> None:
    update = _person_update(local, remote)
    if update is not None:
        changes.person_updates.append(update)
    if tuple(remote.roles) != local.nrps_roles:
        changes.roles_seen.append((local.enrollment_id, tuple(remote.roles)))
    if local.level is StaffLevel.OWNER:
        return  # the owner's access is the owner's: never changed by a sync
    role = map_lti_roles(remote.roles)
    level = level_for_launch(role, local.level, True, pinned=local.pinned) if _is_active(remote) else None
    if level is None:
        if local.status is EnrollmentStatus.ACTIVE:
            reason = "no longer active in the LMS" if not _is_active(remote) else "LMS role gives no access"
            changes.drops.append(StatusChange(local.enrollment_id, local.person_id, local.level, reason))
        return
    if local.status is EnrollmentStatus.DROPPED:
        changes.reactivations.append(StatusChange(local.enrollment_id, local.person_id, level, "active in the LMS"))
    if is_staff(level) and role is LtiRole.STUDENT:
        changes.kept_staff.append(local.person_id)
    if level is not local.level:
        changes.level_changes.append(LevelChange(local.enrollment_id, local.person_id, local.level, level))
    if remote.section is not None and remote.section != local.section:
        changes.sections.append((local.enrollment_id, remote.section))


def diff_roster(local: Sequence[LocalMember], remote: Sequence[RemoteMember], *, complete: bool) -> RosterChanges:
    """Changes that make the course match the LMS; `complete` says `remote` is the whole roster (not differences)."""
    changes = RosterChanges()
    by_sub = {m.sub: m for m in local}
    placeholders = {m.email.lower(): m for m in local if m.is_placeholder and m.email}
    seen: set[str] = set()
    for remote_member in remote:
        if remote_member.user_id in seen:
            continue  # a member listed twice (paging overlap) counts once
        seen.add(remote_member.user_id)
        current = by_sub.get(remote_member.user_id)
        if current is None and remote_member.email:
            current = placeholders.pop(remote_member.email.lower(), None)
            if current is not None:
                changes.claims.append((current.person_id, remote_member.user_id))
        if current is not None:
            _compare(current, remote_member, changes)
            continue
        if not _is_active(remote_member):
            continue
        level = level_for_launch(map_lti_roles(remote_member.roles), None, True)
        if level is not None:
            changes.adds.append(NewMember(remote_member, level))
    if complete:
        claimed = {person_id for person_id, _ in changes.claims}
        for m in local:
            if (
                m.sub not in seen
                and m.person_id not in claimed
                and not m.is_placeholder
                and m.status is EnrollmentStatus.ACTIVE
                and m.level is not StaffLevel.OWNER
            ):
                changes.drops.append(StatusChange(m.enrollment_id, m.person_id, m.level, "not in the LMS roster"))
    return changes
