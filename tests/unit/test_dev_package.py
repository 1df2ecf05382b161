"""Issue 14: the product packages never import the `dev` package, save the app factory's one guarded import."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.cpython_ast import parse

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("lti_app", "classroom", "provisioning", "lms_sync", "config")
FACTORY = "lti_app/__init__.py"


def _dev_imports(tree: ast.AST) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == "dev" or name.startswith("dev.") for name in names):
            found.append(node)
    return found


def _guarded_by_dev_tools_allowed(tree: ast.AST, target: ast.stmt) -> bool:
    """True when `target` sits in the body of an `if ...dev_tools_allowed:` (not in its else)."""
    for node in ast.walk(tree):
        in_branch = isinstance(node, ast.If) and "dev_tools_allowed" in ast.unparse(node.test)
        if in_branch and any(target is inner for stmt in node.body for inner in ast.walk(stmt)):
            return True
    return False


def test_no_product_module_imports_the_dev_package() -> None:
    offenders = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = parse(path.read_text(), rel)
            for node in _dev_imports(tree):
                if rel == FACTORY and _guarded_by_dev_tools_allowed(tree, node):
                    continue
                offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == [], "the product imports dev tools:\n" + "\n".join(offenders)


def test_the_factory_imports_dev_once_and_only_under_dev_tools_allowed() -> None:
    tree = parse((ROOT / FACTORY).read_text(), FACTORY)
    imports = _dev_imports(tree)
    assert [ast.unparse(node) for node in imports] == ["from dev.web import register_dev_blueprints"]
    assert _guarded_by_dev_tools_allowed(tree, imports[0])


def test_the_guard_finds_an_unguarded_import() -> None:
    """The check itself can fail: an import outside the branch, or in its else, is reported."""
    tree = parse("import dev.tls\nif cfg.dev_tools_allowed:\n    pass\nelse:\n    from dev import web\n")
    imports = _dev_imports(tree)
    assert len(imports) == 2 and not any(_guarded_by_dev_tools_allowed(tree, node) for node in imports)
