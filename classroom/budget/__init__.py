"""Budgets: the launch policy, metering rules and enforcement planning. Pure functions, no I/O."""
