"""A read model's unit of work for one batch: the rows it touches, kept in memory
and written together at the end of the batch.

A handler that sends its own statements pays for each (a rebuild of a million
events sent tens of thousands per view, each a round trip or at least a trip
through the driver). Instead a view loads, at the start of a batch, the rows the
batch's events will touch (one query per table: `prefetch`), changes them in
memory as the events come (`get`, `insert`, `update`), and writes the changed
ones at the end with one upsert per table (`flush`, `upsert_rows`: on
PostgreSQL one statement for all of them, on SQLite one `executemany`). Same
rows in the end as statement-by-statement, so a rebuild still equals the
incremental view.

In a pipeline (PostgreSQL) a prefetch's query is sent, not waited for
(`Pending`): its rows are read when the batch first asks for one, so the
queries of every view's `begin_batch` go out together and come back in one
round trip instead of one each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from fieldledger.application.database import Tx, postgres_sql, storable
from fieldledger.projections.read_model import Batch
from psycopg import pq
from psycopg.adapt import Transformer

try:  # psycopg's C row formatter has no public name: without it, `Tx.copy_rows`
    from psycopg._copy_base import format_row_text
except ImportError:  # pragma: no cover - a psycopg that moved it
    format_row_text = None

Row = dict[str, Any]

#: Keys per `IN (...)` list on SQLite (its limit on parameters is 999 in
#: older builds); PostgreSQL takes them all as one array.
IN_CHUNK = 500


class Pending:
    """The rows a query will answer: in a pipeline (PostgreSQL), the query is
    sent now and its rows read at `rows()`, so that queries sent one after
    the other are answered in one round trip (reading the first one's rows
    flushes the pipeline and collects every answer sent before it); anywhere
    else, read now. Rows as `Tx.query` returns them."""

    __slots__ = ("_cursor", "_rows")

    def __init__(self, tx: Tx, statement: str, params: Sequence[Any]) -> None:
        self._rows: list[Row] | None = None
        self._cursor: Any = None
        connection = getattr(tx.cursor, "connection", None) if tx.dialect == "postgres" else None
        if connection is not None and connection.pgconn.pipeline_status != pq.PipelineStatus.OFF:
            # A cursor of its own, as `Tx.query`'s (one that ran an
            # executemany can hand a fetch that statement's status); the
            # parameters are made storable by the caller.
            self._cursor = connection.cursor()
            self._cursor.execute(postgres_sql(statement), params)
        else:
            self._rows = tx.query(statement, params)

    @classmethod
    def read(cls, rows: list[Row]) -> Pending:
        """Rows already read."""
        pending = cls.__new__(cls)
        pending._rows, pending._cursor = rows, None
        return pending

    def rows(self) -> list[Row]:
        if self._rows is None:
            fetched = self._cursor.fetchall()
            self._rows = fetched if not fetched or type(fetched[0]) is dict else [
                dict(r) for r in fetched
            ]  # fmt: skip
            self._cursor = None
        return self._rows


def rows_with(tx: Tx, selected: str, table: str, column: str, keys: Sequence[Any]) -> Iterator[Row]:
    """`SELECT selected FROM table WHERE column IN keys`, read now."""
    pending = rows_pending(tx, selected, table, column, keys)
    if pending is not None:
        yield from pending.rows()


def rows_pending(
    tx: Tx, selected: str, table: str, column: str, keys: Sequence[Any]
) -> Pending | None:
    """`SELECT selected FROM table WHERE column IN keys`, sent now (in a
    pipeline, read later: `Pending`); None when there are no keys.

    On PostgreSQL as `column = ANY(?)` with the keys as one array parameter:
    the statement's text is the same however many keys a batch has, so
    psycopg converts it once and prepares it, and PostgreSQL plans it once
    (an `IN` list of one placeholder per key made a new statement of nearly
    every batch, parsed again on both sides). The keys are made storable as
    every parameter is (`Tx.query` does not look inside an array)."""
    if not keys:
        return None
    if tx.dialect == "postgres":
        try:
            text = "\n".join(keys)
        except TypeError:
            wanted = [storable(k) for k in keys]
        else:
            wanted = list(keys) if storable(text) is text else [storable(k) for k in keys]
        return Pending(tx, f"SELECT {selected} FROM {table} WHERE {column} = ANY(?)", (wanted,))
    found: list[Row] = []
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start : start + IN_CHUNK]
        found += tx.query(
            f"SELECT {selected} FROM {table} WHERE {column} IN ({', '.join('?' for _ in chunk)})",
            chunk,
        )
    return Pending.read(found)


def upsert_rows(
    tx: Tx,
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    rows: Sequence[Sequence[Any]],
    updated: Sequence[str] | None = None,
) -> None:
    """`INSERT INTO table (columns) VALUES ... ON CONFLICT (key) DO UPDATE SET`
    each of `updated` (default: every column not in the key) to the row's
    value, for `rows` (their values in column order, no two of one key), by
    `insert_rows`."""
    sets = ", ".join(
        f"{c} = excluded.{c}" for c in (updated if updated is not None else
                                        [c for c in columns if c not in key])
    )  # fmt: skip
    insert_rows(tx, table, columns, rows, f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")


def insert_rows(
    tx: Tx,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: str,
    alias: str = "",
) -> None:
    """`INSERT INTO table [AS alias] (columns) VALUES ... conflict` for `rows`
    (their values in column order; with an `ON CONFLICT DO UPDATE`, no two of
    one key).

    On PostgreSQL, more than one row goes as one statement whose one
    parameter is the rows as a JSON array (`json_populate_recordset`), not a
    statement per row: in a pipeline each row's statement cost PostgreSQL a
    bind and an execution of its own (in the live projector, about 1.6 such
    statements per event), and psycopg a trip through its executemany. Rows
    with a value JSON cannot carry (none of the views' today) go row by row
    as before."""
    if not rows:
        return
    names = ", ".join(columns)
    into = f"{table} AS {alias}" if alias else table
    if (
        tx.dialect == "postgres"
        and len(rows) > 1
        and _no_float_in_integers(tx, table, columns, rows)
        and (text := json_rows(columns, rows)) is not None
    ):
        # `Tx.execute` makes the text storable as every parameter (a lone
        # surrogate); `json_rows` has already replaced any NUL.
        tx.execute(
            f"INSERT INTO {into} ({names}) SELECT {names} "
            f"FROM json_populate_recordset(NULL::{table}, ?::json) {conflict}",
            (text,),
        )
        return
    tx.executemany(
        f"INSERT INTO {into} ({names}) VALUES ({', '.join('?' for _ in columns)}) {conflict}",
        rows,
    )


#: The integer columns of each table (a table's physical name is its
#: generation's: they never change), looked up once per process.
_INTEGER_COLUMNS: dict[str, frozenset[str]] = {}


def _no_float_in_integers(
    tx: Tx, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> bool:
    """Whether no row gives a float to an integer column: a parameter of its
    own is cast (rounded) to the column's type, a JSON number with a fraction
    is refused. (No view writes one today; should one, its rows go row by row
    as before, and its view does not stop.)"""
    integers = _INTEGER_COLUMNS.get(table)
    if integers is None:
        integers = _INTEGER_COLUMNS[table] = frozenset(
            str(r["attname"])
            for r in tx.query(
                "SELECT attname FROM pg_attribute WHERE attrelid = ?::regclass "
                "AND atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) "
                "AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
        )
    at = [i for i, c in enumerate(columns) if c in integers]
    return not any(type(row[i]) is float for row in rows for i in at)


def json_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, again: bool = True
) -> str | None:
    """The rows as a JSON array of objects by column, or None when a value is
    not JSON's (or a float JSON cannot write). NUL, which no text column
    holds and JSON writes as an escape PostgreSQL refuses, is replaced as
    `storable` does."""
    try:
        text = json.dumps(
            [dict(zip(columns, row, strict=True)) for row in rows],
            ensure_ascii=False, allow_nan=False, separators=(",", ":"),
        )  # fmt: skip
    except (TypeError, ValueError):
        return None
    if again and "\\u0000" in text:  # rare: once more, every text made storable
        return json_rows(columns, [tuple(map(storable, row)) for row in rows], again=False)
    return text


def copy_rows(tx: Tx, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Bulk-load rows new to a table (`Tx.copy_rows`): on PostgreSQL one
    `COPY`, its data formatted in full before it starts, by psycopg's row
    formatter (C), and sent in one write.

    That formatting is the check for text no column can hold: psycopg
    refuses a NUL (`DataError`) and cannot encode a lone surrogate
    (`UnicodeEncodeError`), before anything is sent; only then are the rows
    made storable (U+FFFD, as `storable` does) and formatted again. (`Tx.
    copy_rows` first joins every text value of the rows to scan them, then
    writes the rows one call each.)"""
    if not rows:
        return
    if tx.dialect != "postgres" or format_row_text is None:
        tx.copy_rows(table, columns, rows)
        return
    tx.wrote = True
    cursor = tx.cursor
    transformer = Transformer.from_context(cursor)
    data = bytearray()
    try:
        for row in rows:
            format_row_text(row, transformer, data)
    except (psycopg.DataError, UnicodeEncodeError):
        data = bytearray()
        for row in rows:
            format_row_text(tuple(map(storable, row)), transformer, data)
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(data)


class TableRows:
    """The rows of one table keyed by a one-column primary key, for one batch."""

    def __init__(
        self, tx: Tx, table: str, key: str, columns: Sequence[str], batch: Batch | None = None
    ) -> None:
        self.tx = tx
        self.table = table
        self.key = key
        self.columns = tuple(columns)
        #: Given, rows new to the table are appended through the batch (with
        #: `COPY` into a fresh generation) instead of upserted.
        self.batch = batch
        self._rows: dict[str, Row | None] = {}  # None: known to be absent
        self._stored: set[str] = set()  # keys of rows the table holds
        self._dirty: dict[str, None] = {}
        #: Prefetches sent and not yet read (`Pending`): read before any row
        #: is looked at.
        self._pending: list[Pending] = []

    def prefetch(self, keys: Iterable[str]) -> None:
        """Load the rows of these keys (those not yet known) in one query:
        sent now, read when a row is first asked for (`Pending`)."""
        wanted = sorted({k for k in keys if k not in self._rows})
        rows = self._rows
        for k in wanted:
            rows[k] = None
        pending = rows_pending(self.tx, ", ".join(self.columns), self.table, self.key, wanted)
        if pending is not None:
            self._pending.append(pending)

    def _settle(self) -> None:
        """Read the rows of the prefetches sent (in the order sent)."""
        rows, stored, key = self._rows, self._stored, self.key
        for pending in self._pending:
            for row in pending.rows():
                rows[row[key]] = row
                stored.add(row[key])
        self._pending.clear()

    def get(self, key: str) -> Row | None:
        """The row as it stands in this batch (loaded now if not prefetched)."""
        if self._pending:
            self._settle()
        if key not in self._rows:
            self.prefetch([key])
            self._settle()
        return self._rows[key]

    def insert(self, key: str, **values: Any) -> bool:
        """A new row (the other columns NULL) unless one exists: `INSERT ... ON
        CONFLICT DO NOTHING`. Whether it was inserted."""
        if self.get(key) is not None:
            return False
        row: Row = dict.fromkeys(self.columns)
        row.update(values, **{self.key: key})
        self._rows[key] = row
        self._dirty[key] = None
        return True

    def update(self, key: str, **values: Any) -> Row | None:
        """Set columns of an existing row (`UPDATE ... WHERE key = ?`: nothing
        when there is none). The row, or None."""
        row = self.get(key)
        if row is None:
            return None
        row.update(values)
        self._dirty[key] = None
        return row

    def flush(self) -> None:
        """Write every changed row: one upsert statement for the batch (and,
        with a batch given, the rows new to the table appended through it)."""
        if not self._dirty:
            return
        if self._pending:
            self._settle()
        others = [c for c in self.columns if c != self.key]
        stored, columns = self._stored, self.columns
        new: list[list[Any]] = []
        changed: list[list[Any]] = []
        for k in self._dirty:
            row = self._rows[k]
            if row is not None:
                values = [row[c] for c in columns]
                (changed if self.batch is None or k in stored else new).append(values)
        if new:
            assert self.batch is not None
            self.batch.append(self.table, columns, new)
            stored.update(self._dirty)
        upsert_rows(self.tx, self.table, columns, (self.key,), changed, others)
        self._dirty.clear()
