"""The new-window fallback against a Moodle-like platform: no binding cookie comes back, no platform storage, and
the platform refuses a replayed `lti_message_hint`. The verified launch is parked and claimed by the new window."""

from __future__ import annotations

import re

from sqlalchemy import select

from classroom.models import Enrollment, Person
from classroom.roles import StaffLevel
from tests.conftest import count_rows
from tests.support.lti import login, post_launch, register, tool_token


class MoodleHints:
    """Moodle's authorisation step: each launch id (lti_message_hint) works once, a replay is 'Invalid request'."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.requests = 0

    def authorize(self, hint: str) -> None:
        self.requests += 1
        if hint in self.used:
            raise AssertionError("Invalid request")  # what Moodle answers to a replayed hint
        self.used.add(hint)


def iframe_launch(app, moodle, user, hints):  # type: ignore[no-untyped-def]
    """A launch inside the LMS iframe with third-party cookies blocked: the binding cookie never comes back."""
    iframe = app.test_client(use_cookies=False)
    started = login(iframe, moodle, user, method="POST", lti_message_hint="moodle-launch-77")
    hints.authorize(started.params.get("lti_message_hint", "moodle-launch-77"))
    return post_launch(iframe, started.state, moodle.sign(moodle.claims(user, nonce=started.nonce)))


def nothing_signed_in(engine, redis) -> bool:  # type: ignore[no-untyped-def]
    no_rows = count_rows(engine, "people") == 0 and count_rows(engine, "enrollments") == 0
    return no_rows and not list(redis.scan_iter("cwc:lti:launch:*"))


def test_the_new_window_finishes_the_verified_launch_without_replaying_the_hint(app, session, moodle, engine, redis):
    register(session, moodle)
    hints = MoodleHints()
    page = iframe_launch(app, moodle, moodle.user("student"), hints)
    html = page.get_data(as_text=True)
    assert page.status_code == 401 and "Open in a new window" in html and 'target="_blank"' in html
    assert "/lti/login" not in html  # a replayed login would end in Moodle's "Invalid request"
    assert nothing_signed_in(engine, redis)  # parked only: no person, no enrollment, no launch data yet
    resume = re.search(r'href="(/lti/resume\?p=[^"]+)"', html).group(1)  # type: ignore[union-attr]
    window = app.test_client()  # the new, top-level window: first-party cookies work here
    confirm = window.get(resume)
    assert confirm.status_code == 200 and "Continue as Emily Chen" in confirm.get_data(as_text=True)
    secret = resume.split("p=", 1)[1]
    done = window.post("/lti/resume", data={"p": secret})
    assert done.status_code == 303 and "/app/" in done.headers["Location"]
    home = window.get("/app/home", query_string={"t": tool_token(done)})
    assert home.status_code == 200 and "Emily Chen" in home.get_data(as_text=True)  # signed in, in the new window
    enrollment = session.scalar(select(Enrollment).join(Person).where(Person.sub == "student-1"))
    assert enrollment is not None and enrollment.level is StaffLevel.STUDENT
    assert hints.requests == 1  # the platform was never asked again
    # one use: the same window, or anyone else, cannot claim it again
    assert window.post("/lti/resume", data={"p": secret}).status_code == 410
    assert window.get(resume).status_code == 410
    assert count_rows(engine, "enrollments") == 1


def test_a_parked_launch_is_bound_to_the_first_window_that_opens_it(app, session, moodle, engine, redis):
    register(session, moodle)
    html = iframe_launch(app, moodle, moodle.user("student"), MoodleHints()).get_data(as_text=True)
    resume = re.search(r'href="(/lti/resume\?p=[^"]+)"', html).group(1)  # type: ignore[union-attr]
    secret = resume.split("p=", 1)[1]
    first, other = app.test_client(), app.test_client()
    assert first.get(resume).status_code == 200
    assert first.get(resume).status_code == 200  # a reload of the same window is fine
    refused = other.get(resume)
    assert refused.status_code == 410 and "from your course again" in refused.get_data(as_text=True)
    assert other.post("/lti/resume", data={"p": secret}).status_code == 410
    # a cross-site form post carries no Lax cookie: refused too
    assert app.test_client(use_cookies=False).post("/lti/resume", data={"p": secret}).status_code == 410
    assert nothing_signed_in(engine, redis)
    assert first.post("/lti/resume", data={"p": secret}).status_code == 303  # the bound window still can


def test_an_unknown_or_expired_link_says_to_relaunch_from_the_course(app, session, moodle, engine, redis):
    register(session, moodle)
    window = app.test_client()
    for resp in (window.get("/lti/resume", query_string={"p": "made-up"}), window.get("/lti/resume")):
        assert resp.status_code == 410 and "Open Cloud Workstation from your course again" in resp.get_data(
            as_text=True
        )
    assert window.post("/lti/resume", data={"p": "made-up"}).status_code == 410
    html = iframe_launch(app, moodle, moodle.user("student"), MoodleHints()).get_data(as_text=True)
    secret = re.search(r"/lti/resume\?p=([^\"]+)", html).group(1)  # type: ignore[union-attr]
    redis.delete(*redis.keys("cwc:lti:parked:*"))  # two minutes later
    assert window.get("/lti/resume", query_string={"p": secret}).status_code == 410
    assert nothing_signed_in(engine, redis)


def test_an_invalid_token_without_a_cookie_is_refused_not_parked(app, session, moodle, engine, redis):
    register(session, moodle)
    iframe = app.test_client(use_cookies=False)
    user = moodle.user("student")
    started = login(iframe, moodle, user, method="POST")
    forged = moodle.claims(user, nonce="not-the-login-nonce")
    resp = post_launch(iframe, started.state, moodle.sign(forged))
    assert resp.status_code == 401 and "/lti/resume" not in resp.get_data(as_text=True)
    assert not list(redis.scan_iter("cwc:lti:parked:*")) and nothing_signed_in(engine, redis)
    # the login survives a wrong nonce: the real token still parks
    real = post_launch(iframe, started.state, moodle.sign(moodle.claims(user, nonce=started.nonce)))
    assert real.status_code == 401 and "/lti/resume?p=" in real.get_data(as_text=True)
