"""The AWS side's RQ jobs, one module per concern; RQ runs them by the paths in `classroom.jobs.names`.

workspace: launch, start, stop one workspace · reconcile: observed state, orphans, stalled launches ·
sweep: metering and enforcement · term: term-end warnings and closing. All run in `classroom.jobs.context`.
"""
