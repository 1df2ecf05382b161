"""Provisioning tests use the simulated-AWS fixtures of tests/conftest.py."""
