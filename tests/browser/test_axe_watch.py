"""The axe-core watch itself: it checks every document, iframes included, under a strict CSP, and reports what
it finds (the other browser tests then fail on any violation in the pages they visit)."""

from __future__ import annotations

import functools
import http.server
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import AXE_REPORT_TIMEOUT_S
from tests.support.serving import serve_in_thread

PAGES = {
    "bad.html": '<!doctype html><html lang="en"><head><title>Bad</title></head><body><main><h1>Bad</h1>'
    '<iframe title="inner" src="inner.html"></iframe></main></body></html>',
    "inner.html": '<!doctype html><html lang="en"><head><title>Inner</title></head><body><main>'
    '<img src="missing.png"></main></body></html>',
    "good.html": '<!doctype html><html lang="en"><head><title>Good</title></head><body><main><h1>Good</h1>'
    "</main></body></html>",
}


class _StrictCsp(http.server.SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", "default-src 'self'; script-src 'none'")
        super().end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    for name, html in PAGES.items():
        (tmp_path / name).write_text(html)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_StrictCsp, directory=str(tmp_path)))
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_watch_reports_a_violation_inside_an_iframe_under_a_strict_csp(browser, site):
    page = browser.new_page(third_party_cookies=True)
    page.goto(f"{site}/bad.html")
    browser.axe.wait_until_reported([page], AXE_REPORT_TIMEOUT_S)  # the page and its iframe
    assert any(url.endswith("inner.html") for url, _ in browser.axe.reports)
    assert [v for v in browser.axe.violations() if "inner.html: image-alt" in v]
    assert any(url.endswith("bad.html") for url, _ in browser.axe.reports)
    browser.axe.reports.clear()  # the teardown check is for the real pages; leave it a clean one
    page.goto(f"{site}/good.html")
