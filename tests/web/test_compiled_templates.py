"""Every app of a process shares the compiled templates (lti_app/template_cache.py), and still renders its own."""

from __future__ import annotations

from lti_app.template_cache import COMPILED_TEMPLATES


def test_two_apps_share_the_compiled_templates_and_each_renders_its_pages(app, settings):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    other = create_app(settings)
    try:
        assert app.jinja_env.bytecode_cache is COMPILED_TEMPLATES is other.jinja_env.bytecode_cache
        assert app.jinja_env is not other.jinja_env
        for application in (app, other):
            page = application.test_client().get("/lti/register")  # no invite: refused on a rendered page
            assert page.status_code == 403 and "<html" in page.get_data(as_text=True)  # the error page, rendered
        assert len(COMPILED_TEMPLATES) > 0
    finally:
        other.extensions["cwc"].engine.dispose()
