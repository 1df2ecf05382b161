"""Mirror a course's materials (its S3 prefix) into a folder that workspaces mount read-only: what the local
runtime's sandboxes see at /mnt/<course>-materials. New and changed files are fetched, removed ones deleted, so an
upload, rename or delete on the materials page shows up at the workspace's next connection."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from provisioning.backend import CloudBackend, CloudError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MirrorPlan:
    """Paths to fetch (missing or of another size) and to remove (no longer in the materials)."""

    fetch: list[str]
    remove: list[str]


def plan_mirror(remote: dict[str, int], local: dict[str, int]) -> MirrorPlan:
    """Compare the materials (path -> size) with the folder's files; pure."""
    fetch = sorted(p for p, size in remote.items() if local.get(p) != size)
    return MirrorPlan(fetch, sorted(set(local) - set(remote)))


def _inside(root: Path, path: str) -> Path | None:
    """The file under `root` for a material path, or None if it would land outside (a hostile key)."""
    target = (root / path).resolve()
    return target if target.is_relative_to(root.resolve()) and target != root.resolve() else None


def local_files(root: Path) -> dict[str, int]:
    """path -> size of the regular files under `root`."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def mirror_materials(backend: CloudBackend, course_key: str, root: Path) -> MirrorPlan:
    """Bring `root` in line with the course's materials; raises CloudError when the storage does not answer."""
    try:
        remote = dict(backend.list_materials(course_key))
        plan = plan_mirror(remote, local_files(root))
        for path in plan.fetch:
            target = _inside(root, path)
            if target is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".cwc-partial")
            backend.download_material(course_key, path, partial)
            partial.replace(target)  # never a half-written file under its real name
    except CloudError as exc:
        raise CloudError("The materials storage could not be read; the workspace keeps its last copy.") from exc
    for path in plan.remove:
        target = _inside(root, path)
        if target is not None:
            target.unlink(missing_ok=True)
    return plan
