"""The workspace agent: a stdlib-only script that user data installs on every workspace."""
