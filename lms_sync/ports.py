"""The LMS as the sync code sees it: plain data in and out, adapters behind Protocols (built per call)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from lms_sync.http import Verdict


@dataclass(frozen=True)
class RemoteMember:
    """One NRPS member (or one row of another roster source)."""

    user_id: str
    roles: tuple[str, ...]
    status: str = "Active"  # Active | Inactive | Deleted
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    email: str = ""
    section: str | None = None  # None: the source does not know sections (NRPS): keep ours


@dataclass(frozen=True)
class RosterPage:
    """One page of a membership container and the links it carried."""

    members: tuple[RemoteMember, ...]
    next_url: str | None = None
    differences_url: str | None = None


@dataclass(frozen=True)
class RemoteLineItem:
    """An AGS line item."""

    url: str
    label: str
    score_maximum: Decimal
    resource_link_id: str = ""
    resource_id: str = ""
    tag: str = ""
    end_at: datetime | None = None


@dataclass(frozen=True)
class ScoreBody:
    """What one score post says."""

    user_id: str
    score_given: Decimal | None  # None: a comment only; the LMS keeps whatever grade it has
    score_maximum: Decimal
    comment: str
    timestamp: datetime
    is_update: bool  # the LMS has an earlier score of ours for this student and line item


@dataclass(frozen=True)
class RemoteAssignment:
    """A Canvas assignment as the REST API lists it."""

    id: str
    name: str
    due_at: datetime | None
    html_url: str = ""


class LmsServices(Protocol):
    """LTI Advantage services of one platform registration."""

    def roster_page(self, url: str) -> RosterPage:
        """Fetch one NRPS page (retrying transient errors); raises LmsError."""
        ...

    def line_items(self, lineitems_url: str) -> list[RemoteLineItem]:
        """Every line item of the tool in the course (all pages)."""
        ...

    def create_line_item(
        self, lineitems_url: str, *, label: str, score_maximum: Decimal, tag: str, resource_id: str
    ) -> RemoteLineItem:
        """Create a line item and return it with its URL."""
        ...

    def post_score(self, line_item_url: str, score: ScoreBody, *, attempt: int) -> Verdict:
        """Post one score once (no waiting): the verdict says whether and when to try again."""
        ...


class CanvasCourseApi(Protocol):
    """What the tool reads from Canvas's REST API."""

    def assignments(self, canvas_course_id: str) -> list[RemoteAssignment]:
        """Every assignment of a course with its due date (all pages)."""
        ...
