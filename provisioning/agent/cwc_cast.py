"""The asciicast v2 format of debug-session recordings (a JSON header, then one [t, "o"|"i", text] per chunk).

One spec for both recorders: the local runtime's SSH server (provisioning.runtime.debug_io) and the EC2 recorder
(cwc_debug_shell.py, shipped in the agent bundle) write through CastRecorder; the tool's replay page reads with
parse_cast. Stdlib only, because it runs on the workspace. Bytes are decoded as UTF-8 incrementally (a character
split across chunks stays whole; invalid bytes become U+FFFD).
"""

import codecs
import json
import time
from dataclasses import dataclass
from pathlib import Path

CAST_TYPE = "application/x-asciicast"


class CastRecorder:
    """Append events to an asciicast v2 file; flushed per event, so a crash loses at most the last chunk."""

    def __init__(self, path: Path, *, width: int, height: int, title: str, started: float | None = None) -> None:
        self.path = path
        self.started = started or time.time()
        self._t0 = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8")
        header = {"version": 2, "width": width or 80, "height": height or 24, "timestamp": int(self.started),
                  "title": title, "env": {"TERM": "xterm-256color", "SHELL": "/bin/bash"}}  # fmt: skip
        self._write(header)
        self._decoders = {k: codecs.getincrementaldecoder("utf-8")("replace") for k in ("o", "i")}

    def _write(self, item: object) -> None:
        self._file.write(json.dumps(item, ensure_ascii=False) + "\n")
        self._file.flush()

    def event(self, kind: str, data: bytes | str) -> None:
        """One chunk: "o" shown, "i" typed."""
        if self._file.closed:
            return
        text = data if isinstance(data, str) else self._decoders[kind].decode(data)
        if text:
            self._write([round(time.monotonic() - self._t0, 6), kind, text])

    def output(self, data: bytes | str) -> None:
        self.event("o", data)

    def input(self, data: bytes | str) -> None:
        self.event("i", data)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


@dataclass(frozen=True)
class Cast:
    """A parsed recording."""

    header: dict
    events: list

    def typed(self) -> str:
        """Everything typed, in order."""
        return "".join(text for _, kind, text in self.events if kind == "i")

    def shown(self) -> str:
        """Everything shown, in order."""
        return "".join(text for _, kind, text in self.events if kind == "o")


def parse_cast(raw: bytes) -> Cast:
    """Read an asciicast v2 file (ValueError when it is not one). Pure."""
    lines = raw.decode("utf-8", errors="replace").splitlines()
    if not lines:
        raise ValueError("empty recording")
    header = json.loads(lines[0])
    if not isinstance(header, dict) or header.get("version") != 2:
        raise ValueError("not an asciicast v2 recording")
    events = []
    for line in lines[1:]:
        if line.strip():
            item = json.loads(line)
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], (int, float))
                and item[1] in ("o", "i", "r", "m")
                and isinstance(item[2], str)
            ):
                raise ValueError("not an asciicast v2 event")
            t, kind, text = item
            events.append((float(t), str(kind), str(text)))
    return Cast(header, events)
