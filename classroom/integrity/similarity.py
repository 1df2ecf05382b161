"""Code similarity across a whole class with copydetect's winnowing fingerprints.

copydetect compares every file with every other file; for a class of 500 that is millions of comparisons. Here
each student's files are filtered as copydetect filters them (names, strings and comments normalised; Python
through a fast equivalent filter) and their k-grams hashed once with numpy (starter code removed as
boilerplate); one sort of all k-grams finds the pairs of students that share enough of them; only those pairs
are fingerprinted and compared by copydetect itself (`CodeFingerprint`, `compare_files`: the score and the
copied regions). Same-named files are compared.

copydetect imports numpy and matplotlib: this module is imported by the similarity job and the side-by-side view
when they run, not with the app (the stored `Pair` lives in pairs.py).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import combinations

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import filter_code, highlight_overlap

from classroom.integrity.pairs import Pair
from classroom.integrity.pytokens import filter_python

K = 25  # noise threshold (copydetect's default): matches shorter than this many tokens are ignored
WIN = 1  # winnowing window (copydetect's guarantee threshold K + WIN - 1 = 25 tokens)
COMMON_SHARE = 0.3  # a fingerprint in more than this share of the class is common idiom, not evidence
Submissions = Mapping[str, Mapping[str, str]]  # student key -> file name -> source text
Progress = Callable[[int, int], None]


def fingerprint(
    name: str, text: str, boilerplate: np.ndarray | None = None, *, win: int = WIN, fast: bool = True
) -> CodeFingerprint:
    """copydetect's fingerprint of one file's text (language from the name; Python through the fast filter)."""
    if fast and name.endswith(".py"):
        return CodeFingerprint(name, K, win, boilerplate=boilerplate, filter=False, fp=io.StringIO(filter_python(text)))
    return CodeFingerprint(name, K, win, boilerplate=boilerplate, fp=io.StringIO(text))


def boilerplate_hashes(starter: Mapping[str, str], *, fast: bool = True) -> np.ndarray:
    """Every k-gram hash of the starter code (window 1, as copydetect does for boilerplate)."""
    hashes: list[int] = []
    for name, text in starter.items():
        hashes.extend(fingerprint(name, text, win=1, fast=fast).hashes)
    return np.unique(np.array(hashes, dtype=np.int64))


def kgram_hashes(filtered: str, k: int = K) -> np.ndarray:
    """Every k-character hash of the filtered code (a polynomial hash computed with numpy), unique and sorted.

    The candidate search only: the same k-grams copydetect fingerprints (window 1), hashed in a few vector
    operations instead of one Python call per k-gram.
    """
    data = np.frombuffer(filtered.encode("utf-8", "replace"), dtype=np.uint8).astype(np.uint64)
    n = len(data) - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    acc = np.zeros(n, dtype=np.uint64)
    base = np.uint64(1_000_003)
    with np.errstate(over="ignore"):
        for j in range(k):
            acc = acc * base + data[j : j + n]
    return np.unique(acc)


def _filtered(name: str, text: str) -> str:
    if name.endswith(".py"):
        return filter_python(text)
    return str(filter_code(text, name)[0])


def find_pairs(
    submissions: Submissions, starter: Mapping[str, str], threshold: int, progress: Progress | None = None
) -> list[Pair]:
    """Every pair of students above `threshold` percent (copydetect's score), highest first."""
    boiler = {name: kgram_hashes(_filtered(name, text)) for name, text in starter.items()}
    keys = sorted(submissions)
    names = sorted({name for files in submissions.values() for name in files})
    grams: dict[str, dict[str, np.ndarray]] = {}
    for n, key in enumerate(keys, 1):
        grams[key] = {}
        for name, text in submissions[key].items():
            h = kgram_hashes(_filtered(name, text))
            if name in boiler:
                h = h[~np.isin(h, boiler[name], assume_unique=True)]
            grams[key][name] = h
        if progress:
            progress(n, len(keys))
    totals = {key: sum(len(h) for h in files.values()) for key, files in grams.items()}
    shared = _shared_counts(grams, keys, names)
    boiler_hashes = boilerplate_hashes(starter)
    prints: dict[str, dict[str, CodeFingerprint]] = {}
    pairs = []
    for (a, b), count in shared.items():
        if 100 * count / (min(totals[a], totals[b]) or 1) < threshold / 2:  # cannot reach the threshold
            continue
        for key in (a, b):
            if key not in prints:
                prints[key] = {
                    name: fingerprint(name, text, boiler_hashes) for name, text in submissions[key].items() if text
                }
        pair = compare_students(a, prints[a], b, prints[b])
        if pair is not None and pair.score >= threshold:
            pairs.append(pair)
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))


def _shared_counts(
    grams: Mapping[str, Mapping[str, np.ndarray]], keys: list[str], names: list[str]
) -> Counter[tuple[str, str]]:
    """How many k-grams each pair of students shares in same-named files (k-grams common in the class left out)."""
    parts_h, parts_s = [], []
    salt = {name: np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15) for i, name in enumerate(names)}
    for s, key in enumerate(keys):
        for name, h in grams[key].items():
            with np.errstate(over="ignore"):
                parts_h.append(h ^ salt[name])
            parts_s.append(np.full(len(h), s, dtype=np.int32))
    if not parts_h:
        return Counter()
    hashes, students = np.concatenate(parts_h), np.concatenate(parts_s)
    order = np.argsort(hashes, kind="stable")
    hashes, students = hashes[order], students[order]
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    limit = max(2, int(COMMON_SHARE * len(keys)))
    chosen = (counts > 1) & (counts <= limit)
    out: Counter[tuple[str, str]] = Counter()
    for start, count in zip(first[chosen].tolist(), counts[chosen].tolist(), strict=True):
        holders = sorted({keys[i] for i in students[start : start + count].tolist()})
        out.update(combinations(holders, 2))
    return out


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
    boiler = boilerplate_hashes(starter, fast=False)  # copydetect's own filter: its regions map to the source
    fa, fb = fingerprint(name, text_a, boiler, fast=False), fingerprint(name, text_b, boiler, fast=False)
    _, (sim_a, sim_b), (slices_a, slices_b) = compare_files(fa, fb)
    if not len(slices_a) or slices_a.shape[-1] == 0:
        from markupsafe import escape

        return str(escape(text_a)), str(escape(text_b)), 0, 0
    html_a, _ = highlight_overlap(fa.raw_code, slices_a, "<mark>", "</mark>", escape_html=True)
    html_b, _ = highlight_overlap(fb.raw_code, slices_b, "<mark>", "</mark>", escape_html=True)
    return html_a, html_b, round(100 * sim_a), round(100 * sim_b)
