"""Staff messages at an SSH login to a local workspace: the unread ones, listed after login (as sshd's motd)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from classroom.services.messages import banner_text, login_messages


def login_banner(sessions: Callable[[], Session], workspace_id: int) -> str:
    """The banner for the workspace's student (empty without unread messages); records that it was shown.

    Blocking (a DB session): the runtime runs it off its event loop.
    """
    with sessions() as session:
        text = banner_text(login_messages(session, workspace_id, record=True))
        session.commit()
    return text
