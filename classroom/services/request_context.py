"""What an instructor needs to decide a template request, and what the student reads about it.

The template's name (never its id), the student, their spend so far against their budget and the projection
of running the template 24/7 (bounded by the term's end and the daily cap): one home for the requests page,
the request email and the student's notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from classroom.budget.policy import money
from classroom.models import Course, Person
from classroom.services.budgets import decide_launch
from config.catalog import Catalog
from config.prices import RegionPrices


@dataclass(frozen=True)
class RequestContext:
    """One student's request for one template, in words."""

    template_name: str
    student: str
    spent: Decimal | None  # None: the budget cannot be computed
    cap: Decimal | None
    projection: str

    @property
    def spend_text(self) -> str:
        if self.spent is None or self.cap is None:
            return "their spend cannot be computed right now"
        return f"{money(self.spent)} spent of {money(self.cap)}"

    def email_body(self, reason: str) -> str:
        """The instructors' notification: who asks for what, why, their spend and the projection."""
        return (
            f'{self.student} asks to use {self.template_name}: "{reason[:500]}".\n'
            f"So far: {self.spend_text}. {self.projection}\n"
            "Approve or deny it on the Requests page of Cloud Workstation."
        )


def template_name(catalog: Catalog, template_id: str) -> str:
    """The template's name as students see it (the id only for a template no longer in the catalog)."""
    template = catalog.get(template_id)
    return template.name if template else template_id


def request_context(
    session: Session,
    course: Course,
    person_id: int,
    template_id: str,
    *,
    catalog: Catalog,
    prices: RegionPrices,
    now: datetime | None = None,
) -> RequestContext:
    """The request's context from the launch check's own figures (its money and projection)."""
    decision = decide_launch(session, course, person_id, template_id, catalog=catalog, prices=prices, now=now)
    person = session.get(Person, person_id)
    student = person.display_name if person else f"Student {person_id}"
    spent = decision.money.spent if decision.money else None
    cap = decision.money.cap if decision.money else None
    return RequestContext(template_name(catalog, template_id), student, spent, cap, decision.projection)
