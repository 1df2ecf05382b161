"""Read an EC2 workspace's home over SFTP: list, read, zip, tar.gz, with the local runtime's answers; and restore
a backup into a folder of it, or a reset's kept paths into a new machine's home (create only: nothing is
overwritten, removed or renamed), and read back the SHA-256 of what was restored.

One SSH connection per call (provisioning.instance_ssh: the course CA's certificate forcing `internal-sftp -R`,
the pinned host key). Paths go through `safe_relpath` and every component is checked with lstat: a symbolic link
is listed, never followed, as in the local runtime's HomeFiles. Sizes are bounded as there (the viewer's limit,
the export's and the backup's), also while reading, so a file growing in the meantime cannot pass the limit.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import posixpath
import stat
import tarfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncssh

from provisioning.instance_ssh import SshEndpoint, SshFailure, WorkspaceSshError, connect, ssh_error
from provisioning.runtime.home_files import MAX_EXPORT_BYTES, MAX_VIEW_BYTES, Entry, PathRefused, safe_relpath

T = TypeVar("T")
VIEW_TIMEOUT_S = 60  # a page's listing or file
ARCHIVE_TIMEOUT_S = 900  # a zip or a backup of up to MAX_EXPORT_BYTES
ZIP_EPOCH = 315532800  # 1980-01-01: zip cannot date a file earlier


@dataclass(frozen=True)
class _File:
    rel: str
    path: str
    size: int
    mtime: int
    mode: int


def _kind(mode: int) -> str:
    return ("link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode)
            else "file" if stat.S_ISREG(mode) else "other")  # fmt: skip


class RemoteHome:
    """The home of one running EC2 workspace, reached with a key and its one-connection certificate."""

    def __init__(self, endpoint: SshEndpoint, key: asyncssh.SSHKey, certificate: str) -> None:
        self.endpoint, self.key, self.certificate = endpoint, key, certificate

    def browse(self, rel: str) -> list[Entry] | bytes:
        """A folder's entries (folders first, then by name), or a regular file's bytes up to the viewer's limit."""
        return self._run(lambda sftp, home: self._browse(sftp, home, rel), VIEW_TIMEOUT_S)

    def zip_folder(self, rel: str) -> tuple[bytes, int]:
        """A zip of the folder (or the whole home), and how many files it holds."""
        return self._run(lambda sftp, home: self._zip(sftp, home, rel), ARCHIVE_TIMEOUT_S)

    def tar_gz_home(self) -> tuple[bytes, int]:
        """The whole home as a deterministic tar.gz (paths relative to the home), and its file count."""
        return self._run(self._tar_gz, ARCHIVE_TIMEOUT_S)

    def restore(self, backup: bytes, into: str, only: Callable[[str], bool] | None = None) -> dict[str, int]:
        """Write every file of the backup (a tar.gz of a home) under the folder `into` (or those whose path `only`
        accepts: a reset's keep paths); returns {path: size}. Files are created, never overwritten: one already
        there with the same size counts as restored by an earlier run (a retried job; the caller compares SHA-256
        with `digests`), any other refuses. Needs a certificate forcing TOOL_RESTORE_COMMAND."""
        members, folder = backup_members(backup), safe_relpath(into)
        members = [m for m in members if only is None or only(m.rel)]
        return self._run(lambda sftp, home: self._restore(sftp, home, members, folder), ARCHIVE_TIMEOUT_S)

    def digests(self, paths: list[str]) -> dict[str, str]:
        """The SHA-256 (hex) of each of these regular files, read back as the student's login (no link followed;
        together bounded by the backup's limit); a missing one is left out."""
        return self._run(lambda sftp, home: self._digests(sftp, home, paths), ARCHIVE_TIMEOUT_S)

    def _run(self, op: Callable[[asyncssh.SFTPClient, str], Awaitable[T]], timeout: float) -> T:
        return asyncio.run(self._session(op, timeout))

    async def _session(self, op: Callable[[asyncssh.SFTPClient, str], Awaitable[T]], timeout: float) -> T:
        conn = await connect(self.endpoint, self.key, self.certificate)
        try:
            async with conn.start_sftp_client() as sftp:  # bounded: a file swapped for a FIFO must not hang us
                return await asyncio.wait_for(op(sftp, await sftp.realpath(".")), timeout)
        except (PathRefused, FileNotFoundError):
            raise
        except TimeoutError as exc:
            raise WorkspaceSshError(SshFailure.FAILED, f"Reading the home took over {timeout:.0f} s: stopped.") from exc
        except (asyncssh.Error, OSError) as exc:
            raise ssh_error(exc, self.endpoint) from exc
        except UnicodeDecodeError as exc:
            raise WorkspaceSshError(SshFailure.FAILED, "A file name in the home is not UTF-8: export it.") from exc
        finally:
            conn.close()
            await conn.wait_closed()

    async def _resolve(self, sftp: asyncssh.SFTPClient, home: str, rel: str) -> tuple[str, asyncssh.SFTPAttrs]:
        path, attrs = home, await sftp.lstat(home)
        for part in rel.split("/") if rel else []:
            path = posixpath.join(path, part)
            try:
                attrs = await sftp.lstat(path)
            except asyncssh.SFTPNoSuchFile:
                raise FileNotFoundError(rel) from None
            if stat.S_ISLNK(attrs.permissions or 0):
                raise PathRefused(f"{rel} goes through a symbolic link: links are listed, never followed.")
        return path, attrs

    async def _read(self, sftp: asyncssh.SFTPClient, path: str, rel: str, limit: int) -> bytes:
        try:
            async with sftp.open(path, "rb") as fh:
                data = await fh.read(limit + 1)
        except asyncssh.SFTPPermissionDenied:
            raise PathRefused(f"{rel} cannot be read by the student's login (permission denied).") from None
        if len(data) > limit:
            raise PathRefused(f"{rel} is larger than the {limit}-byte limit. Export a folder instead.")
        return bytes(data)

    async def _browse(self, sftp: asyncssh.SFTPClient, home: str, raw: str) -> list[Entry] | bytes:
        rel = safe_relpath(raw)
        path, attrs = await self._resolve(sftp, home, rel)
        mode = attrs.permissions or 0
        if stat.S_ISDIR(mode):
            entries = []
            for name in await sftp.readdir(path):
                if name.filename in (".", ".."):
                    continue
                child = name.attrs
                path_rel, kind = f"{rel}/{name.filename}".lstrip("/"), _kind(child.permissions or 0)
                entries.append(Entry(str(name.filename), path_rel, kind, child.size or 0, float(child.mtime or 0)))
            return sorted(entries, key=lambda e: (e.kind != "dir", e.name.lower()))
        if not stat.S_ISREG(mode):
            raise PathRefused(f"{rel} is not a file in the student's home.")
        if (attrs.size or 0) > MAX_VIEW_BYTES:
            raise PathRefused(f"{rel} is {attrs.size} bytes: larger than the {MAX_VIEW_BYTES}-byte viewer. Export it.")
        return await self._read(sftp, path, rel, MAX_VIEW_BYTES)

    async def _walk(self, sftp: asyncssh.SFTPClient, home: str, raw: str) -> list[_File]:
        """Every regular file under the folder, by path; symbolic links and other kinds are skipped."""
        rel = safe_relpath(raw)
        top, attrs = await self._resolve(sftp, home, rel)
        if not stat.S_ISDIR(attrs.permissions or 0):
            raise PathRefused("Export takes the home or a folder.")
        found, folders, total = [], [(top, rel)], 0
        while folders:
            folder, folder_rel = folders.pop()
            for name in await sftp.readdir(folder):
                if name.filename in (".", ".."):
                    continue
                mode, child_rel = name.attrs.permissions or 0, f"{folder_rel}/{name.filename}".lstrip("/")
                child = posixpath.join(folder, str(name.filename))
                if stat.S_ISDIR(mode):
                    folders.append((child, child_rel))
                elif stat.S_ISREG(mode):
                    total += name.attrs.size or 0
                    found.append(_File(child_rel, child, name.attrs.size or 0, int(name.attrs.mtime or 0), mode))
            if total > MAX_EXPORT_BYTES:
                too_big = f"{rel or 'The home'} is larger than {MAX_EXPORT_BYTES // 1024**2} MB"
                raise PathRefused(f"{too_big}: export a folder." if rel else f"{too_big}: export one folder at a time.")
        return sorted(found, key=lambda f: f.rel)

    async def _contents(self, sftp: asyncssh.SFTPClient, files: list[_File]) -> list[bytes]:
        budget, out = MAX_EXPORT_BYTES, []
        for f in files:
            data = await self._read(sftp, f.path, f.rel, budget)
            budget -= len(data)
            out.append(data)
        return out

    async def _zip(self, sftp: asyncssh.SFTPClient, home: str, rel: str) -> tuple[bytes, int]:
        files = await self._walk(sftp, home, rel)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for f, data in zip(files, await self._contents(sftp, files), strict=True):
                when = time.gmtime(max(f.mtime, ZIP_EPOCH))[:6]
                info = zipfile.ZipInfo(f.rel, date_time=when)
                info.external_attr = (stat.S_IMODE(f.mode) | stat.S_IFREG) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        return out.getvalue(), len(files)

    async def _tar_gz(self, sftp: asyncssh.SFTPClient, home: str) -> tuple[bytes, int]:
        files = await self._walk(sftp, home, "")
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for f, data in zip(files, await self._contents(sftp, files), strict=True):
                info = tarfile.TarInfo(f.rel)
                info.size, info.mtime, info.mode = len(data), f.mtime, stat.S_IMODE(f.mode)
                tar.addfile(info, io.BytesIO(data))
        return gzip.compress(raw.getvalue(), mtime=0), len(files)

    async def _digests(self, sftp: asyncssh.SFTPClient, home: str, paths: list[str]) -> dict[str, str]:
        found, budget = {}, MAX_EXPORT_BYTES
        for raw in paths:
            rel = safe_relpath(raw)
            try:
                path, attrs = await self._resolve(sftp, home, rel)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(attrs.permissions or 0):
                raise PathRefused(f"{rel} is not a regular file in the student's home.")
            data = await self._read(sftp, path, rel, budget)
            budget -= len(data)
            found[rel] = hashlib.sha256(data).hexdigest()
        return found

    async def _folder(self, sftp: asyncssh.SFTPClient, home: str, rel: str) -> str:
        """The folder's path, made (as the student) where missing; PathRefused when a part is not a real folder."""
        path = home
        for part in rel.split("/") if rel else []:
            path = posixpath.join(path, part)
            try:
                attrs = await sftp.lstat(path)
            except asyncssh.SFTPNoSuchFile:
                await sftp.mkdir(path)
                continue
            if not stat.S_ISDIR(attrs.permissions or 0):
                raise PathRefused(f"{rel} is not a folder in the student's home (a file or a link is in the way).")
        return path

    async def _restore(self, sftp: asyncssh.SFTPClient, home: str, members: list[_Member], into: str) -> dict[str, int]:
        written: dict[str, int] = {}
        for m in members:
            target = f"{into}/{m.rel}" if into else m.rel
            folder, _, name = target.rpartition("/")
            path = posixpath.join(await self._folder(sftp, home, folder), name)
            try:
                async with sftp.open(path, "xb", attrs=asyncssh.SFTPAttrs(permissions=m.mode)) as fh:
                    await fh.write(m.data)
            except asyncssh.SFTPFailure:  # O_EXCL: it exists (SFTP v3 says only "failure")
                there = await sftp.lstat(path)
                if not stat.S_ISREG(there.permissions or 0) or there.size != len(m.data):
                    raise PathRefused(
                        f"{target} already exists in the student's home: nothing was overwritten."
                    ) from None
            else:
                await sftp.utime(path, (m.mtime, m.mtime))
            written[m.rel] = len(m.data)
        return written


@dataclass(frozen=True)
class _Member:
    rel: str
    data: bytes
    mode: int
    mtime: int


def backup_members(backup: bytes) -> list[_Member]:
    """The regular files of a home's tar.gz whose names stay inside a home (others skipped, as locally)."""
    found = []
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(backup)), mode="r:") as tar:
        for member in tar.getmembers():
            try:
                rel = safe_relpath(member.name)
            except PathRefused:
                continue
            data = tar.extractfile(member) if member.isfile() and rel else None
            if data is not None:
                found.append(_Member(rel, data.read(), member.mode & 0o777 or 0o644, int(member.mtime)))
    return found
