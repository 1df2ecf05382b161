"""Compiled templates shared by every app a process builds.

Jinja compiles a template to Python the first time an Environment loads it, and each Flask app has its own
Environment: a process that builds many apps (the test suite builds one per web test; 992 compiles, 8.1 s of an
82.6 s cProfile run of 119 web tests) compiled the same templates again and again. Jinja's bytecode cache keeps
the compiled code keyed by template name and checked against a checksum of the source, so a changed template is
compiled anew (TEMPLATES_AUTO_RELOAD still applies). This one keeps it in the process's memory; a production
process builds one app, for which nothing changes.
"""

from __future__ import annotations

from jinja2.bccache import Bucket, BytecodeCache


class MemoryBytecodeCache(BytecodeCache):
    """Jinja's bytecode cache in a dict (a bucket's key is the template's name and file; its checksum is the
    source's, checked by Jinja on load)."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self._store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()

    def clear(self) -> None:
        self._store.clear()

    def __len__(self) -> int:
        return len(self._store)


COMPILED_TEMPLATES = MemoryBytecodeCache()
