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

from classroom.jobs.queue import DEFAULT_QUEUE, get_queue


@dataclass(frozen=True)
class Periodic:
    """One row of the table: what runs, and when (cron expression or interval in seconds)."""

    func: str
    cron: str | None = None
    interval: int | None = None
    queue: str = DEFAULT_QUEUE


PERIODIC_JOBS: tuple[Periodic, ...] = (
    Periodic("classroom.jobs.tasks.prune_retired_keys", cron="17 3 * * *"),
    Periodic("classroom.jobs.tasks.verify_audit_chain", cron="43 2 * * *"),
    Periodic("provisioning.jobs.reconcile_workspaces", interval=20),
    Periodic("provisioning.jobs.meter_and_enforce", interval=60),
    Periodic("provisioning.jobs.close_terms", interval=600),
    Periodic("provisioning.retire.retire_due", interval=300),  # archive, then delete disks marked to end
    Periodic("classroom.jobs.tasks.send_outbox_emails", interval=60),
    Periodic("provisioning.jobs.simulate_agents_tick", interval=60),  # no-op unless AWS is simulated
    Periodic("lms_sync.jobs.sync_all_rosters", cron="15 2 * * *"),  # nightly NRPS sync (then due dates) per course
    Periodic("lms_sync.jobs.post_usage_nightly", cron="30 3 * * *"),  # usage to the gradebook where turned on
    Periodic("lms_sync.jobs.passback_sweep", interval=60),  # grades waiting, and claims of jobs that died
)


class JsonCronJob(CronJob):
    """A CronJob that enqueues on a JSON-serialising queue."""

    def enqueue(self, connection: Redis) -> Job:  # type: ignore[override]
        job = get_queue(connection, self.queue_name).enqueue(
            self.func_name, args=self.args, kwargs=self.kwargs, **self.job_options
        )
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
