"""axe-core in every document the browser tests open: each page and iframe runs it on load and reports back.

The vendored axe.min.js (tests/browser/vendor, from npm) goes in as an init script, which the browser runs before
the page's own scripts and outside its Content-Security-Policy; on `load` the document checks itself against the
WCAG 2.1 A/AA rules (iframes separately: each has its own copy) and calls an exposed binding with the result.
No request goes to a CDN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
RUN_ON_LOAD = """
(function () {
  if (!/^https?:/.test(location.protocol)) { return; }
  window.addEventListener('load', function () {
    setTimeout(function () {
      axe.run(document, {iframes: false, runOnly: {type: 'tag', values: %s}}).then(function (result) {
        window.__cwcAxeReport(location.href, result.violations.map(function (v) {
          return {id: v.id, help: v.help, targets: v.nodes.map(function (n) { return n.target.join(' '); })};
        }));
      }).catch(function (error) {
        window.__cwcAxeReport(location.href, [{id: 'axe-error', help: String(error), targets: []}]);
      });
    }, 0);
  });
})();
""" % list(WCAG_TAGS)  # noqa: UP031 - a JS literal, not a Python format string


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

    def violations(self) -> list[str]:
        """One line per violation: the page, the rule, what it asks and where."""
        return [
            f"{url}: {v['id']} ({v['help']}) at {', '.join(v['targets'][:5])}"
            for url, found in self.reports
            for v in found
        ]
