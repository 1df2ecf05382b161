"""Browser tests: Debian's Chromium against the live app and Demo LMS (marker: browser)."""
