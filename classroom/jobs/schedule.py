"""The one table of periodic jobs, run by RQ's CronScheduler.

`rq cron` itself enqueues with RQ's default (pickle) serializer; our worker reads JSON only, so
`python -m classroom.jobs.schedule` runs the same CronScheduler with JSON-serialised cron jobs.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from redis import Redis
from rq.cron import CronJob, CronScheduler
from rq.job import Job

from classroom.jobs import names
from classroom.jobs.queue import enqueue, queue_for


@dataclass(frozen=True)
class Periodic:
    """One row of the table: what runs, and when (cron expression or interval in seconds)."""

    func: str
    cron: str | None = None
    interval: int | None = None

    @property
    def queue(self) -> str:
        return queue_for(self.func)


PERIODIC_JOBS: tuple[Periodic, ...] = (
    Periodic("classroom.jobs.tasks.prune_retired_keys", cron="17 3 * * *"),
    Periodic("classroom.jobs.tasks.verify_audit_chain", cron="43 2 * * *"),
    Periodic(names.RECONCILE_WORKSPACES, interval=20),
    Periodic(names.METER_AND_ENFORCE, interval=60),
    Periodic(names.CLOSE_TERMS, interval=120),  # so the 10-minute warning window is never missed
    Periodic(names.CLOSE_WORKSHOPS, interval=60),  # workshops end to the minute
    Periodic("provisioning.restore_end.close_restores", interval=300),  # restored students' access ends
    Periodic(names.RETIRE_DUE, interval=300),  # archive, then delete disks marked to end
    Periodic("provisioning.archive_retention.purge_expired_archives", cron="51 4 * * *"),  # expired archives
    Periodic(names.BOOK_USAGE_HOURLY, cron="7 * * * *"),  # EFS, snapshots, archives, transfer out
    Periodic("classroom.jobs.tasks.send_outbox_emails", interval=60),
    Periodic("provisioning.debug_jobs.end_expired_debug_sessions", interval=60),  # tell students a session ended
    Periodic("lms_sync.jobs.sync_all_rosters", cron="15 2 * * *"),  # nightly NRPS sync (then due dates) per course
    Periodic("lms_sync.jobs.post_usage_nightly", cron="30 3 * * *"),  # usage to the gradebook where turned on
    Periodic("lms_sync.jobs.passback_sweep", interval=60),  # grades waiting, and claims of jobs that died
    Periodic("lms_sync.jobs.welcome_at_term_start", cron="5 * * * *"),  # the term's first hour, and late joiners
    Periodic("provisioning.integrity_jobs.request_snapshots", interval=60),  # deadline snapshots at each due time
    Periodic("provisioning.integrity_jobs.purge_expired_evidence", cron="51 4 * * *"),  # a year after term end
)


def cron_job_id(func: str) -> str:
    """The one id a periodic job runs under: while it is queued or running, the scheduler adds no other."""
    return "cron-" + func.rsplit(".", 1)[-1]


class JsonCronJob(CronJob):
    """A CronJob that enqueues on a JSON-serialising queue, under its deterministic id (no pile-up)."""

    def enqueue(self, connection: Redis) -> Job:  # type: ignore[override]
        job = enqueue(connection, self.func_name, job_id=cron_job_id(self.func_name), queue=self.queue_name, retry=None)
        assert job is not None
        return job


def build_scheduler(connection: Redis) -> CronScheduler:
    """A CronScheduler holding every row of PERIODIC_JOBS."""
    scheduler = CronScheduler(connection=connection, name=f"cwc-cron-{os.getpid()}")
    for row in PERIODIC_JOBS:
        job = JsonCronJob(queue_name=row.queue, func_name=row.func, cron=row.cron, interval=row.interval)
        scheduler._cron_jobs.append(job)  # noqa: SLF001 - register() insists on a callable; we keep import paths
    return scheduler


def main() -> None:
    """Run the scheduler against REDIS_URL until interrupted."""
    logging.basicConfig(level=logging.INFO)
    url = os.environ.get("REDIS_URL")
    if not url:
        sys.exit("REDIS_URL is not set")
    build_scheduler(Redis.from_url(url)).start()


if __name__ == "__main__":
    main()
