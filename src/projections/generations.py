"""Generations of a read model's tables: which one is live, fresh ones being
built, swaps, drops, and throwaway (scratch) ones.

Each read model has one *live* generation (`sla_targets_g3`) that readers use.
A rebuild fills a *building* generation while the live one serves, then swaps
them in one transaction; the old one is *retired* and dropped once no reader
can still be using it. A *scratch* generation (negative number, `_s123`) is a
throwaway build that is never tracked: the view as of an instant, or a what-if
replay under another policy.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresDatastore
from fieldledger.application.database import Database, Tx, postgres_sql
from fieldledger.application.event_store import kept_cursor
from fieldledger.projections.read_model import ReadModel, Tables
from psycopg.errors import UndefinedTable
from psycopg.sql import SQL, Composable, Literal

GENERATIONS = "projection_generations"
#: How many times `Generations.scalar` looks the live generation up again when
#: the one it knew was swapped out or dropped meanwhile (once is enough unless
#: rebuilds follow each other faster than a read).
SCALAR_ATTEMPTS = 5
#: The attribute of a pooled connection holding its cursor for `scalar`.
_SCALAR_CURSOR = "_fieldledger_scalar_cursor"
#: A scratch generation older than this was left by a crashed process: dropped.
SCRATCH_LEFTOVER_AGE = timedelta(hours=6)
#: The statistics target of a fresh generation's first ANALYZE (PostgreSQL's
#: default is 100; 10 was its default before 8.4): 3,000 rows sampled per table.
FRESH_STATISTICS_TARGET = 10
#: The tracking tables of the library's recorders (SQLite's name is fixed).
TRACKING_TABLES = {"sqlite": "tracking", "postgres": "projection_tracking"}

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s", re.IGNORECASE)
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s", re.IGNORECASE)


class RebuildSuperseded(Exception):
    """Another rebuild of the same read model replaced this one's generation."""


def tracking_key(name: str, generation: int) -> str:
    return f"{name}#g{generation}"


@dataclass
class FreshTables:
    """A fresh generation's tables as they are created for a bulk build: on
    PostgreSQL unlogged (no write-ahead log while they fill), and with their
    secondary indexes held back, to be built once over the finished rows
    (`finish`) rather than maintained row by row. Primary keys stay: handlers
    rely on them (`ON CONFLICT`)."""

    tx: Tx
    unlogged: bool
    created: list[str] = field(default_factory=list)
    deferred_indexes: list[str] = field(default_factory=list)

    def execute(self, statement: str, params: Any = ()) -> None:
        if _CREATE_INDEX.match(statement):
            self.deferred_indexes.append(statement)
            return
        if self.unlogged and _CREATE_TABLE.match(statement):
            statement = _CREATE_TABLE.sub("CREATE UNLOGGED TABLE ", statement, count=1)
        self.tx.execute(statement, params)

    def __getattr__(self, name: str) -> Any:  # the rest of Tx, as it is
        return getattr(self.tx, name)


@dataclass(frozen=True)
class Build:
    """A generation being built from zero, and what is left to do before its swap."""

    name: str
    generation: int
    deferred_indexes: tuple[str, ...] = ()
    unlogged: bool = False


class Generations:
    """The generation rows of every read model, and their tables."""

    def __init__(self, db: Database, models: Mapping[str, ReadModel]) -> None:
        self.db = db
        self.models = models
        #: Bumped by every change of a generation's row made in this process.
        self.changes = 0
        #: `_locked_live`'s statements, rendered once per read model.
        self._openings: dict[str, SQL] = {}
        #: PostgreSQL: the live generation of each read model as `scalar` last
        #: found it, and its statements as sent for each generation.
        self._known_live: dict[str, int] = {}
        self._scalars: dict[tuple[str, Callable[[Tables], str], int], str] = {}
        with db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {tx.table(GENERATIONS)} ("
                "name TEXT NOT NULL, generation INTEGER NOT NULL, state TEXT NOT NULL, "
                "schema_version INTEGER NOT NULL, error TEXT, error_position INTEGER, "
                "created_at TEXT NOT NULL, PRIMARY KEY (name, generation))"
            )

    def tables(self, name: str, generation: int) -> Tables:
        """Physical table names of a generation; negative generations are scratch ones."""
        model = self.models[name]
        suffix = f"g{generation}" if generation > 0 else f"s{-generation}"
        return Tables(
            {base: self.db.table(f"{base}_{suffix}") for base in model.tables}, generation
        )

    def live(self, name: str) -> int | None:
        with self.db.read() as tx:
            return self.live_in(tx, name)

    def live_in(self, tx: Tx, name: str) -> int | None:
        value = tx.scalar(
            f"SELECT generation FROM {tx.table(GENERATIONS)} WHERE name = ? AND state = 'live'",
            (name,),
        )
        return None if value is None else int(value)

    def state_in(self, tx: Tx, name: str, generation: int) -> str | None:
        state = tx.scalar(
            f"SELECT state FROM {tx.table(GENERATIONS)} WHERE name = ? AND generation = ?",
            (name, generation),
        )
        return None if state is None else str(state)

    def ensure_live(self, name: str) -> None:
        """A read model seen for the first time starts with generation 1, live."""
        if self.live(name) is not None:
            return
        model = self.models[name]
        try:
            with self.db.transaction() as tx:
                self._insert(tx, name, 1, "live")
                model.create_tables(tx, self.tables(name, 1))
        except IntegrityError:
            pass  # another process created it first

    @contextmanager
    def reading(
        self, name: str, settings: Mapping[str, str] | None = None
    ) -> Iterator[tuple[Tx, Tables]]:
        """A read-only transaction on the live generation of a read model; on
        PostgreSQL with `settings` in force (`SET LOCAL`, see `Tx.settings`).

        The generation is looked up inside the transaction: on SQLite the
        snapshot keeps its tables even if a rebuild drops them meanwhile; on
        PostgreSQL a shared advisory lock holds off the drop until we are done.
        """
        if self.db.dialect == "postgres":
            with self.db.snapshot(self._locked_live(name), settings or {}) as (tx, cursor):
                # The lock's result, then the lookup's (see `_locked_live`).
                cursor.nextset()
                row = cursor.fetchone()
                if row is None:  # pragma: no cover - created at start
                    raise LookupError(name)
                yield tx, self.tables(name, int(row["generation"]))
            return
        with self.db.transaction(commit=False) as tx:
            generation = self.live_in(tx, name)
            if generation is None:  # pragma: no cover - created at start
                raise LookupError(name)
            yield tx, self.tables(name, generation)

    def scalar(
        self, name: str, statement: Callable[[Tables], str], params: Sequence[Any]
    ) -> Any:
        """The value of `statement(tables)` (a query of one column, `?`
        placeholders) on the live generation of a read model: its first row's,
        or None when it finds no row.

        On PostgreSQL one statement in autocommit, one round trip (a `reading`
        costs three: BEGIN with the drop lock and the lookup, the query,
        COMMIT), prepared on each connection at its first use (psycopg's own
        threshold is the fifth, and a pool's connections take turns): the
        query on the tables of the generation this process last knew live,
        beside the lookup of the live one. The statement holds its tables'
        locks from its start: a rebuild's drop of them (`drop`) waits until it
        is done, as it waits for `reading`'s drop lock. If the generation is no
        longer live (swapped out before the statement's snapshot), or its
        tables were already dropped (the statement fails before reading
        anything, and the live generation is another), it is sent again on the
        live one. Rendered once per read model, statement and generation:
        `statement` must be the same object each time (a function, not a
        lambda made per call).
        On SQLite a `reading` transaction."""
        if self.db.dialect != "postgres":
            with self.reading(name) as (tx, t):
                return tx.scalar(statement(t), params)
        datastore = self.db.datastore
        assert isinstance(datastore, PostgresDatastore)
        values = (name, *params)
        for _ in range(SCALAR_ATTEMPTS):
            generation = self._known_live.get(name)
            if generation is None:
                generation = self.live(name)
                if generation is None:  # pragma: no cover - created at start
                    raise LookupError(name)
                self._known_live[name] = generation
            sent = self._scalars.get((name, statement, generation))
            if sent is None:
                sent = self._scalars[(name, statement, generation)] = self._scalar_sql(
                    name, statement, generation
                )
            try:
                row = _scalar_row(datastore, sent, values)
            except Exception as e:
                if not isinstance(e.__cause__ or e, UndefinedTable):
                    raise
                live = self.live(name)
                if live == generation:
                    raise  # not a drop: the query names a table that is not there
                self._known_live.pop(name, None)  # dropped meanwhile
                continue
            assert row is not None
            if row["live"] == generation:
                return row["value"]
            if row["live"] is None:  # pragma: no cover - created at start
                raise LookupError(name)
            self._known_live[name] = int(row["live"])  # swapped meanwhile
        raise LookupError(f"{name}: rebuilt {SCALAR_ATTEMPTS} times during one read")

    def _scalar_sql(self, name: str, statement: Callable[[Tables], str], generation: int) -> str:
        """`scalar`'s statement on one generation (psycopg's placeholders): the
        live generation's number, then the query's first value."""
        query = statement(self.tables(name, generation))
        return postgres_sql(
            f"SELECT (SELECT generation FROM {self.db.table(GENERATIONS)} "
            "WHERE name = ? AND state = 'live') AS live, "
            f"(SELECT q.* FROM ({query}) AS q LIMIT 1) AS value"
        )

    def _locked_live(self, name: str) -> Composable:
        """PostgreSQL: take the shared drop lock, then look up the live generation,
        sent with the transaction's `BEGIN` in one round trip (`Database.snapshot`):
        statements in one simple query (no parameters: the lock key and the
        view's name are ours, quoted as literals), run in order, each with a
        snapshot of its own, so the lookup sees every swap committed before the
        lock was granted. A read used to spend a round trip on each, and on
        `BEGIN`. Rendered once per read model: composing and quoting it cost
        more than the rest of a read's Python."""
        opening = self._openings.get(name)
        if opening is None:
            opening = self._openings[name] = SQL(
                SQL(
                    "SELECT pg_advisory_xact_lock_shared({}); "
                    "SELECT generation FROM {} WHERE name = {} AND state = 'live'"
                )
                .format(
                    Literal(self._drop_lock(name)), SQL(self.db.table(GENERATIONS)), Literal(name)
                )
                .as_string(None)
            )
        return opening

    def _drop_lock(self, name: str) -> int:
        digest = hashlib.sha256(f"fieldledger:{self.db.schema}:{name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def lock(self, tx: Tx, name: str) -> None:
        """Write first: on PostgreSQL this locks the read model's generation rows
        against a concurrent rebuild or swap; on SQLite it takes the write lock
        before anything is read (a read-then-write transaction can fail with
        SQLITE_BUSY when another process wrote in between)."""
        tx.execute(f"UPDATE {tx.table(GENERATIONS)} SET state = state WHERE name = ?", (name,))

    def _insert(self, tx: Tx, name: str, generation: int, state: str) -> None:
        self.changes += 1  # what /healthz remembers is out of date (routes/health.py)
        tx.execute(
            f"INSERT INTO {tx.table(GENERATIONS)} (name, generation, state, "
            "schema_version, created_at) VALUES (?, ?, ?, ?, ?)",
            (name, generation, state, self.models[name].schema_version, _now()),
        )

    # -- building and swapping -----------------------------------------------

    def start_build(self, name: str) -> Build:
        """A fresh generation, 'building', with empty tables (unlogged on
        PostgreSQL, secondary indexes held back); abandoned builds are dropped."""
        with self.db.transaction() as tx:
            self.lock(tx, name)
            tx.execute(
                f"SELECT generation, state FROM {tx.table(GENERATIONS)} WHERE name = ?", (name,)
            )
            rows = tx.fetchall()
            abandoned = [int(r["generation"]) for r in rows if r["state"] == "building"]
            generation = max([int(r["generation"]) for r in rows], default=0) + 1
            for old in abandoned:
                self.drop(tx, name, old)
            self._insert(tx, name, generation, "building")
            fresh = FreshTables(tx, unlogged=tx.dialect == "postgres")
            self.models[name].create_tables(fresh, self.tables(name, generation))  # type: ignore[arg-type]
        return Build(name, generation, tuple(fresh.deferred_indexes), fresh.unlogged)

    def finish_build(self, build: Build) -> None:
        """Before the swap: the tables made durable; the held-back indexes, built
        over the finished rows; and planner statistics, which fresh tables lack
        (without them PostgreSQL ignores expression indexes and scans: the SLA
        board at 1M events was 142 ms p99 before, 24 ms after).

        The statistics are sampled at `FRESH_STATISTICS_TARGET`: ANALYZE reads
        300 rows per unit of target, and at the default (100) it was about as
        costly as the rest of the finish; autovacuum analyzes the live tables
        again at the server's default as they grow.

        Durable first: `SET LOGGED` rewrites a table with every index it has,
        so indexes built before it were built twice (the audit trail's took
        2.6 s of a 5.7 s finish at 100k events).

        Then, on PostgreSQL, `vacuum`: the tables' visibility maps set."""
        tables = list(self.tables(build.name, build.generation).names.values())
        with self.db.transaction() as tx:
            if build.unlogged:
                for table in tables:
                    tx.execute(f"ALTER TABLE {table} SET LOGGED")
            for statement in build.deferred_indexes:
                tx.execute(statement)
            if tx.dialect == "postgres":
                # A first estimate from a tenth of the default sample: enough
                # for the plans the views' queries need, a quarter of the cost.
                tx.execute(f"SET LOCAL default_statistics_target = {FRESH_STATISTICS_TARGET}")
            for table in tables:
                tx.execute(f"ANALYZE {table}")
        if self.db.dialect == "postgres":
            self.vacuum(tables)

    def vacuum(self, tables: Sequence[str]) -> None:
        """PostgreSQL: VACUUM these tables (outside a transaction, as it must
        be), which marks their pages all-visible in the visibility map. A fresh
        generation's rows were all written by the finish's `SET LOGGED`, and
        until a VACUUM no page is marked: an index-only scan then visits the
        heap for every row it finds (the audit trail's day at 1M events: 2,605
        heap fetches; docs/benchmarks.md, branch i11o), and autovacuum, which
        would mark them in time, may be off or behind. Nothing is dead in a
        fresh table, so this reads each page once and writes its bits: all
        the tables of a rebuilt 100k store in 0.22 s of the backend's CPU.
        Pages some older transaction could not yet see stay unmarked (a
        rebuild's other finishing transaction); autovacuum marks them later."""
        with self.db.read() as tx:
            for table in tables:
                tx.execute(f"VACUUM {table}")

    def by_size(self, builds: Sequence[Build]) -> list[Build]:
        """Fresh generations, the largest first (their tables' bytes, PostgreSQL)."""
        with self.db.transaction(commit=False) as tx:
            sizes = {
                (b.name, b.generation): int(
                    tx.scalar(
                        "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(t))), 0) "
                        "FROM unnest(?::text[]) AS t",
                        (list(self.tables(b.name, b.generation).names.values()),),
                    )
                )
                for b in builds
            }
        return sorted(builds, key=lambda b: -sizes[(b.name, b.generation)])

    def swap(self, tx: Tx, name: str, generation: int, position: int, live_position: int) -> bool:
        """In the caller's transaction (which holds both tracking rows): make the
        built generation live if it is at least as far as the live one."""
        self.changes += 1  # what /healthz remembers is out of date (routes/health.py)
        if self.state_in(tx, name, generation) != "building":
            raise RebuildSuperseded(
                f"the rebuild of {name} (generation {generation}) was replaced by another "
                "rebuild; the live view is unchanged by this one"
            )
        if position < live_position:
            return False  # the live view moved on meanwhile: catch up first
        tx.execute(
            f"UPDATE {tx.table(GENERATIONS)} SET state = 'retired' "
            "WHERE name = ? AND state = 'live'",
            (name,),
        )
        tx.execute(
            f"UPDATE {tx.table(GENERATIONS)} SET state = 'live' WHERE name = ? AND generation = ?",
            (name, generation),
        )
        return True

    def drop_retired(self, name: str) -> None:
        with self.db.transaction() as tx:
            if tx.dialect == "postgres":
                # Wait for readers that may have looked up the retired generation
                # (`reading`; a `scalar` read's statement holds the tables'
                # locks itself: each DROP below waits for it).
                tx.execute("SELECT pg_advisory_xact_lock(?)", (self._drop_lock(name),))
            self.lock(tx, name)
            for row in tx.query(
                f"SELECT generation FROM {tx.table(GENERATIONS)} "
                "WHERE name = ? AND state = 'retired'",
                (name,),
            ):
                self.drop(tx, name, int(row["generation"]))

    def drop(self, tx: Tx, name: str, generation: int) -> None:
        self.changes += 1  # what /healthz remembers is out of date (routes/health.py)
        for table in self.tables(name, generation).names.values():
            tx.execute(f"DROP TABLE IF EXISTS {table}")
        tx.execute(
            f"DELETE FROM {tx.table(GENERATIONS)} WHERE name = ? AND generation = ?",
            (name, generation),
        )
        tx.execute(
            f"DELETE FROM {tx.table(TRACKING_TABLES[tx.dialect])} WHERE application_name = ?",
            (tracking_key(name, generation),),
        )

    # -- errors ----------------------------------------------------------------

    def record_error(self, name: str, generation: int, error: str, position: int) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                f"UPDATE {tx.table(GENERATIONS)} SET error = ?, error_position = ? "
                "WHERE name = ? AND generation = ?",
                (error, position, name, generation),
            )
        self.changes += 1  # what /healthz remembers is out of date (routes/health.py)

    def recorded_error(self, name: str, generation: int) -> tuple[str, int] | None:
        with self.db.read() as tx:
            found = tx.query(
                f"SELECT error, error_position FROM {tx.table(GENERATIONS)} "
                "WHERE name = ? AND generation = ?",
                (name, generation),
            )
            row = found[0] if found else None
        if row is None or row["error"] is None:
            return None
        return str(row["error"]), int(row["error_position"])

    # -- scratch ---------------------------------------------------------------

    def create_scratch(self, name: str) -> Build:
        """A throwaway generation of fresh tables (bulk-built like a rebuild's)."""
        generation = -(secrets.randbelow(2**31 - 2) + 1)
        with self.db.transaction() as tx:
            self.lock(tx, name)
            cutoff = (datetime.now(UTC) - SCRATCH_LEFTOVER_AGE).isoformat()
            for row in tx.query(
                f"SELECT generation FROM {tx.table(GENERATIONS)} "
                "WHERE name = ? AND state = 'scratch' AND created_at < ?",
                (name, cutoff),
            ):
                self.drop(tx, name, int(row["generation"]))
            self._insert(tx, name, generation, "scratch")
            fresh = FreshTables(tx, unlogged=tx.dialect == "postgres")
            self.models[name].create_tables(fresh, self.tables(name, generation))  # type: ignore[arg-type]
        # A scratch build is read once and dropped: it stays unlogged.
        return Build(name, generation, tuple(fresh.deferred_indexes), unlogged=False)

    def drop_scratch(self, name: str, generation: int) -> None:
        with self.db.transaction() as tx:
            self.drop(tx, name, generation)

    def rows(self) -> list[dict[str, Any]]:
        """Every generation that is not retired (for status)."""
        with self.db.transaction(commit=False) as tx:
            return tx.query(f"SELECT * FROM {tx.table(GENERATIONS)} WHERE state <> 'retired'")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _scalar_row(datastore: PostgresDatastore, statement: str, params: Sequence[Any]) -> Any:
    """`statement`'s first row, in autocommit on a connection of the store's
    pool, taken and given back by the pool's `getconn` and `putconn` (the
    library's `get_connection` wraps them in two generator context managers, a
    `pool.open` and a commit of the autocommit connection: some 4 us of a
    booking's lookup), with a cursor kept on the connection, as the save's
    (`event_store.kept_cursor`). A connection left broken is replaced by
    `putconn`, as before."""
    pool = datastore.pool
    if pool.closed:  # not opened yet: the library's path opens it
        with datastore.get_connection() as conn:
            return conn.execute(statement, params, prepare=True).fetchone()
    conn = pool.getconn()
    try:
        curs = kept_cursor(conn, _SCALAR_CURSOR)
        curs.execute(statement, params, prepare=True)
        return curs.fetchone()
    finally:
        pool.putconn(conn)
