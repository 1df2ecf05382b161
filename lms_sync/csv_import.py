"""Roster CSV parsing: the seed's `email,name,section`, Canvas and Blackboard exports. Pure: bytes in, rows out.

Every problem is reported with the file's line number; nothing is guessed silently. Shapes understood:
- Cloud Workstation / the seed: `email,name,section` (any order, extra columns ignored);
- Canvas SIS `users.csv` (`user_id,login_id,...,email,status`) and the Canvas gradebook export
  (`Student,ID,SIS User ID,SIS Login ID,Section,...` with its "Points Possible" row);
- Blackboard Learn Grade Center / user downloads (`Last Name,First Name,Username,...`, often UTF-16 and tabs).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

# normalised header -> field; the first matching column wins
ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "e-mail", "mail", "primaryemail", "useremail"),
    "login": ("sisloginid", "loginid", "username", "userid(login)"),
    "name": ("name", "fullname", "displayname", "studentname", "student"),
    "first": ("firstname", "givenname", "first"),
    "last": ("lastname", "familyname", "surname", "last"),
    "section": ("section", "sectionname", "sections", "group", "childcourseid"),
    "status": ("status", "availability", "enrollmentstatus"),
}
INACTIVE = {"deleted", "inactive", "completed", "no", "unavailable", "disabled"}


@dataclass(frozen=True)
class ImportRow:
    """One valid person to enroll."""

    line: int
    email: str
    name: str
    section: str


@dataclass(frozen=True)
class RowError:
    """A problem on one line (line 0: the whole file)."""

    line: int
    message: str


@dataclass
class ParsedRoster:
    """Everything the preview shows."""

    format: str = ""
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: list[RowError] = field(default_factory=list)  # not errors: inactive people, "Points Possible" rows

    @property
    def file_error(self) -> str | None:
        return next((e.message for e in self.errors if e.line == 0), None)

    @property
    def ok(self) -> bool:
        return not self.errors


def _norm(header: str) -> str:
    return re.sub(r"[\s_]+", "", header.strip().strip('"').lower())


def decode(data: bytes) -> str:
    """Text from UTF-8 (with or without BOM) or UTF-16 with BOM; raise ValueError naming the line otherwise."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ValueError("The file says it is UTF-16 but is not valid UTF-16 text.") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}). In Excel choose "
            "“Save as… CSV UTF-8”, or export the roster again from your LMS."
        ) from exc


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _columns(header: list[str]) -> dict[str, int]:
    normalised = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for name, aliases in ALIASES.items():
        for alias in aliases:
            if alias in normalised:
                found[name] = normalised.index(alias)
                break
    return found


def detect_format(header: list[str]) -> str:
    """A name for the shape of the file (shown in the preview)."""
    cols = {_norm(h) for h in header}
    if {"student", "sisloginid"} <= cols or {"student", "section", "id"} <= cols:
        return "Canvas gradebook export"
    if {"user_id", "login_id"} <= {h.strip().lower() for h in header}:
        return "Canvas SIS users.csv"
    if {"lastname", "firstname", "username"} <= cols:
        return "Blackboard Learn export"
    return "email, name, section"


def _name(cells: list[str], cols: dict[str, int]) -> str:
    def cell(key: str) -> str:
        i = cols.get(key)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    name = cell("name")
    if name and "," in name and cols.get("name") is not None and not cell("first"):
        last, _, first = name.partition(",")  # Canvas gradebook: "Chen, Emily"
        name = f"{first.strip()} {last.strip()}".strip()
    return name or " ".join(p for p in (cell("first"), cell("last")) if p)


def _row(cells: list[str], cols: dict[str, int], width: int, line: int) -> ImportRow | RowError | None:
    if not any(c.strip() for c in cells):
        return None
    if len(cells) != width:
        return RowError(line, f"Expected {width} columns like the header, found {len(cells)}.")
    if "\x00" in "".join(cells):
        return RowError(line, "The line contains a NUL character.")

    def cell(key: str) -> str:
        i = cols.get(key)
        return cells[i].strip() if i is not None else ""

    if cell("name").lower() in ("points possible", "student, test", "test student"):
        return RowError(-line, "Skipped: not a student (Canvas “Points Possible” or test student row).")
    status = cell("status").lower()
    if status in INACTIVE:
        return RowError(-line, f"Skipped: status is “{cell('status')}”.")
    email = cell("email") or (cell("login") if "@" in cell("login") else "")
    if not email:
        return RowError(
            line, "No email address" + (f" (login “{cell('login')}” is not one)." if cell("login") else ".")
        )
    if len(email) > 320 or not EMAIL.match(email):
        return RowError(line, f"“{email[:80]}” is not a valid email address.")
    name = _name(cells, cols)
    if not name:
        return RowError(line, "The name is empty.")
    if len(name) > 255:
        return RowError(line, "The name is longer than 255 characters.")
    section = cell("section")
    if len(section) > 255:
        return RowError(line, "The section is longer than 255 characters.")
    return ImportRow(line, email.lower(), name, section)


def parse_roster(data: bytes) -> ParsedRoster:
    """Parse a roster file; the result lists valid rows, per-line errors and skipped lines."""
    result = ParsedRoster()
    if not data.strip():
        result.errors.append(RowError(0, "The file is empty."))
        return result
    if len(data) > MAX_BYTES:
        result.errors.append(RowError(0, f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB."))
        return result
    try:
        content = decode(data)
    except ValueError as exc:
        result.errors.append(RowError(0, str(exc)))
        return result
    if "\x00" in content.split("\n", 1)[0]:
        result.errors.append(RowError(0, "The file is not a text CSV file."))
        return result
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=_delimiter(content.split("\n", 1)[0]))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        result.errors.append(RowError(0, f"The first line cannot be read as CSV ({exc})."))
        return result
    cols = _columns(header)
    result.format = detect_format(header)
    if "email" not in cols and "login" not in cols:
        shown = ", ".join(h.strip() for h in header if h.strip())[:200] or "nothing"
        hint = " It looks like data, not a header." if any("@" in h for h in header) else ""
        result.errors.append(
            RowError(
                0,
                "The first line must be a header naming the columns, such as "
                f"email,name,section. Found: {shown}.{hint}",
            )
        )
        return result
    if "name" not in cols and not ("first" in cols or "last" in cols):
        result.errors.append(RowError(0, "The header has no name column (name, or first and last name)."))
        return result
    seen: dict[str, int] = {}
    previous_end = reader.line_num
    try:
        for cells in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if len(result.rows) + len(result.errors) >= MAX_ROWS:
                result.errors.append(RowError(0, f"The file has more than {MAX_ROWS:,} rows; split it in parts."))
                return result
            parsed = _row(cells, cols, len(header), line)
            if parsed is None:
                continue
            if isinstance(parsed, RowError):
                (result.skipped if parsed.line < 0 else result.errors).append(
                    RowError(abs(parsed.line), parsed.message)
                )
                continue
            if parsed.email in seen:
                result.errors.append(RowError(line, f"{parsed.email} is already on line {seen[parsed.email]}."))
                continue
            seen[parsed.email] = line
            result.rows.append(parsed)
    except csv.Error as exc:
        result.errors.append(RowError(reader.line_num, f"This line cannot be read as CSV ({exc})."))
    if not result.rows and not result.errors:
        result.errors.append(RowError(0, "The file has a header but no people."))
    return result
