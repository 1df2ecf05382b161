"""Shared fixtures: real PostgreSQL (a migrated database per process, reset between tests), real Redis, the app,
and a real LTI platform served over HTTP. Missing services fail the run; nothing is skipped."""

from __future__ import annotations

import gc
import itertools
import os
import socket
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlparse

import psycopg
import pytest
import redis as redis_lib
import requests
from _pytest.nodeid import coerce_node_id  # see XdistGroups
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.server import ThreadedMotoServer
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from classroom import schema
from classroom.db import make_engine, make_session_factory
from config.settings import Settings
from provisioning.aws import AwsBackend
from provisioning.factory import boto_session
from provisioning.simulated import SIMULATED_IMAGE_PREFIX, seed_simulated_aws
from tests.support.cpython_ast import retrying
from tests.support.dbpool import DatabasePool
from tests.support.lti import register
from tests.support.moto_amis import use_default_amis_only
from tests.support.moto_modules import list_moto_modules_once
from tests.support.moto_threads import serialize_subnet_ips
from tests.support.os_users import EC2_ACCOUNTS
from tests.support.platform import TestPlatform
from tests.support.rsa_pool import KeyPool
from tests.support.url_builders import share_compiled_url_builders

PG_ADMIN_URL = os.environ.get("CWC_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CWC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_test_db() -> int:
    """The tests' own Redis DB number (1–15), varied per run so parallel runs on one machine do not flush each
    other; CWC_TEST_REDIS_DB pins it (several checkouts testing at once each take their own number). Under
    pytest-xdist, worker gwN takes the run's number plus N, so workers never flush each other either."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") else 0
    pinned = os.environ.get("CWC_TEST_REDIS_DB")
    if pinned:
        base = int(pinned)
    elif worker:  # the same base in every worker of this run
        base = 1 + int(os.environ.get("PYTEST_XDIST_TESTRUNUID", "0")[:8] or "0", 16) % 15
    else:
        base = 1 + os.getpid() % 15
    return 1 + (base - 1 + index) % 15


REDIS_TEST_DB = _redis_test_db()


def _admin_conn() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # fail, never skip: these tests need real PostgreSQL
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL}: run the tests with `make test`. ({exc})", pytrace=False
        )


def _db_url(name: str) -> str:
    parts = urlparse(PG_ADMIN_URL)
    return parts._replace(path="/" + name).geturl()


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module imports moto's EC2 models (tests/support/moto_amis.py says why); the xdist groups
    (XdistGroups, below) and the EC2 stand-in tests' machine-wide lock (tests/support/os_users.py); and, once per
    process instead of once per app or request, each URL rule's builder (tests/support/url_builders.py) and moto's
    list of its services (tests/support/moto_modules.py)."""
    use_default_amis_only()
    config.pluginmanager.register(XdistGroups(), "cwc-xdist-groups")
    config.pluginmanager.register(EC2_ACCOUNTS, "cwc-ec2-accounts")
    share_compiled_url_builders()
    list_moto_modules_once()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On pytest-xdist's workers (`make test` runs three, `--dist loadgroup`): every browser test in one
    group, run by one worker, so two Chromiums never share the two cores while the other workers run the rest; and
    the long tests first (the browser group, then the tests marked `slow`), so no worker starts a minute-long test
    when the others have nothing left to do. Without xdist the order is left as collected."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("browser") or "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("browser"))
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)  # stable: collected order within each rank


class XdistGroups:
    """`--dist loadgroup` for pytest 9: pytest-xdist 3.8.0 tags a grouped test by assigning `item._nodeid`
    ("nodeid@group"), which pytest 9 no longer reads (a node's id lives in `_id`), so every group was silently
    spread over both workers: two Chromiums at once, and two workers changing the same OS accounts. After
    xdist's own hook, the tag is written where pytest 9 keeps it; the scheduler reads it from the nodeid."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not getattr(config.option, "loadgroup", False):  # set on xdist workers only
            return
        for item in items:
            names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                            for m in item.iter_markers("xdist_group")})  # fmt: skip
            if names and "@" not in item.nodeid:
                item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]


UNFREEZE_EVERY = 60  # tests; see pytest_runtest_teardown
_tests_torn_down = itertools.count(1)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After each test's fixtures are torn down: collect its garbage, then freeze what survives.

    A test process holds about 500,000 long-lived objects after its first test (botocore's parsed service models,
    moto's backends, SQLAlchemy's and Flask's registries), and every test with an app and a backend makes enough
    new ones to trigger a full collection every test or two, each walking all 500,000 again (0.3 s of CPU): a
    fifth of the CPU of the runtime tests was the collector. Frozen objects (`gc.freeze`) are never walked again,
    so the collector only looks at what the current test made. Only what is still reachable is frozen (the
    collection first frees this test's garbage), but a later test drops some of it and a frozen cycle is never
    freed (the runtime tests' process grew from 478 to 718 MB over 49 tests); so every UNFREEZE_EVERY tests
    everything is unfrozen and collected once, which bounds what a test process keeps. That collection walks
    everything the process holds (about a million objects late in a run, 0.6-1.2 s of CPU): every 20 tests it
    took 37 s of a full run's CPU, every 60 tests 17 s, with each worker's peak at 740-810 MB."""
    if next(_tests_torn_down) % UNFREEZE_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def rsa_keys() -> KeyPool:
    return KeyPool()


@pytest.fixture(autouse=True)
def _reused_rsa_keys(rsa_keys: KeyPool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's RSA keys are distinct, real, and generated once per process (tests/support/rsa_pool.py)."""
    rsa_keys.start_test()
    monkeypatch.setattr(rsa, "generate_private_key", rsa_keys.generate_private_key)


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard: a test may only open connections to this machine (loopback and unix sockets)."""
    real = socket.socket.connect

    def guarded(sock: socket.socket, address: object) -> object:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])  # type: ignore[index]
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise RuntimeError(f"test tried to reach {address}: only loopback is allowed in tests")
        return real(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A migrated database, the template of this process's test database (and of a fresh clone after a test
    changed the schema)."""
    name = f"cwc_tpl_{os.getpid()}"
    with _admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_db_url(name))
    schema.upgrade(engine)
    engine.dispose()
    yield name
    with _admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_pool(template_db: str) -> Iterator[DatabasePool]:
    """This process's own clone of the template, reset after each test (tests/support/dbpool.py says how)."""
    pool = DatabasePool(PG_ADMIN_URL, template_db, f"cwc_t_{os.getpid()}")
    pool.create()
    yield pool
    pool.drop()


@pytest.fixture
def database_url(database_pool: DatabasePool) -> Iterator[str]:
    """A migrated database holding only what the migrations seed (real commits, threads and servers welcome);
    set back to that after the test (its connections ended), or cloned again if the test changed the schema."""
    yield database_pool.url
    database_pool.reset()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the test's own database; commits are real (the app in the test sees them)."""
    s = make_session_factory(engine)()
    yield s
    s.close()


@pytest.fixture
def tx_session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction rolled back at the end (service tests)."""
    with engine.connect() as conn:
        outer = conn.begin()
        factory = make_session_factory(engine)
        factory.configure(bind=conn, join_transaction_mode="create_savepoint")
        s = factory()
        yield s
        s.close()
        outer.rollback()


@pytest.fixture
def redis_url() -> str:
    parts = urlparse(REDIS_URL)
    if parts.scheme == "unix":
        return f"{REDIS_URL.split('?')[0]}?db={REDIS_TEST_DB}"
    return parts._replace(path=f"/{REDIS_TEST_DB}").geturl()


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_lib.Redis]:
    """Real Redis on the tests' own DB number, flushed before and after."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        client.ping()
    except redis_lib.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {redis_url}: run the tests with `make test`. ({exc})", pytrace=False)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(database_url: str, redis_url: str, redis: redis_lib.Redis) -> Settings:
    return Settings(
        env="test",
        secret_key="test-secret-" + "x" * 40,
        base_url="http://localhost",
        database_url=database_url,
        redis_url=redis_url,
        log_json=False,
        log_level="WARNING",
    )


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    from lti_app import create_app

    application = retrying(lambda: create_app(settings))  # CPython 3.11 bug: tests/support/cpython_ast.py
    application.config["TESTING"] = True
    yield application
    application.extensions["cwc"].engine.dispose()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def platform() -> Iterator[TestPlatform]:
    """A Canvas-shaped platform served over HTTP."""
    p = TestPlatform(shape="canvas").serve()
    yield p
    p.stop()


@pytest.fixture
def canvas(session: Session, platform: TestPlatform) -> TestPlatform:
    """The Canvas-shaped platform, registered in the tool with its deployment approved."""
    register(session, platform)
    return platform


@pytest.fixture
def moodle() -> Iterator[TestPlatform]:
    """A Moodle-shaped platform (issuer = site URL, aud as a list, 60 s tokens, POSTed login)."""
    p = TestPlatform(shape="moodle", client_id="moodle-client-7", deployment_id="3").serve()
    yield p
    p.stop()


def count_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# --- simulated AWS: one moto server on loopback, reset before each test; the real AwsBackend on it ---


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    serialize_subnet_ips()  # moto's subnet IP generator is not thread-safe; EC2 is
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    # 60 s: on a loaded machine the reset (in this process's moto thread) took more than 10 s
    requests.post(f"{moto_url}/moto-api/reset", timeout=60).raise_for_status()
    return moto_url


class CallCounter:
    """Counts EC2 API calls by operation name (botocore event hook)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model, **_: object) -> None:  # type: ignore[no-untyped-def]
        self.calls[model.name] += 1

    def mutating(self) -> int:
        from provisioning.aws import MUTATING

        return sum(n for op, n in self.calls.items() if op in MUTATING)


def _test_backend(endpoint_url: str) -> AwsBackend:
    return AwsBackend(
        boto_session(),  # a new session on the process's parsed service models, as the app builds its backends
        region="us-east-1",
        bucket="cwc-test",
        instance_profile="cwc-workspace",
        endpoint_url=endpoint_url,
        max_attempts=4,
        image_parameter_prefix=SIMULATED_IMAGE_PREFIX,
    )


@pytest.fixture(scope="session")
def aws_seeder(moto_url: str) -> AwsBackend:
    """The backend that seeds the simulated account after each reset, one per process: its four clients are made
    once, not once per test (60–90 ms of CPU each time; a test's own backend makes only the clients it uses)."""
    return _test_backend(moto_url)


@pytest.fixture
def backend(aws_env: str, aws_seeder: AwsBackend) -> AwsBackend:
    """The real AwsBackend on a freshly reset and seeded simulated account, with clients of its own."""
    seed_simulated_aws(aws_seeder)
    return _test_backend(aws_env)


@pytest.fixture
def ec2_calls(backend: AwsBackend) -> CallCounter:
    counter = CallCounter()
    backend.ec2.meta.events.register("before-call.ec2.*", counter)
    return counter
