"""Budget grants: extra budget (or a rollover) for a student or the course, out of the course's unallocated
remainder, serialised on the policy row and audited."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from classroom.audit import append_event
from classroom.budget.final_text import dollars
from classroom.models import BudgetGrant, Course
from classroom.services.budgets import BudgetError
from classroom.services.course_money import allocation, lock_course_money

MAX_GRANT = Decimal(1000)  # one grant, in dollars
AMOUNT_RULE = "The amount must be above $0 and at most $1,000."


def grant_budget(
    session: Session,
    course: Course,
    person_id: int | None,
    amount: Decimal,
    reason: str,
    granted_by: int,
    kind: str = "grant",
) -> BudgetGrant:
    """Extra budget (or rollover) with a reason, out of the course's unallocated remainder; audited."""
    if not (Decimal(0) < amount <= MAX_GRANT):
        raise BudgetError(AMOUNT_RULE)
    if len(reason.strip()) < 5:
        raise BudgetError("Give a reason (it is kept in the audit trail).")
    lock_course_money(session, course.id)  # two grants at once cannot both fit the same remainder
    pot = allocation(session, course.id)
    if pot is None or amount > pot.unallocated:
        left = dollars(max(Decimal(0), pot.unallocated)) if pot else dollars(Decimal(0))
        total = dollars(pot.total) if pot else dollars(Decimal(0))
        raise BudgetError(
            f"A grant of {dollars(amount)} does not fit the course total of {total}: {left} is unallocated. "
            "If your IT department raises the course's allocation, enter the new total budget on the Set-up page, "
            "then grant again."
        )
    grant = BudgetGrant(
        course_id=course.id, person_id=person_id, amount=amount, kind=kind, reason=reason.strip(), granted_by=granted_by
    )
    session.add(grant)
    session.flush()
    append_event(
        session,
        f"budget.{kind}",
        actor_person_id=granted_by,
        course_id=course.id,
        subject=str(person_id or "course"),
        details={"amount": str(amount), "reason": reason.strip()},
    )
    return grant
