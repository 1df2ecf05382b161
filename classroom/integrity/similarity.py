"""Code similarity across a whole class with copydetect's winnowing fingerprints.

copydetect compares every file with every other file; for a class of 500 that is millions of comparisons. Here
each student's files are fingerprinted once (starter code removed as boilerplate), an inverted index of the
fingerprints finds the pairs that share enough of them, and only those pairs are compared exactly with
copydetect's own `compare_files` (the score and the copied regions). Same-named files are compared.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap

K = 25  # noise threshold (copydetect's default): matches shorter than this many tokens are ignored
WIN = 1  # winnowing window (copydetect's guarantee threshold K + WIN - 1 = 25 tokens)
COMMON_SHARE = 0.3  # a fingerprint in more than this share of the class is common idiom, not evidence
Submissions = Mapping[str, Mapping[str, str]]  # student key -> file name -> source text
Progress = Callable[[int, int], None]


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
        return {"a": self.a, "b": self.b, "score": self.score, "score_a": self.score_a, "score_b": self.score_b,
                "files": list(self.files)}  # fmt: skip


def fingerprint(name: str, text: str, boilerplate: np.ndarray | None = None) -> CodeFingerprint:
    """copydetect's fingerprint of one file's text (language from the name)."""
    return CodeFingerprint(name, K, WIN, boilerplate=boilerplate, fp=io.StringIO(text))


def boilerplate_hashes(starter: Mapping[str, str]) -> np.ndarray:
    """Every k-gram hash of the starter code (window 1, as copydetect does for boilerplate)."""
    hashes: list[int] = []
    for name, text in starter.items():
        hashes.extend(CodeFingerprint(name, K, 1, fp=io.StringIO(text)).hashes)
    return np.unique(np.array(hashes, dtype=np.int64))


def find_pairs(
    submissions: Submissions, starter: Mapping[str, str], threshold: int, progress: Progress | None = None
) -> list[Pair]:
    """Every pair of students above `threshold` percent, highest first."""
    boiler = boilerplate_hashes(starter)
    keys = sorted(submissions)
    prints: dict[str, dict[str, CodeFingerprint]] = {}
    for n, key in enumerate(keys, 1):
        prints[key] = {name: fingerprint(name, text, boiler) for name, text in submissions[key].items() if text}
        if progress:
            progress(n, len(keys))
    shared = _shared_counts(prints, len(keys))
    pairs = []
    for (a, b), count in shared.items():
        smaller = min(_hash_total(prints[a]), _hash_total(prints[b])) or 1
        if 100 * count / smaller < threshold / 2:  # cannot reach the threshold: skip the exact comparison
            continue
        pair = compare_students(a, prints[a], b, prints[b])
        if pair is not None and pair.score >= threshold:
            pairs.append(pair)
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))


def _hash_total(files: Mapping[str, CodeFingerprint]) -> int:
    return sum(len(fp.hashes) for fp in files.values())


def _shared_counts(prints: Mapping[str, Mapping[str, CodeFingerprint]], n: int) -> Counter[tuple[str, str]]:
    """How many fingerprints each pair of students shares in same-named files (common ones left out)."""
    index: dict[tuple[str, int], list[str]] = defaultdict(list)
    for key, files in prints.items():
        for name, fp in files.items():
            for h in fp.hashes:
                index[(name, int(h))].append(key)
    limit = max(2, int(COMMON_SHARE * n))
    counts: Counter[tuple[str, str]] = Counter()
    for holders in index.values():
        if 1 < len(holders) <= limit:
            counts.update(combinations(sorted(set(holders)), 2))
    return counts


def compare_students(
    a: str, files_a: Mapping[str, CodeFingerprint], b: str, files_b: Mapping[str, CodeFingerprint]
) -> Pair | None:
    """copydetect's exact comparison of two students' same-named files, summed over the files."""
    overlap_a = overlap_b = cover_a = cover_b = 0
    matched = []
    for name in sorted(set(files_a) & set(files_b)):
        fa, fb = files_a[name], files_b[name]
        cover_a, cover_b = cover_a + fa.token_coverage, cover_b + fb.token_coverage
        _, (sim_a, sim_b), _ = compare_files(fa, fb)
        overlap_a += int(round(sim_a * fa.token_coverage))
        overlap_b += int(round(sim_b * fb.token_coverage))
        if sim_a or sim_b:
            matched.append(name)
    if not matched:
        return None
    score_a = round(100 * overlap_a / cover_a) if cover_a else 0
    score_b = round(100 * overlap_b / cover_b) if cover_b else 0
    return Pair(a, b, max(score_a, score_b), score_a, score_b, tuple(matched))


def side_by_side(name: str, text_a: str, text_b: str, starter: Mapping[str, str]) -> tuple[str, str, int, int]:
    """Both files as HTML-escaped text with the matching regions in <mark>, and each side's percentage."""
    boiler = boilerplate_hashes(starter)
    fa, fb = fingerprint(name, text_a, boiler), fingerprint(name, text_b, boiler)
    _, (sim_a, sim_b), (slices_a, slices_b) = compare_files(fa, fb)
    if not len(slices_a) or slices_a.shape[-1] == 0:
        from markupsafe import escape

        return str(escape(text_a)), str(escape(text_b)), 0, 0
    html_a, _ = highlight_overlap(fa.raw_code, slices_a, "<mark>", "</mark>", escape_html=True)
    html_b, _ = highlight_overlap(fb.raw_code, slices_b, "<mark>", "</mark>", escape_html=True)
    return html_a, html_b, round(100 * sim_a), round(100 * sim_b)
