"""Workspace pages: the student's workspace, SSH keys, course materials, and the agent API."""
