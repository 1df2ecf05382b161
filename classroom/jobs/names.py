"""The dotted paths RQ runs workspace jobs by, in one place: services name the job, the queue table routes it.

Paths, not imports: the domain and its services enqueue a provisioning job without importing the adapter.
`tests/unit/test_job_names.py` resolves every path here and in the periodic table to a callable.
"""

from __future__ import annotations

PROVISION_WORKSPACE = "provisioning.jobs.workspace.provision_workspace"
START_WORKSPACE = "provisioning.jobs.workspace.start_workspace"
STOP_WORKSPACE = "provisioning.jobs.workspace.stop_workspace"
RECONCILE_WORKSPACES = "provisioning.jobs.reconcile.reconcile_workspaces"
METER_AND_ENFORCE = "provisioning.jobs.sweep.meter_and_enforce"
CLOSE_TERMS = "provisioning.jobs.term.close_terms"
RETIRE_WORKSPACE = "provisioning.retire.retire_workspace"
RETIRE_DUE = "provisioning.retire.retire_due"
BOOK_USAGE_HOURLY = "provisioning.usage.book_usage_hourly"
CLOSE_WORKSHOPS = "provisioning.workshop_end.close_workshops"
