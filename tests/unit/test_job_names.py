"""Every job path RQ is given resolves to a function: a moved job cannot leave a dangling path behind."""

import importlib

import pytest

from classroom.jobs import names
from classroom.jobs.queue import ENFORCEMENT_JOBS
from classroom.jobs.schedule import PERIODIC_JOBS

PATHS = sorted({getattr(names, n) for n in dir(names) if n.isupper()} | {p.func for p in PERIODIC_JOBS})


@pytest.mark.parametrize("path", PATHS)
def test_job_path_resolves_to_a_function(path):
    module, name = path.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


def test_enforcement_jobs_are_named_jobs():
    assert set(PATHS) >= ENFORCEMENT_JOBS
    assert names.STOP_WORKSPACE in ENFORCEMENT_JOBS and names.PROVISION_WORKSPACE not in ENFORCEMENT_JOBS


def test_job_ids_keep_their_short_names():
    from classroom.services.workspaces import Job

    assert Job(names.PROVISION_WORKSPACE, 7).job_id == "provision_workspace-7"
    assert Job(names.STOP_WORKSPACE, 7).job_id == "stop_workspace-7"
