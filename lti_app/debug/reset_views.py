"""Workspace reset pages (filled by the reset commit)."""
