"""Joins racing for the last places, and the extension chosen later from the participant's page."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import func, select, update

from classroom.models import BudgetGrant, Deployment, DeploymentStatus, WorkshopParticipant
from tests.conftest import count_rows
from tests.workshops.support import create_workshop, join, owner_token

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_twenty_concurrent_joins_fill_five_places_and_no_more(app, client, canvas, session, engine):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token, max_participants="5", budget="25")
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda n: join(app, code, f"Racer {n}", ip=f"10.0.0.{n}").status_code, range(20)))
    assert sorted(answers) == [303] * 5 + [409] * 15
    assert count_rows(engine, "workshop_participants") == 5 and count_rows(engine, "workspaces") == 5


def test_extension_chosen_later_once_with_csrf(app, client, canvas, session, engine):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token, extension_days="7", extension_daily_price="2", extension_allowance="14")
    link = join(app, code, "Later").headers["Location"]
    walk_in = app.test_client()
    page = walk_in.get(link).get_data(as_text=True)
    assert "Keep my workspace after the workshop" in page and "up to $14.00" in page
    p = link.split("p=", 1)[1]
    forged = walk_in.post("/workshop/me/extension", data={"p": p, "csrf_token": "0" * 64})
    assert forged.status_code == 403 and count_rows(engine, "budget_grants") == 0
    chosen = walk_in.post("/workshop/me/extension", data={"p": p, "csrf_token": CSRF.search(page).group(1)})
    assert chosen.status_code == 303
    again = walk_in.post("/workshop/me/extension", data={"p": p, "csrf_token": CSRF.search(page).group(1)})
    assert again.status_code == 409 and count_rows(engine, "budget_grants") == 1
    assert session.scalar(select(BudgetGrant.amount)) == Decimal(14)
    assert session.scalar(select(func.count()).where(WorkshopParticipant.extension.is_(True))) == 1
    page = walk_in.get(link).get_data(as_text=True)
    assert "You chose to keep learning" in page and "Keep my workspace after the workshop" not in page
    other = join(app, code, "Second").headers["Location"]  # the allowance paid for one: no offer to the next
    assert "Keep my workspace after the workshop" not in walk_in.get(other).get_data(as_text=True)


def test_a_double_click_on_the_extension_grants_it_once(app, client, canvas, session, engine):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token, extension_days="7", extension_daily_price="1", extension_allowance="70")
    link = join(app, code, "Clicker").headers["Location"]
    p = link.split("p=", 1)[1]
    page = app.test_client().get(link).get_data(as_text=True)
    form = {"p": p, "csrf_token": CSRF.search(page).group(1)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: app.test_client().post("/workshop/me/extension", data=form).status_code,
                                range(4)))  # fmt: skip
    assert sorted(answers) == [303, 409, 409, 409] and count_rows(engine, "budget_grants") == 1


def test_a_revoked_installation_stops_new_joins_with_nothing_written(app, client, canvas, session, engine):
    token = owner_token(client, canvas, session)
    _, code, _ = create_workshop(client, token)
    session.execute(update(Deployment).values(status=DeploymentStatus.REVOKED))
    session.commit()
    before = count_rows(engine, "people")
    refused = join(app, code, "After revocation")
    assert refused.status_code == 403 and b"not approved any more" in refused.data
    assert count_rows(engine, "people") == before and count_rows(engine, "workspaces") == 0
