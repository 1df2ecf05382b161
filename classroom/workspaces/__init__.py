"""Workspace domain: the lifecycle state machine and pure decisions about workspaces."""
