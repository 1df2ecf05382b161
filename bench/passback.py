"""AGS passback of 1,000 scores against a platform with a rate limit that answers 429 to 10% of score posts.

    python -m bench.passback [--scores 1000] [--rate 50] [--throttle 0.10] [--retry-after 1]

The platform (tests/lms_sync/support/lms_platform.py over HTTP on loopback) accepts at most `--rate` score posts
a second (it serves them one at a time) and answers `--throttle` of the posts at random with
429 + Retry-After. The floor is what that limit allows: scores / rate. The passback runs as the worker runs it
(`lms_sync.jobs.passback_course` through an RQ SimpleWorker). Printed: total time and its ratio to the floor,
HTTP calls, 429s, retries that came before their Retry-After, and lost or duplicated scores.
Targets: within 1.2x the floor, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from werkzeug.wrappers import Request, Response

from classroom.jobs.queue import make_worker
from classroom.models import GradeStatus, LineItemKind, LmsGrade, LmsLineItem
from lms_sync.context import lti_services
from lms_sync.jobs import enqueue_passback
from lms_sync.roster_sync import sync_roster
from tests.lms_sync.support.benchkit import bench_world, platform_stats, verdict
from tests.lms_sync.support.lms_platform import LmsPlatform


@dataclass
class RateLimitedPlatform(LmsPlatform):
    """Serves score posts one at a time at `rate` a second; answers 429 to a random share of them."""

    rate: float = 100.0
    throttle: float = 0.10
    retry_after: int = 1
    rng: random.Random = field(default_factory=lambda: random.Random(229))
    serve_lock: threading.Lock = field(default_factory=threading.Lock)
    too_early: int = 0
    told: dict[str, float] = field(default_factory=dict)  # userId -> not before (monotonic)

    def _score(self, request: Request, item_id: int) -> Response:
        body = request.get_json(force=True)
        user, now = body["userId"], time.monotonic()
        with self._lock:
            if now < self.told.get(user, 0):
                self.too_early += 1
            throttled = self.rng.random() < self.throttle
            if throttled:
                self.told[user] = now + self.retry_after
        if throttled:
            with self._lock:
                self.scores.append(self._arrival(now, item_id, request, body, 429))
            return Response(
                json.dumps({"error": "rate limited"}),
                status=429,
                headers={"Retry-After": str(self.retry_after)},
                content_type="application/json",
            )
        with self.serve_lock:  # the platform's limit: one post at a time, 1/rate seconds each
            time.sleep(1 / self.rate)
            with self._lock:
                self.scores.append(self._arrival(time.monotonic(), item_id, request, body, 200))
        return Response("{}", content_type="application/json")

    def _app(self, environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") == "/_stats":  # read by the benchmark when this platform runs in its own process
            accepted = Counter(a.body["userId"] for a in self.accepted())
            times = sorted(a.at for a in self.accepted())
            gaps = [b - a - 1 / self.rate for a, b in zip(times, times[1:], strict=False)]
            body = {
                "span": times[-1] - times[0] if times else 0.0,
                "idle": sum(g for g in gaps if g > 0.002),
                "accepted": accepted,
                "posts": len(self.scores),
                "throttled": sum(a.status == 429 for a in self.scores),
                "too_early": self.too_early,
                "tokens": self.token_requests,
            }
            return Response(json.dumps(body), content_type="application/json")(environ, start_response)
        return super()._app(environ, start_response)

    @staticmethod
    def _arrival(at, item_id, request, body, status):  # type: ignore[no-untyped-def]
        from tests.lms_sync.support.lms_platform import Arrival

        return Arrival(at, item_id, request.query_string.decode(), body, status)


def run(args: argparse.Namespace, throttle: float) -> dict[str, Any]:
    """One passback of `args.scores` fresh scores against a fresh platform and database; what it measured."""
    platform = RateLimitedPlatform(rate=args.rate, throttle=throttle, retry_after=args.retry_after)
    for n in range(args.scores):
        platform.add(f"student-{n:05d}", "student", name=f"Student Number{n}")
    item_id = platform.add_line_item("Homework 1", 10, query="type_id=5")
    with bench_world("passback", platform, own_process=True) as (ctx, lms, course, sql):
        if args.concurrency:
            ctx.settings = ctx.settings.with_(passback_concurrency=args.concurrency)
        with ctx.sessions() as session:
            sync_roster(session, course.course_id, lms=lti_services(session, ctx, course.course_id))
            item = LmsLineItem(
                course_id=course.course_id,
                url=lms.line_item_url(item_id),
                label="Homework 1",
                score_maximum=Decimal(10),
                kind=LineItemKind.ASSIGNMENT,
            )
            session.add(item)
            session.flush()
            session.execute(
                text(
                    "INSERT INTO lms_grades (course_id, line_item_id, person_id, score_given, score_maximum, comment, "
                    "version, changed_at, status, attempts, last_error, posted_version) "
                    "SELECT :c, :i, e.person_id, 1 + (e.person_id % 9), 10, 'Graded by Priya', 1, now(), 'pending', 0, "
                    "'', 0 FROM enrollments e WHERE e.course_id = :c AND e.level = 'student'"
                ),
                {"c": course.course_id, "i": item.id},
            )
            session.commit()
        enqueue_passback(ctx.redis, course.course_id)
        started = time.perf_counter()
        make_worker(ctx.redis, simple=True).work(burst=True)
        total = time.perf_counter() - started
        stats = platform_stats(lms)
        with ctx.sessions() as session:
            stats["posted_in_tool"] = Counter(session.scalars(select(LmsGrade.status)).all())[GradeStatus.POSTED]
    accepted = Counter(stats["accepted"])
    stats.update(
        total=total, lost=args.scores - len(accepted), duplicated=sum(n - 1 for n in accepted.values() if n > 1)
    )
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="score posts per second the platform allows")
    parser.add_argument("--throttle", type=float, default=0.10, help="share of posts answered 429")
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=None, help="posts in flight (default: the setting's)")
    args = parser.parse_args()
    logging.getLogger("rq.worker").setLevel(logging.WARNING)
    floor = args.scores / args.rate
    baseline = run(args, 0.0)  # the same platform and client without 429s: what this machine achieves right now
    got = run(args, args.throttle)
    print(
        f"AGS passback: {args.scores} scores, platform limit {args.rate:g} posts/s (one at a time), "
        f"{args.throttle:.0%} of posts answered 429 with Retry-After: {args.retry_after}"
    )
    print(f"  floor the limit allows (scores / limit):      {floor:.2f} s")
    print(
        f"  measured floor, same run, no 429s:            {baseline['total']:.2f} s  "
        f"({baseline['total'] / floor:.2f}x floor)"
    )
    print(
        f"  passback with 429s:                           {got['total']:.2f} s  ({got['total'] / floor:.2f}x floor, "
        f"{got['total'] / baseline['total']:.2f}x measured floor)"
    )
    print(
        f"  HTTP score posts: {got['posts']} ({got['throttled']} answered 429); service tokens fetched: "
        f"{got['tokens']}; retries sent before their Retry-After: {got['too_early']}"
    )
    print(f"  platform idle between accepted scores: {got['idle']:.2f} s of {got['span']:.2f} s")
    print(
        f"  lost: {got['lost']}, duplicated: {got['duplicated']}, grades marked posted in the tool: "
        f"{got['posted_in_tool']}"
    )
    print(
        f"  target within 1.2x floor: {verdict(got['total'] <= 1.2 * floor)}; 0 lost: {verdict(got['lost'] == 0)}; "
        f"0 duplicated: {verdict(got['duplicated'] == 0)}; Retry-After honoured: {verdict(got['too_early'] == 0)}"
    )


if __name__ == "__main__":
    main()
