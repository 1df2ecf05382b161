"""The ticket routes' per-person rate limit: past TICKETS_PER_PERSON in a minute a person gets 429 with a message and
nothing is written (no ticket, no audit event); other people are not affected. Real signed launches, real Redis."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from classroom.services.terminal import redeem_ticket
from lti_app.workspaces.terminal_views import TICKETS_PER_PERSON
from tests.runtime.test_terminal_routes import _post, _written, people, settings  # noqa: F401 - fixtures


def test_a_burst_of_ticket_requests_gets_429_past_the_limit_and_writes_nothing(app, client, session, redis, people):  # type: ignore[no-untyped-def]  # noqa: F811
    tokens, ws = people
    path = f"/app/workspaces/{ws.id}/terminal/ticket"
    share = _post(app, client, f"/app/workspaces/{ws.id}/terminal/share", tokens["emily"], action="start")
    assert share.status_code == 200
    tickets = []
    for _ in range(TICKETS_PER_PERSON.amount):
        resp = _post(app, client, path, tokens["emily"])
        assert resp.status_code == 200
        tickets.append(parse_qs(urlsplit(resp.json["url"]).query)["ticket"][0])
    before = _written(session, redis)
    for _ in range(3):
        refused = _post(app, client, path, tokens["emily"])
        assert refused.status_code == 429 and "Too many terminal connections" in refused.json["message"]
    assert _written(session, redis) == before  # no ticket, no audit event
    assert len(set(tickets)) == TICKETS_PER_PERSON.amount and all(redeem_ticket(redis, t) for t in tickets)
    watch = _post(app, client, path, tokens["alex"])  # per person: the TA still gets his ticket
    assert watch.status_code == 200 and watch.json["mode"] == "watch"
