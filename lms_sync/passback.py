"""AGS passback: claim pending grades, post them concurrently, record each outcome.

Exactly once in the normal path: a grade version is claimed by one job (`FOR UPDATE SKIP LOCKED`), posted
until the LMS accepts it, and recorded as posted; an unchanged score never gets a new version, so it is
never posted again. A 429 delays only that score by its Retry-After while the others keep going, and any
throttling answer also lowers how many posts are in flight (raised again after a run of successes).
If a worker dies after the LMS accepted a score but before the commit, the sweep re-posts the same
version with the same timestamp: the gradebook shows the same score, never a different one. The statements live in
`classroom.sql.grades`.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from classroom.models import GradeStatus
from classroom.sql.grades import CLAIM_PENDING_SQL, RECORD_RESULTS_SQL, RELEASE_STALE_SQL
from lms_sync.http import Outcome, RetryPolicy, Verdict
from lms_sync.ports import LmsServices, ScoreBody
from lms_sync.roster import PLACEHOLDER_PREFIX

STALE_CLAIM_S = 900


@dataclass(frozen=True)
class Claimed:
    """One grade version a job has taken to post."""

    grade_id: int
    version: int
    url: str
    user_id: str
    score_given: Decimal | None  # None: a usage comment on an assignment not graded in the tool
    score_maximum: Decimal
    comment: str
    timestamp: datetime
    is_update: bool
    attempts: int

    def body(self) -> ScoreBody:
        return ScoreBody(
            self.user_id, self.score_given, self.score_maximum, self.comment, self.timestamp, self.is_update
        )


@dataclass(frozen=True)
class Result:
    claimed: Claimed
    status: GradeStatus
    attempts: int
    message: str = ""


@dataclass
class PassbackReport:
    """What one run did (logs, benchmark, tests)."""

    posted: int = 0
    superseded: int = 0
    failed: int = 0
    rejected: int = 0
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    messages: list[str] = field(default_factory=list)


class Throttle:
    """How many posts may be in flight: one fewer after each throttling answer (never below `minimum`), one more
    after `recover_after` successes in a row. A throttled post itself always waits its Retry-After."""

    def __init__(self, maximum: int, recover_after: int = 3, minimum: int = 2) -> None:
        self.maximum = self.limit = max(1, maximum)
        self.minimum = min(self.maximum, minimum)
        self.recover_after, self._ok = recover_after, 0

    def on_throttle(self) -> None:
        self.limit, self._ok = max(self.minimum, self.limit - 1), 0

    def on_success(self) -> None:
        self._ok += 1
        if self._ok >= self.recover_after and self.limit < self.maximum:
            self.limit, self._ok = self.limit + 1, 0


def claim_pending(session: Session, course_id: int, limit: int = 1000) -> list[Claimed]:
    """Mark up to `limit` pending grades with a line item URL as posting (skipping rows other jobs hold)."""
    rows = session.execute(
        CLAIM_PENDING_SQL,
        {"course": course_id, "limit": limit},
    ).all()
    return [Claimed(*row) for row in sorted(rows)]


def record_results(session: Session, results: Sequence[Result]) -> None:
    """Write outcomes in one statement; a grade changed meanwhile keeps its new pending version."""
    if not results:
        return
    session.execute(
        RECORD_RESULTS_SQL,
        {
            "ids": [r.claimed.grade_id for r in results],
            "versions": [r.claimed.version for r in results],
            "statuses": [r.status.value for r in results],
            "attempts": [r.attempts for r in results],
            "messages": [r.message[:2000] for r in results],
        },
    )


def release_stale_claims(session: Session, older_than_s: int = STALE_CLAIM_S) -> int:
    """Put grades whose job died while posting back to pending; returns how many."""
    result = session.execute(
        RELEASE_STALE_SQL,
        {"s": older_than_s},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _verdict_of(future: Future[Verdict]) -> Verdict:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the score: retry it, keep the message
        return Verdict(Outcome.RETRY, 1.0, f"{type(exc).__name__}: {exc}")


def post_claimed(  # noqa: C901 - one scheduling loop reads best in one place
    lms: LmsServices,
    claimed: Sequence[Claimed],
    *,
    concurrency: int,
    policy: RetryPolicy,
    on_results: Callable[[list[Result]], None],
    clock: Callable[[], float] = time.monotonic,
    batch: int = 200,
) -> PassbackReport:
    """Post every claimed score, retrying as verdicts say; hand outcomes to `on_results` in batches."""
    report = PassbackReport()
    ready: deque[tuple[Claimed, int]] = deque()
    for c in claimed:
        if c.user_id.startswith(PLACEHOLDER_PREFIX):
            on_results(
                [
                    Result(
                        c,
                        GradeStatus.REJECTED,
                        c.attempts,
                        "This student has not opened Cloud Workstation "
                        "from the LMS yet, so the LMS account is unknown.",
                    )
                ]
            )
            report.rejected += 1
        else:
            ready.append((c, 1))
    delayed: list[tuple[float, int, Claimed, int]] = []
    seq = itertools.count()
    throttle = Throttle(concurrency)
    done_results: list[Result] = []

    def finish(result: Result) -> None:
        done_results.append(result)
        if len(done_results) >= batch:
            on_results(done_results.copy())
            done_results.clear()

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="passback") as pool:
        inflight: dict[Future[Verdict], tuple[Claimed, int]] = {}
        while ready or delayed or inflight:
            now = clock()
            while delayed and delayed[0][0] <= now:
                _, _, c, attempt = heapq.heappop(delayed)
                ready.append((c, attempt))
            while ready and len(inflight) < throttle.limit:
                c, attempt = ready.popleft()
                inflight[pool.submit(lms.post_score, c.url, c.body(), attempt=attempt)] = (c, attempt)
                report.calls += 1
            if not inflight:
                time.sleep(max(0.0, delayed[0][0] - clock()))
                continue
            timeout = max(0.0, delayed[0][0] - clock()) if delayed else None
            finished, _ = wait(list(inflight), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                c, attempt = inflight.pop(future)
                verdict = _verdict_of(future)
                tries = c.attempts + attempt
                if verdict.outcome is Outcome.OK:
                    throttle.on_success()
                    report.posted += 1
                    finish(Result(c, GradeStatus.POSTED, tries))
                elif verdict.outcome is Outcome.CONFLICT:
                    report.superseded += 1
                    finish(Result(c, GradeStatus.POSTED, tries, "The LMS already had a newer score."))
                elif verdict.outcome is Outcome.RETRY:
                    if verdict.throttled:
                        report.throttled += 1
                        throttle.on_throttle()
                    if attempt >= policy.max_attempts or verdict.delay > policy.max_retry_after_s:
                        report.failed += 1
                        report.messages.append(verdict.message)
                        finish(
                            Result(c, GradeStatus.FAILED, tries, f"Gave up after {attempt} tries: {verdict.message}")
                        )
                    else:
                        report.retries += 1
                        heapq.heappush(delayed, (clock() + verdict.delay, next(seq), c, attempt + 1))
                elif verdict.outcome is Outcome.REAUTH:
                    report.failed += 1
                    finish(
                        Result(
                            c, GradeStatus.FAILED, tries, "The LMS refused the tool's access token: " + verdict.message
                        )
                    )
                else:
                    report.rejected += 1
                    report.messages.append(verdict.message)
                    finish(Result(c, GradeStatus.REJECTED, tries, verdict.message))
    if done_results:
        on_results(done_results)
    return report


def run_passback(
    sessions: sessionmaker[Session],
    lms: LmsServices,
    course_id: int,
    *,
    concurrency: int,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
    rounds: int = 3,
) -> PassbackReport:
    """Claim and post a course's pending grades until none are left (or `rounds` claims were made)."""
    total = PassbackReport()

    def write(results: list[Result]) -> None:
        with sessions() as s:
            record_results(s, results)
            s.commit()

    # Outcomes are written by one background thread, in order, so the posting loop never waits for a commit.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="passback-writer")
    pending_writes: list[Future[None]] = []

    def write_later(results: list[Result]) -> None:
        pending_writes.append(writer.submit(write, results))

    try:
        for _ in range(rounds):
            with sessions() as s:
                claimed = claim_pending(s, course_id)
                s.commit()
            if not claimed:
                break
            report = post_claimed(
                lms, claimed, concurrency=concurrency, policy=policy, on_results=write_later, clock=clock
            )
            for future in pending_writes:
                future.result()  # every outcome of this round is committed before the next claim
            for name in ("posted", "superseded", "failed", "rejected", "calls", "retries", "throttled"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.messages += report.messages
    finally:
        writer.shutdown(wait=True)
    return total
