"""The development-only blueprints, registered by the app factory when `Settings.dev_tools_allowed`."""

from __future__ import annotations

from flask import Flask

from config.settings import Settings


def register_dev_blueprints(app: Flask, settings: Settings) -> None:
    """Add /dev/mail, /dev/time-travel, and the Demo LMS when CWC_DEMO_LMS is on (each request still passes
    dev.guard)."""
    from dev.mail import bp as dev_mail_bp
    from dev.time_travel import bp as dev_time_travel_bp

    app.register_blueprint(dev_mail_bp)
    app.register_blueprint(dev_time_travel_bp)
    if settings.demo_lms:
        from dev.demo_lms import bp as demo_bp

        app.register_blueprint(demo_bp)
