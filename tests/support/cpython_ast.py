"""A workaround for a CPython 3.11 bug the suite meets under pytest-xdist: "SystemError: AST constructor recursion
depth mismatch" (python/cpython#106905, fixed in 3.12). The AST constructor's depth counter is shared by threads, so
a parse (ours, or werkzeug compiling a URL rule inside create_app) can fail spuriously while another thread of the
test process builds an AST. The result of a retry is the same parse, so retrying hides nothing the test checks."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
MISMATCH = "AST constructor recursion depth mismatch"


def retrying(build: Callable[[], T], attempts: int = 3) -> T:
    """`build()`, again (up to `attempts` times in all) when it fails with the 3.11 depth-mismatch SystemError only."""
    for attempt in range(attempts):
        try:
            return build()
        except SystemError as exc:
            if MISMATCH not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """ast.parse, retried on the 3.11 depth-mismatch SystemError."""
    return retrying(lambda: ast.parse(source, filename))
