"""A similarity pair: what a similarity run stores and the report reads, apart from the copydetect code that finds
them (similarity.py), so the report, its indicators and the app load without numpy, copydetect and the matplotlib
copydetect imports (about 0.7 s of CPU at every start of a process that builds the app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pair:
    """Two students whose same-named files share more than the threshold; score in percent (the larger side)."""

    a: str
    b: str
    score: int
    score_a: int
    score_b: int
    files: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form (stored on the run)."""
        return {
            "a": self.a,
            "b": self.b,
            "score": self.score,
            "score_a": self.score_a,
            "score_b": self.score_b,
            "files": list(self.files),
        }
