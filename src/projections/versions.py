"""Read models that keep when each row became true, so a report as of a past
store position is a query, not a replay.

A *versioned* table has a `valid_from` column (the store position of the event
that made the row what it is) and, beside it, a history table of the versions
it replaced, each with `valid_from` and `valid_to` (the position of the event
that replaced or deleted it). An *appended* table only grows (rows keyed by
the event that made them) and carries `valid_from` alone.

The rows a table held right after position P are then

    current rows with valid_from <= P
    UNION ALL history rows with valid_from <= P < valid_to

`as_of_tables` makes those, in the reading transaction, temporary views named
for the tables, so a report's SQL runs unchanged on the view as it was at P
(and the tables' indexes serve both halves).

Versions are taken per event, not per batch: a row changed by three events of
one batch leaves two versions in the history. So the history does not depend
on how the events were batched, and a rebuild from zero equals the view built
incrementally, history included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from operator import itemgetter
from typing import Any

from fieldledger.application.database import Tx
from fieldledger.projections.read_model import Batch, Tables
from fieldledger.projections.reporting import index_name
from fieldledger.projections.unit_of_work import Pending, rows_pending, upsert_rows

Row = dict[str, Any]
Key = tuple[Any, ...]

VALID_FROM = "valid_from"
VALID_TO = "valid_to"


def history_of(base: str) -> str:
    """The base name of a versioned table's history table."""
    return f"{base}_history"


def create_versioned(
    tx: Tx,
    table: str,
    history: str,
    columns: str,
    key: Sequence[str],
    indexes: Mapping[str, str] | None = None,
) -> None:
    """A versioned table and its history, with the same secondary indexes on
    both (`indexes`: suffix -> indexed columns). `columns`: the column
    definitions, without the key or `valid_from`."""
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {table} ({columns}, {VALID_FROM} INTEGER NOT NULL, "
        f"PRIMARY KEY ({', '.join(key)}))"
    )
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {history} ({columns}, {VALID_FROM} INTEGER NOT NULL, "
        f"{VALID_TO} INTEGER NOT NULL)"
    )
    # The history is read by key and instant, like the table.
    tx.execute(
        f"CREATE INDEX IF NOT EXISTS {index_name(history, 'key')} "
        f"ON {history} ({', '.join(key)}, {VALID_FROM})"
    )
    for suffix, indexed in (indexes or {}).items():
        for name in (table, history):
            tx.execute(
                f"CREATE INDEX IF NOT EXISTS {index_name(name, suffix)} ON {name} ({indexed})"
            )


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, float) or isinstance(b, float):
        # REAL is single precision on PostgreSQL: what is read back may differ
        # in the last digits from what was written.
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)
    return False


class VersionedRows:
    """A batch's unit of work on one versioned table: the rows it touches, loaded
    at the start of the batch by the first key column (`prefetch`), changed in
    memory event by event (`at` sets the event's position first), written at the
    end (`flush`): deletes and updates with one statement each, new rows and the
    replaced versions appended (with `COPY` in a rebuild)."""

    def __init__(
        self, batch: Batch, table: str, history: str, key: Sequence[str], columns: Sequence[str]
    ) -> None:
        self.batch = batch
        self.tx = batch.tx
        self.table = table
        self.history = history
        self.key = tuple(key)
        self.columns = tuple(columns)  # the key's among them; not valid_from
        self.values = tuple(c for c in self.columns if c not in self.key)
        self._value_set = frozenset(self.values)
        #: A row's columns and `valid_from`, as a tuple (what is written).
        self._written = itemgetter(*self.columns, VALID_FROM)
        #: The position of the event being applied.
        self.position = 0
        self._groups: dict[Any, dict[Key, Row]] = {}
        self._stored: set[Key] = set()
        self._dirty: dict[Key, None] = {}
        self._replaced: list[tuple[Any, ...]] = []
        #: Prefetches sent and not yet read (`Pending`): read before any row
        #: is looked at.
        self._pending: list[Pending] = []

    def prefetch(self, groups: Iterable[Any]) -> None:
        """Load the rows of these values of the first key column, in one query:
        sent now, read when a row is first asked for (`Pending`)."""
        wanted = sorted({g for g in groups if g not in self._groups})
        selected = ", ".join((*self.columns, VALID_FROM))
        for g in wanted:
            self._groups[g] = {}
        pending = rows_pending(self.tx, selected, self.table, self.key[0], wanted)
        if pending is not None:
            self._pending.append(pending)

    def _settle(self) -> None:
        """Read the rows of the prefetches sent (in the order sent)."""
        groups, stored, key_columns = self._groups, self._stored, self.key
        for pending in self._pending:
            for row in pending.rows():
                key = tuple(row[c] for c in key_columns)
                groups[key[0]][key] = row
                stored.add(key)
        self._pending.clear()

    def known_absent(self, first: Any) -> None:
        """No row has this first key column yet (its aggregate starts in this
        batch): nothing to load."""
        if self._pending:
            self._settle()
        self._groups.setdefault(first, {})

    def group(self, first: Any) -> dict[Key, Row]:
        """The rows whose first key column is `first` (loaded now if not prefetched)."""
        if self._pending:
            self._settle()
        if first not in self._groups:
            self.prefetch([first])
            self._settle()
        return self._groups[first]

    def get(self, *key: Any) -> Row | None:
        return self.group(key[0]).get(tuple(key))

    def put(self, row: Row) -> None:
        """The row of its key becomes `row` (all columns), as of the event at
        `position`; nothing changes if it is already so."""
        key = tuple(row[c] for c in self.key)
        self._replace(key, {c: row.get(c) for c in self.columns})

    def put_values(self, values: Sequence[Any]) -> None:
        """`put` of a row given as its values in column order (no dict built
        by the caller to be copied again)."""
        row = dict(zip(self.columns, values, strict=True))
        self._replace(tuple(row[c] for c in self.key), row)

    def insert(self, *key: Any, **values: Any) -> bool:
        """A new row (other columns NULL) unless one exists; whether it was new."""
        if self.get(*key) is not None:
            return False
        row: Row = dict.fromkeys(self.columns)
        row.update(values)
        row.update(zip(self.key, key, strict=True))
        self._replace(tuple(key), row)
        return True

    def update(self, *key: Any, **values: Any) -> Row | None:
        """Set columns of an existing row (nothing when there is none).

        Only the columns set can differ from the row as it is, so only they
        are compared (the others are the same objects): nothing is copied
        when the event changes none of them, which is most updates."""
        old = self.get(*key)
        if old is None:
            return None
        compared = self._value_set
        for c, v in values.items():
            # `_same` called only when the values are neither the same object
            # nor equal (most are): the same answer, without a call per value.
            if c in compared:
                a = old[c]
                if a is not v and a != v and not _same(a, v):
                    break
        else:
            return old
        row = dict(old)
        row.update(values)
        self._write(tuple(key), old, row)
        return row

    def delete(self, *key: Any) -> None:
        self._replace(tuple(key), None)

    def _replace(self, key: Key, row: Row | None) -> None:
        rows = self.group(key[0])
        old = rows.get(key)
        if old is None and row is None:
            return
        if old is not None and row is not None:
            for c in self.values:
                a, b = old[c], row[c]
                if a is not b and not _same(a, b):
                    break
            else:
                return
        self._write(key, old, row)

    def _write(self, key: Key, old: Row | None, row: Row | None) -> None:
        """The row of `key` becomes `row` (None: deleted), known to differ
        from `old`, the row it replaces (None: none)."""
        if old is not None and old[VALID_FROM] < self.position:
            self._replaced.append((*self._written(old), self.position))
        rows = self._groups[key[0]]
        if row is None:
            del rows[key]
        else:
            row[VALID_FROM] = self.position
            rows[key] = row
        self._dirty[key] = None

    def flush(self) -> None:
        """The batch's writes to the table and its history."""
        if self._pending:
            self._settle()
        deleted: list[Key] = []
        changed: list[Row] = []
        new: list[Row] = []
        for key in self._dirty:
            row = self._groups[key[0]].get(key)
            if row is None:
                if key in self._stored:
                    deleted.append(key)
            elif key in self._stored:
                changed.append(row)
            else:
                new.append(row)
        tx = self.tx
        columns = (*self.columns, VALID_FROM)
        tx.executemany(
            f"DELETE FROM {self.table} WHERE {' AND '.join(f'{c} = ?' for c in self.key)}",
            deleted,
        )
        upsert_rows(
            tx, self.table, columns, self.key, [self._written(r) for r in changed],
            (*self.values, VALID_FROM),
        )  # fmt: skip
        self.batch.append(self.table, columns, [self._written(r) for r in new])
        self.batch.append(self.history, (*columns, VALID_TO), self._replaced)
        self._stored.difference_update(deleted)
        self._stored.update(tuple(r[c] for c in self.key) for r in new)
        self._dirty.clear()
        self._replaced = []


@contextmanager
def as_of_tables(
    tx: Tx,
    t: Tables,
    versioned: Mapping[str, Sequence[str]],
    appended: Mapping[str, Sequence[str]],
    position: int,
    derived: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Tables]:
    """Temporary views of the tables as they were right after `position`, named
    for them (`versioned`: base name -> columns, `appended`: likewise), in a
    transaction that is rolled back (a reading one). The views exist in this
    transaction only; tables neither versioned nor appended
    are not offered (a report reading one fails rather than answer from the
    present)."""
    p = int(position)
    temp = "pg_temp" if tx.dialect == "postgres" else "temp"
    names: dict[str, str] = {}
    statements: list[str] = []
    for base, columns in versioned.items():
        selected = ", ".join((*columns, VALID_FROM))
        statements.append(
            f"SELECT {selected} FROM {t[base]} WHERE {VALID_FROM} <= {p} UNION ALL "
            f"SELECT {selected} FROM {t[history_of(base)]} "
            f"WHERE {VALID_FROM} <= {p} AND {VALID_TO} > {p}"
        )
        names[base] = f"{temp}.asof_{base}"
    for base, columns in appended.items():
        # A column rewritten by later events is worked out as of `position`.
        exprs = (derived or {}).get(base, {})
        selected = ", ".join(
            (
                *(
                    f"{exprs[c].format(table=t[base], position=p)} AS {c}" if c in exprs else c
                    for c in columns
                ),
                VALID_FROM,
            )
        )
        statements.append(f"SELECT {selected} FROM {t[base]} cur WHERE {VALID_FROM} <= {p}")
        names[base] = f"{temp}.asof_{base}"
    if tx.dialect == "postgres":
        # One round trip; the reading transaction is always rolled back, and
        # takes its temporary views with it.
        tx.execute(
            "; ".join(
                f"CREATE TEMP VIEW {name.split('.', 1)[1]} AS {select}"
                for name, select in zip(names.values(), statements, strict=True)
            )
        )
        yield Tables(names, t.generation)
        return
    for name, select in zip(names.values(), statements, strict=True):
        tx.execute(f"DROP VIEW IF EXISTS {name}")
        tx.execute(f"CREATE TEMP VIEW {name.split('.', 1)[1]} AS {select}")
    try:
        yield Tables(names, t.generation)
    except BaseException:
        with suppress(Exception):
            for name in names.values():
                tx.execute(f"DROP VIEW IF EXISTS {name}")
        raise
    for name in names.values():
        tx.execute(f"DROP VIEW IF EXISTS {name}")
