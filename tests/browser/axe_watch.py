"""axe-core in every document the browser tests open: each page and iframe runs it on load and reports back.

The vendored axe.min.js (tests/browser/vendor, from npm) goes in as an init script, which the browser runs before
the page's own scripts and outside its Content-Security-Policy; on `load` the document checks itself against the
WCAG 2.1 A/AA rules (iframes separately: each has its own copy) and calls an exposed binding with the result.
Once the binding has taken the report, the document marks itself done, so a test can wait for exactly the documents
still open instead of a fixed time. No request goes to a CDN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Error, Frame, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
RUN_ON_LOAD = """
(function () {
  if (!/^https?:/.test(location.protocol)) { return; }
  window.addEventListener('load', function () {
    setTimeout(function () {
      axe.run(document, {iframes: false, runOnly: {type: 'tag', values: %s}}).then(function (result) {
        return window.__cwcAxeReport(location.href, result.violations.map(function (v) {
          return {id: v.id, help: v.help, targets: v.nodes.map(function (n) { return n.target.join(' '); })};
        }));
      }).catch(function (error) {
        return window.__cwcAxeReport(location.href, [{id: 'axe-error', help: String(error), targets: []}]);
      }).then(function () { window.__cwcAxeDone = true; });
    }, 0);
  });
})();
""" % list(WCAG_TAGS)  # noqa: UP031 - a JS literal, not a Python format string
# True in a document that has reported (its report is in Python's hands) or that axe does not check (about:blank).
REPORTED = "() => !/^https?:/.test(location.protocol) || window.__cwcAxeDone === true"
POLL_MS = 50  # not requestAnimationFrame: a page in the background may not paint


@dataclass
class AxeWatch:
    """The reports of every document checked in the contexts it watches."""

    reports: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        """Check every document this context opens from now on."""
        context.expose_binding("__cwcAxeReport", self._report)
        context.add_init_script(AXE_SOURCE + "\n" + RUN_ON_LOAD)

    def _report(self, source: dict[str, Any], url: str, violations: list[dict[str, Any]]) -> None:
        self.reports.append((url, violations))

    def wait_until_reported(self, pages: list[Page], timeout_s: float) -> None:
        """Wait until every document open in `pages`, iframes included, has reported; fail naming those that did
        not within `timeout_s`. A document that replaced another meanwhile is waited for in turn."""
        deadline = time.monotonic() + timeout_s
        while True:
            frames = [frame for page in pages if not page.is_closed() for frame in page.frames]
            try:
                for frame in frames:
                    left_ms = max(1.0, (deadline - time.monotonic()) * 1000)
                    frame.wait_for_function(REPORTED, polling=POLL_MS, timeout=left_ms)
            except PlaywrightTimeout:
                late = [frame.url for frame in frames if not _reported(frame)]
                raise AssertionError(f"axe-core did not report within {timeout_s:.0f} s on: {late}") from None
            except Error:  # a frame went away or its page closed while we waited: look at what is open now
                if time.monotonic() >= deadline:
                    raise
                continue
            if all(_reported(frame) for page in pages if not page.is_closed() for frame in page.frames):
                return

    def violations(self) -> list[str]:
        """One line per violation: the page, the rule, what it asks and where."""
        return [
            f"{url}: {v['id']} ({v['help']}) at {', '.join(v['targets'][:5])}"
            for url, found in self.reports
            for v in found
        ]


def _reported(frame: Frame) -> bool:
    """Whether this frame's document has reported (a frame that is gone has nothing left to report)."""
    try:
        return bool(frame.evaluate(REPORTED))
    except Error:
        return True  # gone: nothing left to wait for
