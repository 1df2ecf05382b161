"""The process-wide compiled-template cache (lti_app/template_cache.py): one compile per template source, shared by
every environment (app) of the process, and a new compile when the source changes."""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment

from lti_app.template_cache import MemoryBytecodeCache


def test_a_template_is_compiled_once_per_source_and_again_when_it_changes() -> None:
    cache = MemoryBytecodeCache()
    sources = {"page.html": "Hello {{ name }}"}
    compiled: list[str] = []

    def new_environment() -> Environment:
        env = Environment(loader=DictLoader(sources), bytecode_cache=cache)
        real = env.compile

        def counting(source: str, *args: Any, **kwargs: Any) -> Any:
            compiled.append(source)
            return real(source, *args, **kwargs)

        env.compile = counting  # type: ignore[method-assign]
        return env

    assert new_environment().get_template("page.html").render(name="Emily") == "Hello Emily"
    assert new_environment().get_template("page.html").render(name="David") == "Hello David"
    assert compiled == ["Hello {{ name }}"]  # the second app reused the first one's code
    sources["page.html"] = "Bye {{ name }}"
    assert new_environment().get_template("page.html").render(name="Emily") == "Bye Emily"
    assert compiled == ["Hello {{ name }}", "Bye {{ name }}"]
    cache.clear()
    assert new_environment().get_template("page.html").render(name="Sophie") == "Bye Sophie"
    assert len(compiled) == 3
