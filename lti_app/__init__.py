"""The web side: create_app builds the Flask app from settings; nothing connects at import."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, g, request
from markupsafe import Markup
from werkzeug.middleware.proxy_fix import ProxyFix

from classroom.logs import configure_logging, request_id
from classroom.schema import check_migrated
from config.money_check import require_money_config
from config.settings import Settings
from lti_app import errors, inputs, security
from lti_app.runtime import build_runtime, close_db
from lti_app.template_cache import COMPILED_TEMPLATES
from lti_app.term_notice import term_notice

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, check_schema: bool = True) -> Flask:
    """Build the app: runtime, blueprints, security headers, error pages."""
    settings = settings or Settings.from_env()
    require_money_config(settings.aws_region)  # every template priced in the region, or no start
    configure_logging(settings.log_level, settings.log_json)
    app = Flask(__name__, template_folder="../templates", static_folder="static")
    app.jinja_options = {**app.jinja_options, "bytecode_cache": COMPILED_TEMPLATES}  # compiled once per process
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="None" if settings.secure_cookies else "Lax",
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=not settings.is_production,
    )
    if settings.is_production:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    runtime = build_runtime(settings)
    if check_schema:
        check_migrated(runtime.engine)
    app.extensions["cwc"] = runtime

    @app.before_request
    def _request_id() -> None:
        rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
        g.request_id = rid
        request_id.set(rid)

    app.teardown_appcontext(close_db)
    security.forget_frame_origins()  # a new app may sit on another database
    security.init_app(app)
    errors.init_app(app)
    inputs.init_app(app)
    _register_blueprints(app, settings)
    app.jinja_env.globals["here"] = here
    app.jinja_env.globals["term_notice"] = term_notice  # the term-end warning on a student's pages
    return app


SAME_TAB = {"setup.save": "setup.wizard", "welcome.preview": "setup.wizard", "welcome.save": "setup.wizard"}


def here(endpoint: str) -> Markup:
    """` aria-current="page"` on the tab link of the page being shown (its POST twin counts too), else nothing."""
    current = SAME_TAB.get(request.endpoint or "", request.endpoint)
    return Markup(' aria-current="page"') if current == endpoint else Markup("")


def _register_blueprints(app: Flask, settings: Settings) -> None:
    from lti_app.archive_views import bp as archives_bp
    from lti_app.budget_views import bp as budget_bp
    from lti_app.course_sync import bp as course_sync_bp
    from lti_app.debug import bp as debug_bp
    from lti_app.final_report_views import bp as final_report_bp
    from lti_app.health import bp as health_bp
    from lti_app.integrity import trail_views  # noqa: F401  (its routes live on the integrity blueprint)
    from lti_app.integrity.views import bp as integrity_bp
    from lti_app.lti import new_window  # noqa: F401  (its routes live on the lti blueprint)
    from lti_app.lti.deep_linking import bp as deep_link_bp
    from lti_app.lti.views import bp as lti_bp
    from lti_app.next_term_views import bp as next_term_bp
    from lti_app.office import bp as office_bp
    from lti_app.pages import staff_views  # noqa: F401  (its routes live on the pages blueprint)
    from lti_app.pages.views import bp as pages_bp
    from lti_app.restore_views import bp as restores_bp
    from lti_app.setup_views import bp as setup_bp
    from lti_app.welcome_views import bp as welcome_bp
    from lti_app.workshops import bp as workshops_bp
    from lti_app.workspaces.agent_api import bp as agent_bp
    from lti_app.workspaces.keys_views import bp as keys_bp
    from lti_app.workspaces.material_upload_views import bp as material_uploads_bp
    from lti_app.workspaces.materials_views import bp as materials_bp
    from lti_app.workspaces.recorded_views import bp as recorded_bp
    from lti_app.workspaces.staff_ssh_views import bp as staff_ssh_bp
    from lti_app.workspaces.terminal_views import bp as terminal_bp
    from lti_app.workspaces.terminal_views import terminal_enabled
    from lti_app.workspaces.views import bp as workspaces_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(lti_bp)
    app.register_blueprint(deep_link_bp)
    app.register_blueprint(pages_bp)
    blueprints = (workspaces_bp, keys_bp, materials_bp, material_uploads_bp, agent_bp, setup_bp, course_sync_bp,
                  budget_bp, recorded_bp, staff_ssh_bp, welcome_bp, terminal_bp, workshops_bp, office_bp,
                  debug_bp, integrity_bp, final_report_bp, restores_bp, next_term_bp)  # fmt: skip
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.jinja_env.globals["terminal_enabled"] = terminal_enabled
    app.register_blueprint(archives_bp)  # staff's archives page (issue 20, archive retention)
    if settings.dev_tools_allowed:  # else dev-only surfaces are absent from the url_map, not only refused
        from dev.web import register_dev_blueprints  # the product's only import of `dev`, development only

        register_dev_blueprints(app, settings)
