"""Read a local workspace's home from the runtime's data folder: list, read, zip, tar.gz; and restore into one.

The local runtime keeps each instance's home at <data_dir>/runtime/homes/<instance id>; the web app and the jobs
run on the same machine in `make run` and read it here, read-only. Every path a person sends goes through
`safe_relpath` (pure: no absolute paths, no "..", no NUL) and is then opened without following symbolic links
out of the home (a symlink is listed, never followed). On EC2 the home is on the instance's volume: reading it
needs the workspace agent, which this version does not have (`available` says False, the pages say so).
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

MAX_VIEW_BYTES = 2 * 1024**2  # a file shown in the page
MAX_EXPORT_BYTES = 512 * 1024**2  # a zip or a backup built in memory
HOST_UID = 65534  # what a sandboxed process is on the host (see sandbox.py)


class PathRefused(ValueError):
    """The path is not inside the home, or not what was asked (the message is for the person)."""


@dataclass(frozen=True)
class Entry:
    """One item of a folder listing."""

    name: str
    path: str  # relative to the home
    kind: str  # dir | file | link | other
    size: int
    mtime: float

    @property
    def changed(self) -> str:
        return datetime.fromtimestamp(self.mtime, UTC).strftime("%Y-%m-%d %H:%M")


def safe_relpath(raw: str | None) -> str:
    """The path relative to the home ("" for the home itself); PathRefused when it could leave the home. Pure."""
    text = (raw or "").strip()
    if "\x00" in text or "\\" in text or len(text) > 1024:
        raise PathRefused("That is not a path in the student's home.")
    if text.startswith("/"):
        raise PathRefused("Give a path inside the student's home (no leading /).")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathRefused("A path may not go up (..): it must stay inside the student's home.")
    return "/".join(parts)


def keep_matches(rel: str, patterns: list[str]) -> bool:
    """Whether a home-relative file path is one a reset keeps. "dir/" keeps a folder; a glob without / matches
    the file's name anywhere ("*.ipynb"); a glob with / matches the whole path. Pure."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        if pattern.endswith("/"):
            if rel.startswith(pattern):
                return True
        elif "/" in pattern:
            if fnmatch.fnmatchcase(rel, pattern):
                return True
        elif fnmatch.fnmatchcase(name, pattern):
            return True
    return False


class HomeFiles:
    """The homes of the local runtime's instances (root = <data_dir>/runtime/homes)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def home(self, instance_id: str) -> Path:
        if not instance_id or "/" in instance_id or instance_id.startswith("."):
            raise PathRefused("No such workspace.")
        return self.root / instance_id

    def available(self, instance_id: str | None) -> bool:
        """Whether this machine holds the instance's home (the local runtime), so it can be read here."""
        return bool(instance_id) and self.home(str(instance_id)).is_dir()

    def _resolve(self, instance_id: str, rel: str) -> Path:
        home = self.home(instance_id)
        path = home
        for part in safe_relpath(rel).split("/") if rel else []:
            path = path / part
            if path.is_symlink():
                raise PathRefused(f"{rel} goes through a symbolic link: links are listed, never followed.")
        real_home = os.path.realpath(home)
        if os.path.commonpath([real_home, os.path.realpath(path)]) != real_home:
            raise PathRefused("That path is not inside the student's home.")
        return path

    def list_dir(self, instance_id: str, rel: str) -> list[Entry]:
        """The folder's entries, folders first then by name."""
        path = self._resolve(instance_id, rel)
        if not path.is_dir():
            raise PathRefused(f"{rel or '~'} is not a folder.")
        entries = []
        for child in path.iterdir():
            st = child.lstat()
            kind = ("link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode)
                    else "file" if stat.S_ISREG(st.st_mode) else "other")  # fmt: skip
            entries.append(Entry(child.name, f"{rel}/{child.name}".lstrip("/"), kind, st.st_size, st.st_mtime))
        return sorted(entries, key=lambda e: (e.kind != "dir", e.name.lower()))

    def is_dir(self, instance_id: str, rel: str) -> bool:
        return self._resolve(instance_id, rel).is_dir()

    def read_file(self, instance_id: str, rel: str, limit: int = MAX_VIEW_BYTES) -> bytes:
        """A regular file's bytes (PathRefused when it is not one or is larger than `limit`)."""
        path = self._resolve(instance_id, rel)
        st = path.lstat() if path.exists() or path.is_symlink() else None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise PathRefused(f"{rel} is not a file in the student's home.")
        if st.st_size > limit:
            raise PathRefused(f"{rel} is {st.st_size} bytes: larger than the {limit}-byte viewer. Export it instead.")
        return path.read_bytes()

    def walk(self, instance_id: str, rel: str = "") -> list[tuple[str, Path]]:
        """Every regular file under the folder (home-relative path, host path); symlinks are skipped."""
        top = self._resolve(instance_id, rel)
        found: list[tuple[str, Path]] = []
        home = self.home(instance_id)
        for folder, dirs, files in os.walk(top, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                if path.is_file() and not path.is_symlink():
                    found.append((path.relative_to(home).as_posix(), path))
        return found

    def zip_folder(self, instance_id: str, rel: str) -> tuple[bytes, int]:
        """A zip of the folder (or the whole home), and how many files it holds."""
        files = self.walk(instance_id, rel)
        if sum(p.stat().st_size for _, p in files) > MAX_EXPORT_BYTES:
            raise PathRefused(f"{rel or 'The home'} is larger than {MAX_EXPORT_BYTES // 1024**2} MB: export a folder.")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, path in files:
                zf.write(path, name)
        return out.getvalue(), len(files)

    def tar_gz_home(self, instance_id: str) -> tuple[bytes, int]:
        """The whole home as a deterministic tar.gz (paths relative to the home), and its file count."""
        files = self.walk(instance_id)
        if sum(p.stat().st_size for _, p in files) > MAX_EXPORT_BYTES:
            raise PathRefused(f"The home is larger than {MAX_EXPORT_BYTES // 1024**2} MB: the backup is refused.")
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in files:
                info = tarfile.TarInfo(name)
                st = path.stat()
                info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), stat.S_IMODE(st.st_mode)
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
        return gzip.compress(raw.getvalue(), mtime=0), len(files)

    def restore(self, instance_id: str, backup: bytes, patterns: list[str] | None, into: str = "") -> dict[str, int]:
        """Write the backup's files that match `patterns` (all when None) into the home (under `into`);
        returns {path: size}. Members that could leave the home are skipped."""
        home = self.home(instance_id)
        home.mkdir(parents=True, exist_ok=True)
        written: dict[str, int] = {}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(backup)), mode="r:") as tar:
            for member in tar.getmembers():
                try:
                    rel = safe_relpath(member.name)
                except PathRefused:
                    continue
                if not member.isfile() or not rel or (patterns is not None and not keep_matches(rel, patterns)):
                    continue
                target = home / into / rel if into else home / rel
                _make_parents(home, target.parent)
                data = tar.extractfile(member)
                assert data is not None
                target.write_bytes(data.read())
                os.chmod(target, member.mode & 0o777 or 0o644)
                os.utime(target, (member.mtime, member.mtime))
                _own(target)
                written[rel] = member.size
        return written


class LocalHome:
    """One local workspace's home with the same three reads as an EC2 one (provisioning.remote_home)."""

    def __init__(self, homes: HomeFiles, instance_id: str) -> None:
        self.homes, self.instance_id = homes, instance_id

    def browse(self, rel: str) -> list[Entry] | bytes:
        """A folder's entries, or a regular file's bytes up to the viewer's limit."""
        rel = safe_relpath(rel)
        if self.homes.is_dir(self.instance_id, rel):
            return self.homes.list_dir(self.instance_id, rel)
        return self.homes.read_file(self.instance_id, rel)

    def zip_folder(self, rel: str) -> tuple[bytes, int]:
        """A zip of the folder (or the whole home), and how many files it holds."""
        rel = safe_relpath(rel)
        if not self.homes.is_dir(self.instance_id, rel):
            raise PathRefused("Export takes the home or a folder.")
        return self.homes.zip_folder(self.instance_id, rel)

    def tar_gz_home(self) -> tuple[bytes, int]:
        """The whole home as a deterministic tar.gz, and its file count."""
        return self.homes.tar_gz_home(self.instance_id)

    def restore(self, backup: bytes, into: str) -> dict[str, int]:
        """Write every file of the backup under the folder `into`; returns {path: size}."""
        return self.homes.restore(self.instance_id, backup, None, into=safe_relpath(into))


def _make_parents(home: Path, folder: Path) -> None:
    missing = []
    while not folder.exists() and folder != home:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        _own(path)


def _own(path: Path) -> None:
    if os.geteuid() == 0:  # the sandbox's user owns what is restored into its home
        os.chown(path, HOST_UID, HOST_UID, follow_symlinks=False)
