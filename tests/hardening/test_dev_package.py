"""Issue 14: a production app loads nothing from the `dev` package, and the Demo LMS and /dev/mail answer 404 there.

The app is built in a child process (a fresh interpreter, so nothing the test session imported can hide an import)
with production settings read from the environment, exactly as gunicorn's `wsgi:app` builds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PATHS = ("/demo-lms/", "/demo-lms/jwks", "/demo-lms/.well-known/openid-configuration", "/demo-lms/course",
         "/demo-lms/register", "/dev/mail")  # fmt: skip
CHILD = """
import importlib.util, json, sys
from lti_app import create_app
assert importlib.util.find_spec("dev") is not None, "the dev package must be importable, or the check proves nothing"
app = create_app()
client = app.test_client()
statuses = {path: client.get(path).status_code for path in PATHS}
statuses["POST /demo-lms/register"] = client.post("/demo-lms/register", json={}).status_code
rules = [r.rule for r in app.url_map.iter_rules() if r.rule.startswith(("/demo-lms", "/dev/"))]
loaded = sorted(name for name in sys.modules if name == "dev" or name.startswith("dev."))
heavy = sorted(name for name in ("copydetect", "numpy", "matplotlib", "reportlab", "nbformat") if name in sys.modules)
print(json.dumps({"loaded": loaded, "rules": rules, "statuses": statuses, "heavy": heavy}))
"""


def _production_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CWC_")}
    env.update({
        "CWC_ENV": "production",
        "CWC_SECRET_KEY": "production-secret-" + "y" * 40,
        "CWC_BASE_URL": "https://tool.example",
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "CWC_LOG_LEVEL": "WARNING",
    })  # fmt: skip
    return env


def _demo_rows(engine: Engine) -> int:
    tables = ("demo_keys", "demo_courses", "demo_members", "demo_tools", "demo_registration_tokens")
    with engine.connect() as conn:
        return sum(int(conn.scalar(text(f"SELECT count(*) FROM {t}")) or 0) for t in tables)


def test_production_app_imports_no_dev_module_and_dev_routes_404(settings: Settings, engine: Engine) -> None:
    code = f"PATHS = {PATHS!r}\n" + CHILD
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_production_env(settings),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], f"production imported {report['loaded']}"
    assert report["heavy"] == [], "copydetect (numpy, matplotlib), reportlab, nbformat load when used, not with the app"
    assert report["rules"] == []
    assert report["statuses"] == {**{path: 404 for path in PATHS}, "POST /demo-lms/register": 404}
    assert _demo_rows(engine) == 0, "a refused dev route wrote nothing"


def test_development_app_loads_the_dev_package_only_through_dev_web(settings: Settings) -> None:
    """The contrast that makes the check above mean something: in development the same code path loads `dev`."""
    env = _production_env(settings) | {
        "CWC_ENV": "development",
        "CWC_DEMO_LMS": "1",
        "CWC_BASE_URL": "http://127.0.0.1",
    }
    code = f"PATHS = {PATHS!r}\n" + CHILD
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"dev", "dev.web", "dev.mail", "dev.demo_lms"} <= set(report["loaded"])
    assert "/dev/mail" in report["rules"] and "/demo-lms/" in report["rules"]
