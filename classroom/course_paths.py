"""Names a course goes by on a workspace's disk and in SSH key files; pure, shared by the web, LMS and cloud sides."""

from __future__ import annotations


def course_slug(label: str, course_id: int) -> str:
    """A short path-safe name for the course ("CS 229" -> "cs229")."""
    slug = "".join(ch for ch in label.lower() if ch.isalnum())
    return slug[:24] or f"course{course_id}"
