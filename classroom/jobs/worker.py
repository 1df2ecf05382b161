"""`python -m classroom.jobs.worker`: an RQ worker on our queues, JSON jobs, job ids in every log line."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from redis import Redis
from rq import Worker
from rq.serializers import JSONSerializer

from classroom.jobs.context import context_from_env
from classroom.jobs.queue import QUEUE_NAMES, get_queue
from classroom.logs import configure_logging, job_id
from config.money_check import MoneyConfigError, require_money_config
from config.settings import Settings


class LoggingWorker(Worker):
    """A worker that puts the running job's id into the structured log context."""

    def execute_job(self, job: Any, queue: Any) -> Any:
        token = job_id.set(job.id)
        try:
            return super().execute_job(job, queue)
        finally:
            job_id.reset(token)


def main(argv: list[str] | None = None) -> None:
    """Work the queues until stopped (SIGTERM finishes the current job first).

    `--queues enforcement` is the enforcement worker; without it the worker takes every queue, enforcement first.
    """
    parser = argparse.ArgumentParser(prog="python -m classroom.jobs.worker")
    parser.add_argument("--queues", nargs="+", choices=QUEUE_NAMES, default=list(QUEUE_NAMES))
    queues = parser.parse_args(argv).queues
    url = os.environ.get("REDIS_URL")
    if not url:
        sys.exit("REDIS_URL is not set")
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    try:
        require_money_config(settings.aws_region)
    except MoneyConfigError as exc:
        sys.exit(str(exc))
    if not settings.database_url:
        sys.exit("DATABASE_URL is not set")
    context_from_env()  # built before the fork: each job's work horse inherits the engine (not yet connected)
    redis = Redis.from_url(url)
    worker = LoggingWorker([get_queue(redis, q) for q in queues], connection=redis, serializer=JSONSerializer)
    worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()
