"""The PostgreSQL store: the SQLite store's units of work, queries and values, on a
psycopg 3 connection that speaks them in PostgreSQL's dialect (`Connection`).

One set of queries for both engines keeps them from drifting apart: the SQL of
storage/sqlite/ is plain except for a few SQLite spellings (`?` marks, `INSERT OR IGNORE`,
`INSERT OR REPLACE`, `BEGIN IMMEDIATE`, the implicit `rowid`), which `_translate` rewrites
once per distinct statement. The schema (schema.py) gives `items` a `rowid` column.

Several nodes write into one database (issue #18): each unit commits at its end (no
batches), sources are leased (leases.py), and a document's story decisions are taken one
at a time over every node (`lookups` takes an advisory lock held until its unit commits),
with the near-duplicate keys other nodes stored read in first (`_catch_up`).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aggregator.errors import StoreError
from aggregator.model import Item, Lookups
from aggregator.storage.postgres.leases import Leases, node_name
from aggregator.storage.postgres.schema import MIGRATIONS
from aggregator.storage.sqlite.store import Store as SqliteStore

if TYPE_CHECKING:
    from aggregator.storage.keyindex import KeyIndex

# the primary key an INSERT OR REPLACE of each table replaces on
_KEYS = {
    "meta": "key",
    "near_keys": "item",
    "tombstones": "key",
    "sources": "name",
    "leases": "source",
}
# the id an INSERT returns as `lastrowid`
_IDS = {"items": "rowid", "requests": "id"}
_INSERT = re.compile(r"^\s*INSERT\s+(?:OR\s+(IGNORE|REPLACE)\s+)?INTO\s+(\w+)\s*\(([^)]*)\)", re.I)
MIGRATION_LOCK = zlib.crc32(b"aggregator schema migration")  # pg_advisory_lock's key
STORIES = zlib.crc32(b"aggregator stories")  # held by the unit deciding a document's stories


def redact(url: str) -> str:
    """The connection URI without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> tuple[str, str | None]:
    """SQLite's spelling of a statement in PostgreSQL's, and the column its INSERT returns."""
    sql = sql.strip()
    if sql.upper() == "BEGIN IMMEDIATE":
        return "BEGIN", None
    returning = None
    insert = _INSERT.match(sql)
    if insert:
        verb, table, columns = insert.group(1), insert.group(2), insert.group(3)
        sql = sql[: insert.start()] + f"INSERT INTO {table}({columns})" + sql[insert.end() :]
        if verb and verb.upper() == "IGNORE":
            sql += " ON CONFLICT DO NOTHING"
        elif verb:
            key = _KEYS[table]
            rest = [c.strip() for c in columns.split(",") if c.strip() != key]
            sql += f" ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(
                f"{c} = EXCLUDED.{c}" for c in rest
            )
        if table in _IDS:
            returning = _IDS[table]
            sql += f" RETURNING {returning}"
    return sql.replace("%", "%%").replace("?", "%s"), returning


def _storable(params: Sequence[Any]) -> tuple[Any, ...]:
    """The values as PostgreSQL's text can hold them: without NUL characters, which a
    hostile feed may put in a guid or an author's name and SQLite keeps (an error here
    would make one bad field fail the whole pull)."""
    return tuple(v.replace("\x00", "") if isinstance(v, str) and "\x00" in v else v for v in params)


class Row:
    """A row read by index or by column name, as SQLite's rows are (the shared queries' rows)."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: dict[str, int]):
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key if isinstance(key, int) else self._names[key]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    names: dict[str, int] = {}
    for n, column in enumerate(cursor.description or ()):
        names.setdefault(column.name, n)  # "SELECT rowid, *": the first rowid
    return lambda values: Row(values, names)


class Cursor:
    """The result of one statement, fetched (psycopg's client-side cursor holds it all)."""

    def __init__(self, cursor: Any, returning: str | None):
        self._cursor = cursor
        self.lastrowid: int | None = None
        if returning is not None and cursor is not None:
            row = cursor.fetchone()
            self.lastrowid = int(row[0]) if row is not None else None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount) if self._cursor is not None else 0

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class Connection:
    """A psycopg connection in autocommit mode that runs the SQLite store's statements:
    transactions are the store's own BEGIN, SAVEPOINT and COMMIT, as on SQLite.

    A connection the server or the network dropped is made again at the next statement:
    the unit it broke failed (its statements raised, nothing of it is kept), and the
    daemon's next pull, commit or /healthz finds the database back once it is."""

    def __init__(self, raw: Any, url: str = ""):
        self.raw = raw
        self.url = url

    def _alive(self) -> Any:
        if self.raw.closed and self.url:
            self.raw = connect(self.url)
        return self.raw

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Cursor:
        query, returning = _translate(sql)
        if self.raw.closed and query.startswith(("ROLLBACK", "RELEASE")):
            return Cursor(None, None)  # the transaction died with its connection
        if self.raw.closed and query == "COMMIT":  # what it held is lost: never say stored
            raise StoreError("the connection to the database was lost before the commit")
        self._alive()
        cursor = self.raw.cursor(row_factory=_row_factory)
        if params:
            cursor.execute(query, _storable(params))
        else:
            cursor.execute(query.replace("%%", "%"))
        return Cursor(cursor, returning)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [_storable(r) for r in rows]
        self._alive()
        if rows:
            query, _ = _translate(sql)
            with self.raw.cursor() as cursor:
                cursor.executemany(query.split(" RETURNING ")[0], rows)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        if self.raw.closed:
            return False  # dropped: whatever was open is gone
        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    def close(self) -> None:
        self.raw.close()


def connect(url: str) -> Any:
    """A psycopg connection to `url`; StoreError (password hidden) when it cannot be made.
    libpq reads what the URI leaves out from the environment (PGPASSWORD, PGHOST...) and
    ~/.pgpass, so a password never has to be in the config file."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreError(f"cannot use database {redact(url)}: {reason}") from None


class Store(SqliteStore, Leases):
    """The store on PostgreSQL: SQLite's store (queries, units of work) on a `Connection`,
    with migrations of its own, leases, and story decisions serialised over every node."""

    def __init__(self, url: str):  # not SQLite's __init__, which opens a file
        import psycopg

        self.path = redact(url)  # type: ignore[assignment]  # what messages name
        self.url = url
        self.node = node_name()
        self._seen = 0  # the largest item rowid whose near-duplicate keys are indexed
        self._start()
        self.pg = Connection(connect(url), url)
        self.db = self.pg  # type: ignore[assignment]  # the shared queries' connection
        try:
            self._migrate()
        except psycopg.Error as exc:
            self.pg.close()
            raise StoreError(f"cannot use database {self.path}: {exc}") from None

    def _migrate(self) -> None:
        """Run the migrations this database lacks, each in a transaction under an advisory
        lock: nodes starting together wait for one another and migrate once."""
        version = self._version()
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema {version}, newer than this version knows "
                f"({len(MIGRATIONS)}): upgrade aggregator"
            )
        if version == len(MIGRATIONS):
            return
        # a session lock, taken outside any transaction: the version is then read in a new
        # one, which sees the tables another node's migration committed meanwhile (inside
        # the transaction that waited, the catalog may still say they do not exist)
        self.db.execute(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        try:
            with self.transaction():
                for number in range(self._version(), len(MIGRATIONS)):
                    self.pg.raw.execute(MIGRATIONS[number])
                    self.db.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)",
                        (str(number + 1),),
                    )
        finally:
            self.db.execute(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")

    def schema_version(self) -> int:
        return self._version()

    def size_bytes(self) -> int:
        return int(self.db.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def after_copy(self) -> None:
        """Rows copied with their ids: the sequences go on past the largest."""
        for table, column in (("items", "rowid"), ("requests", "id")):
            self.db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
            )

    def _version(self) -> int:
        exists = self.db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return int(row[0]) if row is not None else 0

    @contextmanager
    def batch(self, seconds: float = 1.0) -> Iterator[None]:
        """Each unit commits at its end: other nodes see a pull as soon as it is stored, and
        a unit's story lock and lease rows are held for that unit only (a batch held
        them for up to a second, with every other node's store step waiting)."""
        yield
        self.commit_pending()

    def lookups(self, items: list[Item]) -> Lookups:
        """One document's view, read under the story lock: no other node decides stories
        until this unit commits, and the index has the keys other nodes stored first.

        An advisory lock around the whole store step is simple and what it costs is
        measured (bench/pg_bench.py): one statement a pull, and pulls of several nodes
        store one at a time (storing is ~a third of a pull's CPU)."""
        self.db.execute(f"SELECT pg_advisory_xact_lock({STORIES})")
        self._catch_up()
        return super().lookups(items)

    def _near_index(self) -> KeyIndex:
        if self._near is None:
            from aggregator.storage.keyindex import KeyIndex

            rows = self.db.execute("SELECT item, keys FROM near_keys ORDER BY item").fetchall()
            self._near = KeyIndex((int(r[0]), r[1]) for r in rows)
            self._seen = int(rows[-1][0]) if rows else 0
        return self._near

    def _catch_up(self) -> None:
        """Index the keys other nodes stored since this index last looked. Items are
        inserted under the story lock only, so rowids are committed in order: every item
        under `_seen` is indexed or was never committed."""
        if self._near is None:  # read whole when first needed
            return
        rows = self.db.execute(
            "SELECT item, keys FROM near_keys WHERE item > ? ORDER BY item", (self._seen,)
        ).fetchall()
        if rows:
            from aggregator.storage.keyindex import decode

            self._near.add((int(r[0]), decode(r[1]).tolist()) for r in rows)
            self._seen = int(rows[-1][0])

    def add_near_keys(self, rows: Iterable[tuple[int, Sequence[int]]]) -> None:
        rows = list(rows)
        super().add_near_keys(rows)
        if rows and self._near is not None:
            self._seen = max(self._seen, max(item for item, _ in rows))
