"""Class similarity for one assignment: 50 and 500 students, five Python files of 100-300 lines each.

    python -m bench.similarity [--students 50 500] [--threshold 60]

Each student's files are generated from their own random stream (statements drawn from a dozen shapes with
their own names and numbers), after the shared starter code every student received; one planted pair copies
another student's five files with every variable renamed and a few lines added. The comparison is the one the
similarity job runs (`classroom.integrity.similarity.find_pairs`, copydetect fingerprints, starter code as
boilerplate), each size in its own process. Printed per size: files, seconds, peak memory (max RSS of the
process), pairs above the threshold, and whether the planted pair is the top pair.
Target: 500 students under 60 s on this machine, the planted pair on top.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time

FILES = ("data.py", "model.py", "train.py", "evaluate.py", "utils.py")
SHAPES = (
    "{v} = {f}({a}, {n})",
    "if {a} > {n}:\n        {v} = {a} - {m}\n    else:\n        {v} = {a} + {m}",
    "for {i} in range({n}):\n        {v} += {a}[{i}] * {m}",
    "{v} = [{a} * {n} for {i} in {b} if {i} % {m}]",
    "while {v} < {n}:\n        {v} = {v} * {m} + 1",
    "{v} = {{'{k}': {a}, '{k2}': {n}}}",
    "try:\n        {v} = {b}[{n}]\n    except IndexError:\n        {v} = None",
    "{v} = sum({a}) / max(len({b}), {m})",
    "assert {a} is not None, '{k} missing'",
    "{v} = sorted({b}, key=lambda {i}: -{i})[:{n}]",
    "with open('{k}.csv') as fh:\n        {v} = fh.read().split({n} * ',')",
    "{v} = {a}.get('{k}', {n}) if isinstance({a}, dict) else {m}",
)
WORDS = (
    "loss",
    "rate",
    "batch",
    "grad",
    "score",
    "feat",
    "label",
    "epoch",
    "mask",
    "pred",
    "total",
    "acc",
    "theta",
    "alpha",
    "beta",
    "weights",
    "bias",
    "step",
    "frame",
    "row",
    "col",
    "size",
    "dim",
    "norm",
)


def starter_code() -> dict[str, str]:
    """The starter file every student got for each of the five files."""
    r = random.Random(0)
    return {name: "".join(_function(r, f"given_{name[:-3]}_{j}") for j in range(4)) for name in FILES}


def _name(r: random.Random) -> str:
    return f"{r.choice(WORDS)}_{r.randint(0, 99)}"


def _function(r: random.Random, fname: str) -> str:
    lines = [f"def {fname}({_name(r)}, {_name(r)}):"]
    for _ in range(r.randint(3, 8)):
        shape = r.choice(SHAPES)
        lines.append(
            "    "
            + shape.format(
                v=_name(r),
                f=_name(r),
                a=_name(r),
                b=_name(r),
                i=_name(r),
                k=_name(r),
                k2=_name(r),
                n=r.randint(2, 999),
                m=r.randint(2, 99),
            )
        )
    lines.append(f"    return {_name(r)}\n\n")
    return "\n".join(lines)


def student_files(seed: int, starter: dict[str, str]) -> dict[str, str]:
    """Five files of 100-300 lines: the starter code, then the student's own functions."""
    r = random.Random(seed)
    out = {}
    for name in FILES:
        target, body = r.randint(100, 300), starter[name]
        while body.count("\n") < target:
            body += _function(r, f"{name[:-3]}_{_name(r)}")
        out[name] = body
    return out


def plant(original: dict[str, str]) -> dict[str, str]:
    """A copy with variables renamed and a few lines added: what copydetect must still see."""
    out = {}
    for name, text in original.items():
        for w in WORDS[:8]:
            text = text.replace(w + "_", "my" + w + "_")
        out[name] = text.replace("\n\n", "\n    # done\n\n", 3)
    return out


def child(n: int, threshold: int) -> dict[str, object]:
    """Generate and compare one class; its figures as a dict."""
    from classroom.integrity.similarity import find_pairs

    starter = starter_code()
    subs = {f"s{i:03d}": student_files(i, starter) for i in range(n)}
    subs["s007"] = plant(subs["s003"])
    lines = sum(t.count("\n") for files in subs.values() for t in files.values())
    start = time.perf_counter()
    pairs = find_pairs(subs, starter, threshold)
    seconds = time.perf_counter() - start
    top = (pairs[0].a, pairs[0].b, pairs[0].score) if pairs else None
    return {
        "students": n,
        "files": n * len(FILES),
        "lines": lines,
        "seconds": round(seconds, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pairs": len(pairs),
        "top": top,
        "planted_on_top": bool(top and top[:2] == ("s003", "s007")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--threshold", type=int, default=60)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threshold)))
        return
    ok = True
    for n in args.students:
        done = subprocess.run(
            [sys.executable, "-m", "bench.similarity", "--child", str(n), "--threshold", str(args.threshold)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{r['students']:4d} students, {r['files']} files, {r['lines']} lines: {r['seconds']:.1f} s, "
            f"max RSS {r['max_rss_mb']} MB, {r['pairs']} pair(s) >= {args.threshold}%, top {r['top']}, "
            f"planted pair on top: {'yes' if r['planted_on_top'] else 'NO'}"
        )
        ok = ok and bool(r["planted_on_top"]) and (n < 500 or r["seconds"] < 60)
    print("target (500 students < 60 s, planted pair on top):", "met" if ok else "NOT met")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
