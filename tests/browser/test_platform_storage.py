"""The tool's OIDC login and launch inside the Demo LMS iframe (a third-party frame: Demo LMS on localhost, tool on
127.0.0.1), in Chromium with third-party cookies blocked and, as a control, allowed.

How the browser is bound to its login (README, "How the launch is hardened"): the login page leaves a secret in a
per-login cookie `cwc_lti_*` and in the platform's storage (`lti.put_data`); the launch takes the cookie when it
comes back, else answers a relay page that asks the platform (`lti.get_data`) and re-posts the launch with the
secret in the `cwc_binding` field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import LAUNCH_TIMEOUT_MS, Browser, LiveServer, shot, sign_in

pytestmark = pytest.mark.browser

TA = "Priya Sharma"  # lands on the course home: no set-up wizard, no workspace
STUDENT = "David Kim"


@dataclass
class LaunchPost:
    """One POST to the tool's /lti/launch as the browser sent it."""

    cookie_header: str
    form: dict[str, str]
    status: int
    location: str

    @property
    def sent_binding_cookie(self) -> bool:
        return "cwc_lti_" in self.cookie_header

    @property
    def relayed(self) -> bool:
        """The re-post made by the relay page with the secret read from platform storage."""
        return "cwc_storage_tried" in self.form


def record_launch_posts(page: Page, live: LiveServer) -> list[Request]:
    """Collect the POSTs to /lti/launch from every frame of the page (the tool runs in the iframe)."""
    posts: list[Request] = []
    launch_url = live.base_url + "/lti/launch"
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and r.url == launch_url else None)
    return posts


def launch_posts(requests: list[Request]) -> list[LaunchPost]:
    """Read what was sent (all_headers includes the Cookie header as sent) and what the tool answered."""
    out = []
    for r in requests:
        response = r.response()
        assert response is not None, f"no response to {r.url}"
        form = {k: v[0] for k, v in parse_qs(r.post_data or "", keep_blank_values=True).items()}
        location = response.header_value("location") or ""
        out.append(LaunchPost(r.all_headers().get("cookie", ""), form, response.status, location))
    return out


def open_tool(page: Page, live: LiveServer, persona: str = TA, role: str = "Teaching assistant") -> None:
    """Sign in to the Demo LMS and open the course's Cloud Workstation link (the tool in the iframe)."""
    sign_in(page, live, persona)
    page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    who = page.frame_locator("iframe.tool-frame").locator("header .who")
    expect(who).to_contain_text(persona, timeout=LAUNCH_TIMEOUT_MS)  # signed in, inside the frame
    expect(who).to_contain_text(role)


def assert_relayed(sent: list[LaunchPost], landing: str) -> None:
    """No cookie on either POST: the tool answered the relay page, which re-posted with the stored secret."""
    assert [p.sent_binding_cookie for p in sent] == [False, False], sent
    first, relay = sent
    assert first.status == 200 and not first.relayed and "cwc_binding" not in first.form  # the relay page
    assert relay.relayed and len(relay.form.get("cwc_binding", "")) >= 32  # the secret from platform storage
    assert relay.form["state"] == first.form["state"] and relay.form["id_token"] == first.form["id_token"]
    assert relay.status == 303 and landing in relay.location


def tool_cookies(page: Page, live: LiveServer) -> list[str]:
    """Names of the tool's login cookies in the browser's jar (unpartitioned or partitioned)."""
    return [c["name"] for c in page.context.cookies(live.base_url) if c["name"].startswith("cwc_lti_")]


def platform_storage_keys(page: Page, live: LiveServer) -> list[str]:
    """The keys the Demo LMS course page keeps for the tool (lti.put_data) in its sessionStorage."""
    prefix = f"lti-storage:{live.base_url}:"
    keys = page.evaluate("() => Object.keys(sessionStorage)")
    return [k[len(prefix) :] for k in keys if k.startswith(prefix)]


def test_launch_with_third_party_cookies_blocked_goes_through_platform_storage(
    live_server: LiveServer, browser: Browser
) -> None:
    """Third-party cookies blocked (profile preference profile.cookie_controls_mode = 1).

    The tool's cookie is given its https shape (`SameSite=None; Secure`, see `_Dispatcher`), so it is the third-party
    cookie setting alone that keeps it from coming back: the control test shows the same cookie is sent when
    third-party cookies are allowed. For a TA, then a student: the tool set it, Chromium refused it, the first launch
    POST arrived without it, the tool answered the relay page, the relay read the secret from the Demo LMS's storage
    and re-posted with `cwc_binding`, and the tool page rendered in the iframe signed in as that person.
    """
    live_server.dispatcher.https_shaped_binding_cookie = True
    page = browser.new_page(third_party_cookies=False)
    posts = record_launch_posts(page, live_server)

    open_tool(page, live_server)  # a TA
    shot(page, "storage-01-blocked-cookies-ta")
    assert live_server.dispatcher.binding_cookies_set, "the login did not set its binding cookie"
    assert all("SameSite=None; Secure" in c for c in live_server.dispatcher.binding_cookies_set)
    assert tool_cookies(page, live_server) == [], "Chromium kept the tool's third-party cookie: not blocked"
    assert_relayed(launch_posts(posts), "/app/home")
    stored = platform_storage_keys(page, live_server)
    assert len(stored) == 1 and stored[0].startswith("cwc_state_"), stored  # lti.put_data reached the Demo LMS

    live_server.ensure_policies()  # the TA's launch made the course; a student's page needs its policy
    posts.clear()
    page.get_by_role("button", name="Sign out").click()
    open_tool(page, live_server, STUDENT, "Student")
    frame = page.frame_locator("iframe.tool-frame")
    expect(frame.get_by_role("heading", name="My workspace")).to_be_visible()  # the course link: the student's home
    expect(frame.get_by_role("button", name="Start my workspace")).to_be_visible()  # nothing started by the visit
    shot(page, "storage-02-blocked-cookies-student")
    assert tool_cookies(page, live_server) == []
    assert_relayed(launch_posts(posts), "/app/workspace")


def test_control_with_third_party_cookies_allowed(live_server: LiveServer, browser: Browser) -> None:
    """Third-party cookies allowed (profile.cookie_controls_mode = 0): what actually happens on this http server.

    1. As the tool really runs here (http): its cookie must be `SameSite=Lax` (`SameSite=None` needs `Secure`, and
       the tool only marks cookies Secure on https). Chromium refuses to store a Lax cookie set by a cross-site
       iframe response, and would not send one on a cross-site POST anyway, so even with third-party cookies
       allowed the launch arrives without it and goes through the platform-storage relay, exactly as when blocked.
    2. With the https shape (`SameSite=None; Secure`, unpartitioned), the same launch keeps the cookie and sends it
       with the launch POST: the tool binds the browser by cookie, answers 303 at once, and no relay happens. This is
       what proves that, in the blocked test, the missing cookie is the blocking's doing.
    """
    page = browser.new_page(third_party_cookies=True)
    posts = record_launch_posts(page, live_server)

    open_tool(page, live_server)
    shot(page, "storage-03-allowed-cookies-http-lax")
    assert live_server.dispatcher.binding_cookies_set and all(
        "SameSite=Lax" in c for c in live_server.dispatcher.binding_cookies_set
    )
    assert tool_cookies(page, live_server) == []  # refused: Lax, set in a cross-site frame
    lax = launch_posts(posts)
    assert [(p.sent_binding_cookie, p.relayed) for p in lax] == [(False, False), (False, True)], lax
    assert lax[1].status == 303 and lax[1].form.get("cwc_binding")

    live_server.dispatcher.https_shaped_binding_cookie = True
    posts.clear()
    page.goto(live_server.demo_url + "/course")
    expect(page.locator("iframe.tool-frame")).to_have_count(0)
    page.locator("nav.course-nav").get_by_role("link", name="Cloud Workstation", exact=True).click()
    expect(page.frame_locator("iframe.tool-frame").locator("header .who")).to_contain_text(
        TA, timeout=LAUNCH_TIMEOUT_MS
    )
    shot(page, "storage-04-allowed-cookies-https-shaped")
    cookie = launch_posts(posts)
    assert len(cookie) == 1, cookie  # no relay page
    assert cookie[0].sent_binding_cookie and "cwc_binding" not in cookie[0].form
    assert cookie[0].status == 303 and "/app/home" in cookie[0].location
    assert re.search(r"cwc_lti_[0-9a-f]{20}=", cookie[0].cookie_header)
