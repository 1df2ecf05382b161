"""A test process's own migrated database, reused from test to test and reset to the template's contents.

Cloning the template for every test (CREATE DATABASE … TEMPLATE, then DROP … WITH (FORCE)) cost 0.5–6 s a test on a
loaded machine: both copy or unlink every file of the database and wait for a checkpoint-sized write. Here each
pytest process (each xdist worker) clones the template once and, after each test:

1. ends every connection still open on the database (an app engine, a server thread, a runtime the test left);
2. compares a fingerprint of the schema (tables, columns, defaults, constraints, triggers and whether they are
   enabled, functions, types, enum labels, schemas, extensions, database settings) with a fresh clone's: a test that
   migrated, altered or dropped anything gets a fresh clone instead of a reset, so no schema change leaks on;
3. deletes the rows of every table that holds one, with the append-only and foreign-key triggers out of the way
   (`session_replication_role = replica`, which a superuser may set for its own transaction only), puts back the
   rows the migrations seed (alembic_version, the audit chain's head; read once from a fresh clone) and sets every
   sequence back to a fresh clone's value. DELETE, not TRUNCATE: TRUNCATE makes new files for each table and each
   of its indexes, 0.4–0.8 s a reset against 0.04–0.3 s on the loaded machine (load average 12).

Commits stay real: the app, servers and threads of a test see each other's data exactly as on a fresh clone, and
the next test starts from the same rows and the same ids a fresh clone would give it. A reset that fails for any
other reason falls back to a fresh clone too (`clones` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

import psycopg
from psycopg import sql

# The schemas a migration or a test may create objects in (not the catalogs, not a session's temporary schema).
USER_NS = """(SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema')
   AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%')"""
# Everything DDL can change in the schema a test sees; oids change when an object is dropped and made again.
FINGERPRINT = f"""
SELECT md5(concat_ws('|',
  (SELECT string_agg(c.oid::text || c.relname::text || c.relkind::text, ',' ORDER BY c.oid)
     FROM pg_class c WHERE c.relnamespace IN {USER_NS}),
  (SELECT string_agg(a.attrelid::text || a.attname::text || a.atttypid::text || a.attnotnull::text
                     || a.atthasdef::text || a.attisdropped::text, ',' ORDER BY a.attrelid, a.attnum)
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace IN {USER_NS} AND a.attnum > 0),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_attrdef),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_constraint WHERE connamespace IN {USER_NS}),
  (SELECT string_agg(t.oid::text || t.tgenabled::text, ',' ORDER BY t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal),
  (SELECT string_agg(oid::text || md5(prosrc), ',' ORDER BY oid) FROM pg_proc
    WHERE pronamespace IN {USER_NS}),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_type WHERE typnamespace IN {USER_NS}),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_enum),
  (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE oid IN {USER_NS}),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_extension),
  (SELECT string_agg(array_to_string(setconfig, ';'), ',') FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
))
"""
TABLES = f"""
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.oid IN {USER_NS} ORDER BY 1
"""
SEQUENCES = f"""
SELECT format('%I.%I', schemaname, sequencename), last_value, start_value
  FROM pg_sequences WHERE schemaname IN (SELECT nspname FROM pg_namespace WHERE oid IN {USER_NS}) ORDER BY 1
"""


def db_url(admin_url: str, name: str) -> str:
    """The admin URL pointed at database `name`."""
    return urlparse(admin_url)._replace(path="/" + name).geturl()


@dataclass
class Snapshot:
    """What a fresh clone of the template holds: its schema fingerprint, seeded rows and sequence values."""

    fingerprint: str
    tables: list[str]
    seeds: dict[str, bytes] = field(default_factory=dict)  # table -> COPY … (FORMAT binary) of its rows
    sequences: dict[str, tuple[int | None, int]] = field(default_factory=dict)  # name -> (last_value, start)

    @classmethod
    def read(cls, conn: psycopg.Connection) -> Snapshot:
        """Read the snapshot from a connection to the template (or a fresh clone of it)."""
        fingerprint = str(conn.execute(FINGERPRINT).fetchone()[0])  # type: ignore[index]
        tables = [str(r[0]) for r in conn.execute(TABLES)]
        snap = cls(fingerprint, tables)
        for table in _non_empty(conn, tables):
            data = bytearray()
            query = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.SQL(table))
            with conn.cursor().copy(query) as copy:
                for chunk in copy:
                    data += chunk
            snap.seeds[table] = bytes(data)
        snap.sequences = {str(n): (last, int(start)) for n, last, start in conn.execute(SEQUENCES)}
        return snap


def _non_empty(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """The tables holding at least one row (one statement)."""
    if not tables:
        return []
    probes = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {name} WHERE EXISTS (SELECT 1 FROM {table})").format(name=sql.Literal(t), table=sql.SQL(t))
        for t in tables
    )
    return [str(r[0]) for r in conn.execute(probes)]


class DatabasePool:
    """One reusable database per test process, cloned from `template` and reset after each test."""

    def __init__(self, admin_url: str, template: str, name: str) -> None:
        self.admin_url = admin_url
        self.template = template
        self.name = name
        self.snapshot: Snapshot | None = None
        self.resets = 0
        self.clones = 0

    @property
    def url(self) -> str:
        return db_url(self.admin_url, self.name)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)

    def create(self) -> None:
        """(Re)make the database as a fresh clone of the template."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(self.name), sql.Identifier(self.template)
                )
            )
            # Commits stay real (every connection sees them at once); only the wait for their WAL record to reach
            # the disk is skipped, 1.5–6 ms a commit on this shared machine against 0.2 ms. A crash of the server
            # could lose the last commits of a database that is thrown away anyway.
            conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(self.name)))
        self.clones += 1
        if self.snapshot is None:
            with psycopg.connect(self.url, autocommit=True) as conn:
                self.snapshot = Snapshot.read(conn)

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))

    def reset(self) -> None:
        """Bring the database back to the template's contents; a fresh clone if the schema changed."""
        assert self.snapshot is not None, "create() first"
        with self._admin() as conn:  # the test's leftovers: engines not disposed, threads, servers
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                if str(conn.execute(FINGERPRINT).fetchone()[0]) != self.snapshot.fingerprint:  # type: ignore[index]
                    raise _SchemaChanged
                self._restore_rows(conn, self.snapshot)
        except (_SchemaChanged, psycopg.Error):
            self.create()
            return
        self.resets += 1

    @staticmethod
    def _restore_rows(conn: psycopg.Connection, snap: Snapshot) -> None:
        dirty = sorted(set(_non_empty(conn, snap.tables)) | set(snap.seeds))
        current = {str(n): last for n, last, _ in conn.execute(SEQUENCES)}
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # append-only triggers, FK checks
            for table in dirty:
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.SQL(table)))
            for table, data in snap.seeds.items():
                query = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.SQL(table))
                with conn.cursor().copy(query) as copy:
                    copy.write(data)
            for name, (last, start) in snap.sequences.items():
                if current.get(name) != last:
                    value, called = (last, True) if last is not None else (start, False)
                    conn.execute("SELECT setval(%s::regclass, %s, %s)", (name, value, called))


class _SchemaChanged(Exception):
    """The test changed the schema: the database is made again from the template."""
