"""One small SQL surface over the library's SQLite and PostgreSQL datastores.

Read models, API tokens and the audit chain keep tables next to the events, in
the same database and through the same connection pools as the library's
recorders. Their SQL is written once, in the common subset of both dialects,
with `?` placeholders (translated for psycopg) and table names qualified by
`Tx.table` (PostgreSQL schema).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from eventsourcing.persistence import Recorder
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Composable, Identifier
from psycopg.sql import Literal as SQLLiteral

Dialect = Literal["sqlite", "postgres"]
Row = dict[str, Any]

_PLACEHOLDER = re.compile(r"\?")
#: Prepared statements kept per connection in pipelined batches.
PREPARED_MAX = 1000
#: What a text column cannot hold: NUL (PostgreSQL refuses it) and lone UTF-16
#: surrogates (neither database can encode them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable(value: Any) -> Any:
    """`value`, with any character no text column can hold replaced by U+FFFD.

    The event store keeps every event exactly (as bytes); the tables beside it
    (read models, tokens) store text. The API refuses such characters, but an
    event written before it did, or by another writer, must not stop a read
    model: a rebuild always completes, on both databases alike.
    """
    if isinstance(value, str) and _UNSTORABLE.search(value) is not None:
        return _UNSTORABLE.sub(REPLACEMENT, value)
    return value


class Tx:
    """A cursor in an open transaction, speaking `?` placeholders on both dialects."""

    def __init__(
        self,
        cursor: Any,
        dialect: Dialect,
        schema: str,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.schema = schema
        #: PostgreSQL settings the transaction was opened with (`SET LOCAL`), so a
        #: query that needs one can tell it is already in force.
        self.settings: Mapping[str, str] = settings or {}
        #: Whether a statement that may write was sent (`execute`, `executemany`,
        #: `copy_rows`; `query` and `scalar` are reads): a read-only snapshot
        #: that wrote nothing ends with COMMIT (`Database.snapshot`).
        self.wrote = False
        #: Opened by `Database.snapshot`: its last read may end it (`query_last`).
        self.snapshot = False

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """On PostgreSQL, send statements without waiting for each answer (psycopg's
        pipeline mode): a batch of handler writes costs about one round trip. A
        statement that returns rows still waits for its answer."""
        if self.dialect == "postgres":
            connection = self.cursor.connection
            # psycopg prepares a statement on its 5th use and keeps 100 per
            # connection: a batch fed to five read models uses more than 100
            # distinct statements, which would then be prepared and evicted
            # over and over.
            connection.prepared_max = max(connection.prepared_max or 0, PREPARED_MAX)
            with connection.pipeline():
                yield
        else:
            yield

    def table(self, name: str) -> str:
        if self.dialect == "postgres":
            return _postgres_table(self.schema, name)
        return name

    def _sql(self, statement: str) -> str:
        if self.dialect == "postgres":
            return postgres_sql(statement)
        return statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.wrote = True
        self.cursor.execute(self._sql(statement), _storable_params(params))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self.wrote = True
        if rows:
            # As in `copy_rows`: the rows as they are unless some text needs
            # replacing (almost never), found by one scan, not a call per value.
            if _has_unstorable(_text_of(rows)):
                rows = [tuple(map(storable, r)) for r in rows]
            self.cursor.executemany(self._sql(statement), rows)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Bulk-load rows: PostgreSQL's `COPY` (not in pipeline mode), else one
        `executemany` insert."""
        self.wrote = True
        if not rows:
            return
        if self.dialect == "postgres":
            # One search over all the rows' text (joined by a character that
            # is storable) instead of a call per value: the rows are written
            # as they are unless some text needs replacing (almost never).
            if _has_unstorable(_text_of(rows)):
                rows = [tuple(map(storable, row)) for row in rows]
            with self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" for _ in columns)
        self.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def fetchone(self) -> Row | None:
        row = self.cursor.fetchone()
        return None if row is None else _as_dict(row)

    def fetchall(self) -> list[Row]:
        return _as_dicts(self.cursor.fetchall())

    def _reading_cursor(self) -> Any:
        """On PostgreSQL a cursor of its own for a statement whose rows are read:
        in pipeline mode, a cursor that ran an `executemany` can hand a later
        fetch that statement's status instead of the rows."""
        if self.dialect == "postgres":
            return self.cursor.connection.cursor()
        return self.cursor

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._reading_cursor()
        cursor.execute(self._sql(statement), _storable_params(params))
        return _as_dicts(cursor.fetchall())

    def query_last(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """`query`, the last statement of a read-only snapshot (`Database.snapshot`,
        nothing written): on PostgreSQL sent with the `COMMIT` that ends it, in
        one round trip (psycopg's pipeline: one Sync for both), not one round
        trip for the rows and one for the `COMMIT`. Anything read after it is
        read in a transaction of its own."""
        if self.dialect != "postgres" or not self.snapshot or self.wrote:
            return self.query(statement, params)
        connection = self.cursor.connection
        cursor = connection.cursor()
        with connection.pipeline():
            cursor.execute(self._sql(statement), _storable_params(params))
            connection.execute("COMMIT")
        return _as_dicts(cursor.fetchall())

    def scalar(self, statement: str, params: Sequence[Any] = ()) -> Any:
        cursor = self._reading_cursor()
        cursor.execute(self._sql(statement), _storable_params(params))
        row = cursor.fetchone()
        if row is None:
            return None
        return row[0] if self.dialect == "sqlite" else next(iter(dict(row).values()))


def _as_dict(row: Any) -> Row:
    """A fetched row as a dict of its own: psycopg's rows (the library's
    connections make them with `dict_row`) are already fresh dicts, kept as
    they are; SQLite's `Row`s are copied."""
    return row if type(row) is dict else dict(row)


def _as_dicts(rows: list[Any]) -> list[Row]:
    if rows and type(rows[0]) is dict:
        return rows  # every row of one result has the same type
    return [dict(r) for r in rows]


def _text_of(rows: Sequence[Sequence[Any]]) -> str:
    """All the text values of `rows`, joined by a newline (a storable character).

    Column by column: a column of text (and NULLs) is joined in one C call,
    which refuses a column holding anything else at its first such value; only
    then is the column sorted value by value."""
    parts: list[str] = []
    for column in zip(*rows, strict=True):
        try:
            parts.append("\n".join(filter(None, column)))
        except TypeError:
            parts.append("\n".join([v for v in column if isinstance(v, str)]))
    return "\n".join(parts)


def _storable_params(params: Sequence[Any]) -> tuple[Any, ...]:
    """`tuple(map(storable, params))`: when every parameter is text (or NULL),
    as the keys of a batch's reads, one scan of their join, not a call each."""
    try:
        text = "\n".join(filter(None, params))
    except TypeError:
        return tuple(map(storable, params))
    if _has_unstorable(text):
        return tuple(map(storable, params))
    return tuple(params)


def _has_unstorable(text: str) -> bool:
    """Whether `text` holds a character no text column can hold: `_UNSTORABLE`'s
    search, by a scan for NUL (memchr) and, only in text that is not ASCII
    (CPython knows that without a scan), UTF-8 encoding, which fails exactly
    at a lone surrogate."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@functools.lru_cache(maxsize=4096)
def _postgres_table(schema: str, name: str) -> str:
    """`schema.name`, quoted (composed once: psycopg's quoting costs more than the
    query it names)."""
    return SQL("{}.{}").format(Identifier(schema), Identifier(name)).as_string(None)


@functools.lru_cache(maxsize=4096)
def postgres_sql(statement: str) -> str:
    """`?` placeholders as psycopg's `%s` (statements repeat: translated once)."""
    return _PLACEHOLDER.sub("%s", statement.replace("%", "%%"))


class Database:
    def __init__(self, recorder: Recorder) -> None:
        datastore = getattr(recorder, "datastore", None)
        if isinstance(datastore, SQLiteDatastore):
            self.dialect: Dialect = "sqlite"
            self.schema = ""
        elif isinstance(datastore, PostgresDatastore):
            self.dialect = "postgres"
            self.schema = datastore.schema
        else:  # pragma: no cover - the settings allow only these two
            raise TypeError(f"unsupported recorder {type(recorder).__name__}")
        self.datastore: SQLiteDatastore | PostgresDatastore = datastore

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Tx]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield Tx(cursor, self.dialect, self.schema)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """For one statement that only reads (`Tx.query`, `Tx.scalar`). On
        PostgreSQL outside a transaction (the pool's connections are in
        autocommit: the statement is its own snapshot), so no BEGIN and no
        ROLLBACK round trip, and the connection keeps its prepared statements
        (psycopg drops them all at a ROLLBACK: `DEALLOCATE ALL`, and each is
        parsed and planned again). On SQLite a read transaction."""
        if isinstance(self.datastore, PostgresDatastore):
            with self.datastore.get_connection() as conn:
                yield Tx(conn.cursor(), self.dialect, self.schema)
            return
        with self.transaction(commit=False) as tx:
            yield tx

    @contextmanager
    def snapshot(
        self, opening: Composable, settings: Mapping[str, str]
    ) -> Iterator[tuple[Tx, Any]]:
        """PostgreSQL: a read-only transaction whose `BEGIN`, `SET LOCAL settings`
        and `opening` (statements without parameters) go in one simple query,
        one round trip. Ended by COMMIT when nothing was written (`Tx.wrote`),
        else rolled back (a temporary view made for the read goes with it):
        psycopg drops the connection's prepared statements at a ROLLBACK, not
        at a COMMIT. (The library's `transaction` sends
        `BEGIN` on its own, and each `SET LOCAL` would be one more round trip:
        each is a wake-up of two processes, milliseconds on a busy machine.)
        Yields the transaction and the cursor, at `opening`'s first result."""
        assert isinstance(self.datastore, PostgresDatastore)
        statements: list[Composable] = [SQL("BEGIN")]
        statements += [
            SQL("SET LOCAL {} = {}").format(Identifier(key), SQLLiteral(value))
            for key, value in settings.items()
        ]
        with self.datastore.get_connection() as conn:
            cursor = conn.cursor()
            try:
                cursor.execute(SQL("; ").join([*statements, opening]))
                for _ in statements:
                    cursor.nextset()
                tx = Tx(cursor, self.dialect, self.schema, settings)
                tx.snapshot = True
                yield tx, cursor
                if not tx.wrote and conn.info.transaction_status == TransactionStatus.INTRANS:
                    conn.execute("COMMIT")
            finally:
                if conn.info.transaction_status in (
                    TransactionStatus.INTRANS,
                    TransactionStatus.INERROR,
                ):
                    conn.execute("ROLLBACK")

    def table(self, name: str) -> str:
        return Tx(None, self.dialect, self.schema).table(name)
