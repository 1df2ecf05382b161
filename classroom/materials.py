"""Course material names (pure): Unicode kept (NFC), path parts and control characters removed, collisions
planned (ask, replace, or keep both under a new name) before anything is stored."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath

NAME_MAX_BYTES = 200  # a path segment, in UTF-8 (S3 keys allow 1,024 bytes in all; file systems 255 a segment)
FOLDER_MAX_DEPTH = 4
MAX_FILE_BYTES = 15 * 1024 * 1024  # larger files: sync from a staff workspace (read-write mount)
COLLISION_MODES = ("ask", "replace", "rename")
_FORBIDDEN = set('/\\:*?"<>|')


class MaterialNameError(ValueError):
    """A name or folder that cannot be stored; the message says why."""


def clean_segment(raw: str) -> str:
    """One path segment: NFC, without control or path characters, no leading dots or spaces; "" if nothing left."""
    text = unicodedata.normalize("NFC", raw)
    kept = "".join(
        " " if c.isspace() else c
        for c in text
        if c not in _FORBIDDEN and unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    segment = " ".join(kept.split()).lstrip(". ").rstrip(" .")
    if len(segment.encode()) > NAME_MAX_BYTES:
        raise MaterialNameError(f"“{segment[:40]}…” is too long; keep names under {NAME_MAX_BYTES} bytes.")
    return segment


def clean_file_name(raw: str) -> str:
    """The stored name of an uploaded file: its last path part, cleaned (a browser may send a full path)."""
    last = raw.replace("\\", "/").rsplit("/", 1)[-1]
    return clean_segment(last)


def clean_folder(raw: str) -> str:
    """A folder such as `datasets/week 1`, each part cleaned; `..` and empty parts dropped."""
    parts = [clean_segment(p) for p in raw.replace("\\", "/").split("/")]
    parts = [p for p in parts if p]
    if len(parts) > FOLDER_MAX_DEPTH:
        raise MaterialNameError(f"Use at most {FOLDER_MAX_DEPTH} folder levels.")
    return "/".join(parts)


def _renamed(path: str, taken: set[str]) -> str:
    p = PurePosixPath(path)
    suffix = "".join(p.suffixes[-1:])
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    for n in range(2, 10_000):
        candidate = str(p.with_name(f"{stem} ({n}){suffix}"))
        if candidate not in taken:
            return candidate
    raise MaterialNameError(f"Too many files named like {p.name}.")


@dataclass(frozen=True)
class UploadPlan:
    """Where each upload goes (in order), whether it may overwrite, and the names that need a decision."""

    paths: list[str]
    overwrite: bool
    conflicts: list[str]


def plan_uploads(paths: list[str], existing: set[str], mode: str) -> UploadPlan:
    """Place each path: `ask` lists every clash (nothing is stored), `replace` overwrites, `rename` keeps both."""
    if mode not in COLLISION_MODES:
        raise MaterialNameError("Choose what to do with a file of the same name: ask, replace, or keep both.")
    taken, batch = set(existing), set()
    placed: list[str] = []
    conflicts: list[str] = []
    for path in paths:
        if path in taken:
            if mode == "ask":
                conflicts.append(path)
                continue
            if mode == "rename" or path in batch:  # two files of one upload never replace each other
                path = _renamed(path, taken)
        taken.add(path)
        batch.add(path)
        placed.append(path)
    return UploadPlan(placed, mode == "replace", conflicts)


def human_size(size: int) -> str:
    """A byte count as people read it: 980 bytes, 15.2 KB, 60.0 MB, 1.4 GB (powers of 1,024)."""
    if size < 1024:
        return f"{size} byte{'s' if size != 1 else ''}"
    value = float(size)  # display only: sizes are never summed or compared as floats
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


DEFAULT_ALLOWANCE_BYTES = 200 * 1024**3  # a course's materials allowance unless its settings say otherwise


def clean_path(raw: str) -> str:
    """A browser's relative path (`assignments/hw1/data.csv`): folders and name cleaned; "" if no name is left."""
    text = raw.replace("\\", "/")
    folder, _, name = text.rpartition("/")
    cleaned_name, cleaned_folder = clean_file_name(name), clean_folder(folder)
    if not cleaned_name:
        return ""
    return f"{cleaned_folder}/{cleaned_name}" if cleaned_folder else cleaned_name


def allowance_refusal(used: int, size: int, freed: int, allowance: int) -> str | None:
    """Why a file of `size` bytes does not fit (None if it does); `freed` is what a replaced file gives back."""
    after = used - freed + size
    if after <= allowance:
        return None
    left = max(0, allowance - used + freed)
    return (
        f"This file ({human_size(size)}) does not fit in the course's storage allowance of {human_size(allowance)}: "
        f"{human_size(used)} is used, {human_size(left)} is left. Delete files you no longer need, "
        "or ask the instructor to raise the allowance in the course settings. Nothing was uploaded."
    )


ALLOWANCE_MAX_GB = 100_000  # 100 TB: far above any course; a typo such as 2000000 is refused


def parse_allowance_gb(raw: str) -> int:
    """The allowance typed in GB ("200", "0.5") as bytes (powers of 1,024, like the sizes shown)."""
    try:
        gb = Decimal(raw.strip())
    except InvalidOperation:
        raise MaterialNameError("Type the allowance in GB, for example 200.") from None
    if not gb.is_finite() or gb <= 0 or gb > ALLOWANCE_MAX_GB:
        raise MaterialNameError(f"The allowance must be more than 0 and at most {ALLOWANCE_MAX_GB:,} GB.")
    return max(1, int(gb * 1024**3))
