"""The one job context: installed by tests, else built once per process from the environment."""

from redis import Redis

from classroom.db import make_engine, make_session_factory
from classroom.jobs import context as jobctx
from config.settings import Settings

URL = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never connected to: engines connect lazily


def _env(monkeypatch, db: str = URL) -> None:
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CWC_SECRET_KEY", "x" * 40)


def test_the_environment_context_is_built_once_per_process(monkeypatch):
    _env(monkeypatch)
    jobctx.forget_env_contexts()
    try:
        first = jobctx.current()
        assert jobctx.current() is first and first.sessions.kw["bind"] is jobctx.current().sessions.kw["bind"]
        _env(monkeypatch, URL + "2")
        assert jobctx.current() is not first  # another database: its own engine
    finally:
        jobctx.forget_env_contexts()


def test_an_installed_context_wins_until_removed(monkeypatch):
    _env(monkeypatch)
    settings = Settings.from_env()
    mine = jobctx.JobContext(settings, make_session_factory(make_engine(URL)), Redis.from_url("redis://127.0.0.1:1/0"))
    jobctx.use_context(mine)
    try:
        assert jobctx.current() is mine
    finally:
        jobctx.use_context(None)
        jobctx.forget_env_contexts()
    assert jobctx.current() is not mine


def test_the_backend_is_built_on_first_use_only_once(monkeypatch):
    _env(monkeypatch)
    built: list[object] = []

    def factory(settings, redis):  # type: ignore[no-untyped-def]
        built.append(object())
        return built[-1]

    ctx = jobctx.JobContext(
        Settings.from_env(),
        make_session_factory(make_engine(URL)),
        Redis.from_url("redis://127.0.0.1:1/0"),
        backend_factory=factory,  # type: ignore[arg-type]
    )
    assert built == []
    assert ctx.backend is ctx.backend and len(built) == 1
