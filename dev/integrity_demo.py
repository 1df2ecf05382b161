"""Development only (`make run`): seed the Demo LMS course's hw5 integrity scene once the LMS is registered."""

from __future__ import annotations

from config.settings import Settings


def seed_integrity_demo(settings: Settings) -> str:
    """The seed's Problem 4 (hw5 with Emily's and David's activity), once, for the Integrity page's report."""
    from classroom.db import make_engine, make_session_factory, session_scope
    from dev.demo_lms.origins import issuer
    from dev.demo_lms.seed import generated_students
    from dev.integrity_seed import seed_hw5
    from provisioning.aws_evidence import store_for
    from provisioning.factory import backend_from_settings

    classmates = [(f"{p.given_name} {p.family_name}", p.email) for p in generated_students()[:5]]
    engine = make_engine(settings.database_url or "")
    try:
        with session_scope(make_session_factory(engine)) as session:
            return seed_hw5(session, store_for(backend_from_settings(settings)), issuer(settings), classmates)
    except Exception as exc:  # noqa: BLE001 - development data: the server stays up and says what failed
        return f"integrity demo: NOT seeded: {type(exc).__name__}: {exc}"
    finally:
        engine.dispose()
