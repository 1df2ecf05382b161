"""Issue 13: every route in the app's url_map, for every role, fed hostile values, never answers 5xx and a
refusal (4xx) never leaves a partial write.

The route list comes from `app.url_map` and each route's parameter names from its view module's source
(`.get("name")` calls), so a new route or field is covered without editing this test.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import select, text
from werkzeug.routing import AnyConverter, IntegerConverter, Rule

from classroom.models import Enrollment, Person
from classroom.roles import StaffLevel
from tests.support.apps import app_on_simulated_aws
from tests.support.budget import ensure_policies
from tests.support.lti import launch, tool_token

ROLES = ("anonymous", "student", "ta", "head_ta", "instructor")
METHODS = ("GET", "POST", "PUT", "DELETE")
EXAMPLES_PER_ROUTE_AND_ROLE = 2

HOSTILE_IDS = ["2147483648", "9223372036854775808", "-1", "0", "1", "99999999999999999999999", "1e3", "%00"]
HOSTILE_TEXT = [
    "\x00",
    "a\x00b",
    "Infinity",
    "NaN",
    "-Infinity",
    "1e400",
    "9223372036854775808",
    "-1",
    "x" * 5000,
    "数据集X.csv",
    "../../etc/passwd",
    "＝1+1",
    "<script>alert(1)</script>",
    "",
    " ",
    "\u202e\ufeff",
    "9999-12-31T23:59-12:00",
    "0001-01-01T00:00+14:00",
]
HOSTILE_JSON = [
    "Infinity",
    "-Infinity",
    "NaN",
    "1e400",
    "2147483648",
    "9223372036854775808",
    "-1",
    "null",
    "true",
    "[]",
    "{}",
    json.dumps("\x00"),
    json.dumps("x" * 5000),
    json.dumps("数据"),
]
FIELD_CALL = re.compile(r"""\.get\(\s*["']([A-Za-z_][\w-]{0,40})["']""")


PROJECT = ("lti_app", "classroom", "provisioning", "lms_sync")


def _modules(view) -> list[object]:  # type: ignore[no-untyped-def]
    """The view's module and the project modules it imports from (where its parsing may live)."""
    home = sys.modules.get(getattr(view, "__module__", "") or "")
    if home is None:
        return []
    found = {home.__name__: home}
    for value in vars(home).values():
        name = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if isinstance(name, str) and name.startswith(PROJECT) and name in sys.modules:
            found.setdefault(name, sys.modules[name])
    return list(found.values())


def _field_names(app, rule: Rule) -> list[str]:  # type: ignore[no-untyped-def]
    """Every `.get("name")` and pydantic field in the view's modules: the form, query and JSON fields it reads."""
    names: set[str] = set()
    for module in _modules(app.view_functions[rule.endpoint]):
        with contextlib.suppress(OSError, TypeError):
            names |= set(FIELD_CALL.findall(inspect.getsource(module)))  # type: ignore[arg-type]
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                names |= set(value.model_fields)
    return sorted(names - {"t", "csrf_token"})


def _path_values(rule: Rule) -> st.SearchStrategy[dict[str, str]]:
    parts: dict[str, st.SearchStrategy[str]] = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            parts[name] = st.sampled_from(sorted(converter.items))
        elif isinstance(converter, IntegerConverter):
            parts[name] = st.sampled_from(HOSTILE_IDS)
        else:
            parts[name] = st.sampled_from(HOSTILE_TEXT[:-2]).map(lambda s: quote(s[:200], safe=""))
    return st.fixed_dictionaries(parts)


def _url(rule: Rule, values: dict[str, str]) -> str:
    url = rule.rule
    for name, value in values.items():
        url = re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + r">", value or "x", url)
    return url


@pytest.fixture
def count_all(engine) -> Iterator[Callable[[], dict[str, int]]]:  # type: ignore[no-untyped-def]
    """Read the row count of every table: one statement on one autocommit connection (each reading sees all that
    was committed before it); the table list is read once (no request creates a table)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        tables = (
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
            .scalars()
            .all()
        )
        query = text("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))
        yield lambda: dict(zip(tables, conn.execute(query).one(), strict=True))


@pytest.fixture
def app(settings, backend):  # type: ignore[no-untyped-def]
    yield from app_on_simulated_aws(settings, backend, demo_lms=True)


@pytest.fixture
def tokens(client, canvas, session) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A tool token per role: student, read-only TA, head TA, instructor (owner); none for anonymous."""
    found = {
        "instructor": tool_token(launch(client, canvas, canvas.user("instructor"))),
        "student": tool_token(launch(client, canvas, canvas.user("student"))),
        "ta": tool_token(launch(client, canvas, canvas.user("ta", 1))),
        "head_ta": tool_token(launch(client, canvas, canvas.user("ta", 2))),
    }
    ensure_policies(session)
    head = session.scalar(select(Enrollment).join(Person).where(Person.sub == "ta-2"))
    head.level = StaffLevel.HEAD_TA
    session.commit()
    return found


def _routes(app) -> Iterator[tuple[Rule, str]]:  # type: ignore[no-untyped-def]
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in METHODS:
            if method in (rule.methods or ()):
                yield rule, method


def test_no_route_answers_5xx_or_writes_on_refusal(app, client, tokens, count_all):  # type: ignore[no-untyped-def]
    from lti_app.auth import csrf_token

    with app.app_context():
        csrf = {role: csrf_token(token) for role, token in tokens.items()}
    routes = list(_routes(app))
    assert len(routes) > 60  # the whole url_map, Demo LMS and dev pages included
    failures: list[str] = []
    # The counts read after the last refusal, while nothing has run since but this thread's example generation:
    # they are the next request's "before". After any other answer (which may have written) it reads its own.
    last_refusal: dict[str, int] | None = None

    def check(rule: Rule, method: str) -> None:
        fields = _field_names(app, rule)

        @settings(
            max_examples=EXAMPLES_PER_ROUTE_AND_ROLE * len(ROLES),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            role=st.sampled_from(ROLES),
            path=_path_values(rule),
            values=st.fixed_dictionaries({}, optional={f: st.sampled_from(HOSTILE_TEXT) for f in fields or ["q"]}),
            raw_json=st.fixed_dictionaries({}, optional={f: st.sampled_from(HOSTILE_JSON) for f in fields or ["q"]}),
            as_json=st.booleans(),
        )
        def probe(role, path, values, raw_json, as_json):  # type: ignore[no-untyped-def]
            nonlocal last_refusal
            auth = {"t": tokens[role], "csrf_token": csrf[role]} if role != "anonymous" else {}
            url = _url(rule, path)
            before, last_refusal = last_refusal or count_all(), None
            if method == "GET" or not as_json:
                query = {**auth, **values} if method == "GET" else auth
                form = {**auth, **values} if method != "GET" else None
                resp = client.open(url, method=method, query_string=query, data=form)
            else:
                body = "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in raw_json.items()) + "}"
                resp = client.open(
                    url,
                    method=method,
                    query_string=auth,
                    data=body,
                    content_type="application/json",
                    headers={"Authorization": "Bearer not-a-token"},
                )
            where = f"{method} {url} as {role} ({sorted(values) or sorted(raw_json)})"
            if resp.status_code >= 500 and not (rule.rule == "/healthz" and resp.status_code == 503):
                # /healthz answering 503 is its meaning (no enforcement worker runs in this test), not an error
                failures.append(f"{resp.status_code} {where}")
            elif 400 <= resp.status_code < 500:
                after = last_refusal = count_all()
                changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
                if changed:
                    failures.append(f"{resp.status_code} wrote {changed}: {where}")

        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - collect every route's failure, then report them all
            failures.append(f"{method} {rule.rule}: {type(exc).__name__}: {str(exc)[:300]}")

    for rule, method in routes:
        check(rule, method)
    assert not failures, "\n".join(failures[:40])
