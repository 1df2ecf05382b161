"""Development tools, never part of a production run: the Demo LMS, the outbox viewer, `make run`'s supervisor.

The product packages (lti_app, classroom, provisioning, lms_sync, config) never import this package, except the
app factory's one import of `dev.web`, made only when `Settings.dev_tools_allowed` (not production, loopback
bind). `tests/hardening/test_dev_package.py` checks that a production `create_app` loads no `dev` module (and
`tests/unit/test_dev_package.py` that no product module imports one).
"""
