"""Where the events live: `FIELDLEDGER_DATABASE_URL` mapped onto the library.

We do not write an event store: the `eventsourcing` library's SQLite and
PostgreSQL recorders are used as they are, extended only so that what must be
written atomically with a command's events is written in the same transaction:
the idempotency receipt of the request that caused them, and the events' rows
of the tamper-evident hash chain (`hash_chain.py`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    OperationalError,
    StoredEvent,
    Transcoding,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic, retry
from fieldledger.application.hash_chain import (
    HASHES_TABLE,
    HashRow,
    canonical_id,
    chain_rows,
    versions_before,
)
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal


class StoreConfigError(ValueError):
    """The database URL cannot be used; the message says why."""


@dataclass(frozen=True)
class Receipt:
    """What a command with an Idempotency-Key answered, kept with its events."""

    actor: str
    key: str
    fingerprint: str
    response: dict[str, Any]


# -- URL → library environment ------------------------------------------------


def store_environment(database_url: str) -> dict[str, str]:
    """Translate `sqlite:///PATH` or `postgresql://USER[:PW]@HOST[:PORT]/DB[?schema=S]`."""
    url = database_url.strip()
    if url.startswith("sqlite:///"):
        path = unquote(url[len("sqlite:///") :])
        if not path:
            raise StoreConfigError("sqlite URL needs a path: sqlite:///PATH")
        if path == ":memory:":
            # Shared so that every pooled connection sees the same database.
            path = "file:fieldledger?mode=memory&cache=shared"
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": get_topic(LedgerSQLiteRecorder),
        }
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise StoreConfigError(
                "postgresql URL needs a host and a database: postgresql://USER@HOST/DB"
            )
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(dbname),
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "10",
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_LOCK_TIMEOUT": "10",
            # The receipts are written by the recorder's own insert path, which the
            # library's optional database functions would bypass: keep them off
            # whatever the process environment says.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": get_topic(LedgerPostgresRecorder),
        }
        schema = parse_qs(parts.query).get("schema")
        if schema:
            env["POSTGRES_SCHEMA"] = schema[0]
        return env
    raise StoreConfigError(
        f"unsupported database URL {database_url!r}: use sqlite:///PATH or "
        "postgresql://USER[:PW]@HOST[:PORT]/DB"
    )


@contextmanager
def schema_lock(database_url: str) -> Iterator[None]:
    """Hold while creating tables at start: on PostgreSQL, processes starting at
    once (`serve --workers N`) would otherwise race in the library's CREATE OR
    REPLACE statements ("tuple concurrently updated"). A session advisory lock
    on a connection of its own; SQLite serialises its DDL by itself."""
    env = store_environment(database_url)
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        yield
        return
    try:
        conn = psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=int(env["POSTGRES_CONNECT_TIMEOUT"]),
            autocommit=True,
        )
    except psycopg.OperationalError as e:
        raise OperationalError(str(e).strip()) from None
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        yield
    finally:
        conn.close()  # ends the session, and with it the lock


#: An arbitrary constant naming fieldledger's start-up lock among advisory locks.
SCHEMA_LOCK_KEY = 0x46_4C_44_47  # "FLDG"


# -- transcodings: exact round trips of our value objects ---------------------


class EnumAsValue(Transcoding):
    def __init__(self, enum_class: type[Enum]) -> None:
        self.type = enum_class
        self.name = f"enum:{enum_class.__module__}.{enum_class.__qualname__}"
        self.enum_class = enum_class

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        return self.enum_class(data)


class ValueObjectAsDict(Transcoding):
    """A frozen dataclass as a dict of its fields (each transcoded in turn)."""

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = f"vo:{cls.__module__}.{cls.__qualname__}"
        self.cls = cls

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.cls(**data)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def register_value_types(transcoder: JSONTranscoder, types: Sequence[type[Any]]) -> None:
    transcoder.register(DateAsISO())
    for t in types:
        if issubclass(t, Enum):
            transcoder.register(EnumAsValue(t))
        elif dataclasses.is_dataclass(t):
            transcoder.register(ValueObjectAsDict(t))
        else:  # pragma: no cover - a programming error caught by the tests
            raise TypeError(f"no transcoding for {t}")


# -- recorders ----------------------------------------------------------------


def _rows(receipts: Sequence[Receipt]) -> list[tuple[str, str, str, str]]:
    return [(r.actor, r.key, r.fingerprint, json.dumps(r.response)) for r in receipts]

RECEIPTS_TABLE = "idempotency_receipts"
#: Customers' data keys (personal_data.py). An erasure deletes a customer's keys
#: in the transaction that records its `Erased` event: both happen, or neither.
DATA_KEYS_TABLE = "customer_data_keys"
ERASE_KEYS_OF = "erase_data_keys_of"
#: The save's keyword naming the data keys its events' personal data was sealed
#: under (`PersonalDataVault.sealing`): each must still exist when the save
#: takes the store's write lock, else nothing is written (`DataKeyErased`).
DATA_KEYS_USED = "data_keys_used"
#: The SQLSTATE the server-side save raises when a data key is gone (class 23,
#: integrity: psycopg and the library raise it as an IntegrityError).
DATA_KEY_GONE = "23K01"


class DataKeyErased(IntegrityError):
    """A save's personal data was sealed under a data key that no longer exists
    (erased by another process since this one fetched it): nothing was written.
    The caller forgets these keys and seals again (`FieldLedger._save`)."""

    def __init__(self, key_ids: Sequence[str]) -> None:
        super().__init__(f"data keys erased meanwhile: {' '.join(key_ids)}")
        self.key_ids = list(key_ids)


def _used_keys(kwargs: dict[str, Any]) -> list[str]:
    """The distinct data keys a save's events were sealed under, in order."""
    return list(dict.fromkeys(kwargs.get(DATA_KEYS_USED) or ()))


def _sqlite_id(originator_id: Any) -> str:
    """Ids as the library's SQLite recorder stores them (UUID hex)."""
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {RECEIPTS_TABLE} ("
            "actor TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
            "response TEXT NOT NULL, PRIMARY KEY (actor, key))",
            f"CREATE TABLE IF NOT EXISTS {HASHES_TABLE} ("
            "position INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, event_hash TEXT NOT NULL, "
            "chain_hash TEXT NOT NULL, UNIQUE (originator_id, originator_version))",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        used = _used_keys(kwargs)
        if used:
            # The events' INSERT took the database's write lock: an erasure
            # either committed before it (and its keys are gone now) or waits.
            c.execute(
                f"SELECT key_id FROM {DATA_KEYS_TABLE} "
                f"WHERE key_id IN ({', '.join('?' for _ in used)})",
                used,
            )
            found = {row[0] for row in c.fetchall()}
            if len(found) < len(used):
                raise DataKeyErased([k for k in used if k not in found])
        receipts: list[Receipt] = kwargs.get("receipts") or []
        if receipts:
            c.executemany(f"INSERT INTO {RECEIPTS_TABLE} VALUES (?, ?, ?, ?)", _rows(receipts))
        erased: list[str] = kwargs.get(ERASE_KEYS_OF) or []
        if erased:
            # Overwrite the deleted rows' bytes rather than leave them in free pages.
            c.execute("PRAGMA secure_delete = ON")
            c.executemany(
                f"DELETE FROM {DATA_KEYS_TABLE} WHERE customer_id = ?", [(e,) for e in erased]
            )
        if stored_events:
            assert ids is not None
            self._insert_hashes(c, stored_events, ids)
        return ids

    def _insert_hashes(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], ids: Sequence[int]
    ) -> None:
        # The events' INSERT took the database's write lock: nothing else is
        # appended before this transaction commits, so the chain cannot fork.
        c.execute(f"SELECT chain_hash FROM {HASHES_TABLE} ORDER BY position DESC LIMIT 1")
        last = c.fetchone()
        previous: dict[str, str] = {}
        for key, (originator_id, version) in versions_before(stored_events).items():
            c.execute(
                f"SELECT event_hash FROM {HASHES_TABLE} "
                "WHERE originator_id = ? AND originator_version = ?",
                (_sqlite_id(originator_id), version),
            )
            found = c.fetchone()
            if found is not None:
                previous[key] = found[0]
        rows = chain_rows(stored_events, ids, None if last is None else last[0], previous)
        c.executemany(
            f"INSERT INTO {HASHES_TABLE} VALUES (?, ?, ?, ?, ?)",
            [
                (r.position, _sqlite_id(r.originator_id), r.originator_version, r.event_hash,
                 r.chain_hash)
                for r in rows
            ],
        )

    def event_hashes(self, originator_id: UUID) -> dict[int, str]:
        """The hash of each version of one aggregate."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_version, event_hash FROM {HASHES_TABLE} "
                "WHERE originator_id = ?",
                (_sqlite_id(originator_id),),
            )
            return {int(r[0]): str(r[1]) for r in c.fetchall()}

    def find_receipt(self, actor: str, key: str) -> Receipt | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT fingerprint, response FROM {RECEIPTS_TABLE} WHERE actor=? AND key=?",
                (actor, key),
            )
            row = c.fetchone()
        if row is None:
            return None
        return Receipt(actor, key, row["fingerprint"], json.loads(row["response"]))

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The notification id (store position) of one recorded event."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid FROM {self.events_table_name} "
                "WHERE originator_id=? AND originator_version=?",
                (originator_id.hex, version),
            )
            row = c.fetchone()
        return None if row is None else int(row[0])


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        if datastore.enable_db_functions:
            # The library's database function inserts events without our hook.
            raise StoreConfigError(
                "POSTGRES_ENABLE_DB_FUNCTIONS is not supported: events must be hashed "
                "in the same transaction"
            )
        schema = Identifier(self.datastore.schema)
        self.receipts_table = schema, Identifier(RECEIPTS_TABLE)
        hashes = schema, Identifier(HASHES_TABLE)
        id_type = Identifier(self.datastore.originator_id_type)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                "actor text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
                "response jsonb NOT NULL, PRIMARY KEY (actor, key))"
            ).format(*self.receipts_table)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                "position bigint PRIMARY KEY, originator_id {} NOT NULL, "
                "originator_version bigint NOT NULL, event_hash text NOT NULL, "
                "chain_hash text NOT NULL, UNIQUE (originator_id, originator_version))"
            ).format(*hashes, id_type)
        )
        self.insert_receipt_statement = SQL("INSERT INTO {}.{} VALUES (%s, %s, %s, %s)").format(
            *self.receipts_table
        )
        # What new hashes chain onto: the store's last chain hash (originator_id
        # NULL) and each saved aggregate's hash before its first new event.
        self.chain_tip_statement = SQL(
            "(SELECT NULL::{id_type} AS originator_id, chain_hash AS hash FROM {s}.{h} "
            "ORDER BY position DESC LIMIT 1) UNION ALL "
            "(SELECT h.originator_id, h.event_hash FROM {s}.{h} h "
            "JOIN unnest(%s::{id_type}[], %s::bigint[]) AS w(id, v) "
            "ON h.originator_id = w.id AND h.originator_version = w.v)"
        ).format(s=hashes[0], h=hashes[1], id_type=id_type)
        self.insert_hashes_statement = SQL("INSERT INTO {}.{} VALUES (%s, %s, %s, %s, %s)").format(
            *hashes
        )
        #: The library's insert path checks the data keys by this statement
        #: (the server-side save by the same function).
        self.check_keys_statement = SQL("SELECT {}.{}(%s::text[])").format(
            schema, Identifier(CHECK_KEYS_FUNCTION)
        )
        self.event_hashes_statement = SQL(
            "SELECT originator_version, event_hash FROM {}.{} WHERE originator_id = %s"
        ).format(*hashes)
        self._chain_tips = threading.local()
        #: One round trip per save (`save_function_sql`): on unless
        #: FIELDLEDGER_SAVE_FUNCTION=off (kept to measure the two-trip path against it).
        self.one_trip = (
            self.datastore.originator_id_type == "uuid"
            and os.environ.get("FIELDLEDGER_SAVE_FUNCTION", "on").lower() not in ("off", "0", "n")
        )
        self.sql_create_statements.append(check_keys_function_sql(schema=self.datastore.schema))
        self.sql_create_statements.append(
            save_function_sql(
                schema=self.datastore.schema,
                events=self.events_table_name,
                lock_timeout=self.datastore.lock_timeout,
            )
        )
        # Rendered once (psycopg would quote the identifiers at every save). The
        # arrays in binary (`%b`): the server reads them without parsing text
        # (`array_in` of hex-escaped states was 2% of its CPU under load), and
        # psycopg dumps them without escaping each state.
        self.save_statement = SQL(
            SQL(
                "SELECT p FROM {}.{}(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[], "
                "%b::text[], %b::text[], %b::text[], %b::text[], %b::text[]) AS p"
            )
            .format(schema, Identifier(SAVE_FUNCTION))
            .as_string(None)
        )
        #: `select_events`'s query text per shape (gt, lte, desc, limit).
        self._select_events_queries: dict[tuple[bool, bool, bool, bool], bytes] = {}

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The library's query, the same text, but composed once per shape and
        kept as bytes: the library composes and renders it (quoting its
        identifiers) on every call, every command's aggregate load."""
        shape = (gt is not None, lte is not None, desc, limit is not None)
        query = self._select_events_queries.get(shape)
        if query is None:
            statement = self.select_events_statement
            if gt is not None:
                statement += SQL(" AND originator_version > %s")
            if lte is not None:
                statement += SQL(" AND originator_version <= %s")
            statement += SQL(" ORDER BY originator_version")
            statement += SQL(" DESC" if desc else " ASC")
            if limit is not None:
                statement += SQL(" LIMIT %s")
            query = self._select_events_queries[shape] = statement.as_bytes(None)
        params: list[Any] = [originator_id]
        params += [v for v in (gt, lte, limit) if v is not None]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Events, their hash rows and the requests' receipts in one statement,
        committed on its own (the pool's connections are in autocommit): one
        round trip, the table lock held only while the server runs it. An
        erasure (which deletes data keys too) takes the library's path."""
        if not self.one_trip or kwargs.get(ERASE_KEYS_OF) or not stored_events:
            try:
                ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            except IntegrityError as e:
                erased = _erased_keys(e)
                if erased is None:
                    raise
                raise erased from None
            return ids
        receipts: list[Receipt] = kwargs.get("receipts") or []
        with self.datastore.get_connection() as conn:
            curs = _save_cursor(conn)
            try:
                curs.execute(
                    self.save_statement,
                    (
                        [e.originator_id for e in stored_events],
                        [e.originator_version for e in stored_events],
                        [e.topic for e in stored_events],
                        [bytes(e.state) for e in stored_events],
                        # Empty arrays as NULLs (the function reads both
                        # alike): psycopg dumps a None without looking for
                        # an element type, and most saves have no receipt
                        # and no data key.
                        *(
                            (
                                [r.actor for r in receipts],
                                [r.key for r in receipts],
                                [r.fingerprint for r in receipts],
                                [json.dumps(r.response) for r in receipts],
                            )
                            if receipts
                            else (None, None, None, None)
                        ),
                        _used_keys(kwargs) or None,
                    ),
                    prepare=True,
                )
            except psycopg.IntegrityError as e:
                erased = _erased_keys(e)
                if erased is None:
                    raise
                raise erased from None
            return [int(row["p"]) for row in curs.fetchall()]

    def _notify_channel(self, curs: Cursor[DictRow]) -> None:
        """No NOTIFY at a save (here nor in `save_function_sql`): nothing
        subscribes to the store's channel (the projector polls), and each
        NOTIFY woke every backend LISTENing in the database (the token
        listeners, `tokens.py`) into a transaction of its own to read it:
        about a seventh of PostgreSQL's CPU per command (docs/benchmarks.md)."""

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Runs in the same transaction as the insert of the events.
        super()._insert_events(curs, stored_events, **kwargs)
        receipts: list[Receipt] = kwargs.get("receipts") or []
        if receipts:
            curs.executemany(self.insert_receipt_statement, _rows(receipts))
        erased: list[str] = kwargs.get(ERASE_KEYS_OF) or []
        if erased:
            curs.execute(
                SQL("DELETE FROM {}.{} WHERE customer_id = ANY(%s)").format(
                    Identifier(self.datastore.schema), Identifier(DATA_KEYS_TABLE)
                ),
                (erased,),
            )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # The library locks the events table (EXCLUSIVE) and inserts; the chain
        # tip is read after the lock, in the same pipeline: no extra round trip.
        super()._insert_stored_events(curs, stored_events, **kwargs)
        before = list(versions_before(stored_events).values())
        lookup = curs.connection.cursor()
        lookup.execute(
            self.chain_tip_statement, ([oid for oid, _ in before], [v for _, v in before])
        )
        self._chain_tips.lookup = lookup
        used = _used_keys(kwargs)
        if used:
            # After the lock: an erasure committed before it (and the check
            # aborts the transaction), or waits for this one.
            curs.connection.cursor().execute(self.check_keys_statement, (used,))

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert ids is not None
        lookup: Cursor[DictRow] = self._chain_tips.__dict__.pop("lookup")
        last: str | None = None
        previous: dict[str, str] = {}
        for row in lookup.fetchall():
            if row["originator_id"] is None:
                last = row["hash"]
            else:
                previous[canonical_id(row["originator_id"])] = row["hash"]
        rows = chain_rows(stored_events, ids, last, previous)
        # Pipelined: sent with the COMMIT, which reports any error.
        curs.connection.cursor().executemany(
            self.insert_hashes_statement, [_pg_hash_row(r) for r in rows]
        )
        return ids

    # The reads below are single statements on the pool's autocommit
    # connections: no BEGIN and ROLLBACK round trips, and psycopg keeps the
    # connection's prepared statements (it drops them all at a ROLLBACK).

    def event_hashes(self, originator_id: UUID) -> dict[int, str]:
        """The hash of each version of one aggregate."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.event_hashes_statement, (originator_id,))
            return {int(r["originator_version"]): str(r["event_hash"]) for r in curs.fetchall()}

    def find_receipt(self, actor: str, key: str) -> Receipt | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT fingerprint, response FROM {}.{} WHERE actor=%s AND key=%s").format(
                    *self.receipts_table
                ),
                (actor, key),
            )
            row = curs.fetchone()
        if row is None:
            return None
        return Receipt(actor, key, row["fingerprint"], row["response"])

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The notification id (store position) of one recorded event."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id FROM {}.{} "
                    "WHERE originator_id=%s AND originator_version=%s"
                ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name)),
                (originator_id, version),
            )
            row = curs.fetchone()
        return None if row is None else int(row["notification_id"])


#: The server-side save (PostgreSQL): see `save_function_sql`.
SAVE_FUNCTION = "fieldledger_save_events"
#: Raises DATA_KEY_GONE naming the given data keys that no longer exist.
CHECK_KEYS_FUNCTION = "fieldledger_check_data_keys"


def _check_keys_sql(*, schema: str) -> Composed:
    """PL/pgSQL statements raising DATA_KEY_GONE (the missing key ids in its
    detail) if any key of the array `data_keys` no longer exists, with the
    variables `data_key` and `gone` declared. A primary-key probe per key (a
    save names one or two): as measured, several times cheaper than one query
    of the array (`= ANY`, or `unnest` with `NOT EXISTS`)."""
    return SQL(
        "FOREACH data_key IN ARRAY coalesce(data_keys, '{{}}') LOOP "
        "  IF NOT EXISTS (SELECT FROM {schema}.{keys} d WHERE d.key_id = data_key) THEN "
        "    gone := concat_ws(' ', gone, data_key); "
        "  END IF; "
        "END LOOP; "
        "IF gone IS NOT NULL THEN "
        "  RAISE EXCEPTION 'data keys erased meanwhile: %', gone "
        "    USING ERRCODE = {gone_state}, DETAIL = gone; "
        "END IF; "
    ).format(
        schema=Identifier(schema),
        keys=Identifier(DATA_KEYS_TABLE),
        gone_state=Literal(DATA_KEY_GONE),
    )


def check_keys_function_sql(*, schema: str) -> Composed:
    """A function raising DATA_KEY_GONE if any of the given data keys no longer
    exists (`_check_keys_sql`): the library's insert path runs it after the
    store's write lock is taken (the save function has the same check inline).
    The error aborts the transaction, so nothing of the save is written."""
    return SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{fn}(data_keys text[]) "
        "RETURNS void LANGUAGE plpgsql AS $BODY$ "
        "DECLARE data_key text; gone text; "
        "BEGIN {check}END; $BODY$"
    ).format(
        schema=Identifier(schema),
        fn=Identifier(CHECK_KEYS_FUNCTION),
        check=_check_keys_sql(schema=schema),
    )


def _erased_keys(error: BaseException) -> DataKeyErased | None:
    """The DataKeyErased a database error (or the library's wrapping of one,
    as its cause) stands for, if it is DATA_KEY_GONE."""
    for e in (error, error.__cause__):
        if isinstance(e, psycopg.Error) and e.sqlstate == DATA_KEY_GONE:
            return DataKeyErased((e.diag.message_detail or "").split())
    return None


def _event_hash_sql(i: str) -> str:
    """PL/pgSQL statements setting `own` to the hash of event `i` of the save's
    arrays chained to `prev` (`hash_chain.event_hash`: the same framing,
    big-endian 8-byte integers, SHA-256), with `id_bytes` and `topic_bytes`
    declared."""
    return (
        f"id_bytes := convert_to(ids[{i}]::text, 'UTF8'); "
        f"topic_bytes := convert_to(topics[{i}], 'UTF8'); "
        "own := encode(sha256(decode(coalesce(prev, {genesis}), 'hex') "
        "  || int8send(octet_length(id_bytes)::bigint) || id_bytes "
        f"  || int8send(versions[{i}]) "
        "  || int8send(octet_length(topic_bytes)::bigint) || topic_bytes "
        f"  || int8send(octet_length(states[{i}])::bigint) || states[{i}]), 'hex'); "
        # `hash_chain.chain_hash`
        "chained := encode(sha256(decode(coalesce(chained, {genesis}), 'hex') "
        "  || int8send(pos) || decode(own, 'hex')), 'hex'); "
    )


def save_function_sql(*, schema: str, events: str, lock_timeout: int) -> Composed:
    """A PL/pgSQL function writing one save: the events, each with its hash row
    (`hash_chain.event_hash` and `chain_hash`, computed by the server the same
    way: `_event_hash_sql`), and the idempotency receipts. It takes the
    library's EXCLUSIVE lock on the events table first, as the library's own
    insert does, so the order of commits is the order of positions (no reader
    can pass a position that commits later) and the chain cannot fork; the
    lock is released by the commit that follows the statement. Then it checks
    that every data key the events' personal data was sealed under still
    exists: an erasure deletes its keys under the same lock, so it either
    committed before (the save is refused with DATA_KEY_GONE, the keys named
    in its detail, and writes nothing) or waits for this save. A duplicate
    version or receipt raises a unique violation and nothing of the save is
    written. No NOTIFY (see `LedgerPostgresRecorder._notify_channel`).

    The statements per save, as counted cheapest (the backend's instructions
    under callgrind, docs/benchmarks.md, "PostgreSQL's share of a save,
    counted"): a save of one event (the store's chain tip, the event's
    INSERT, its aggregate's previous hash, its hash row's INSERT) by a
    statement each; a save of several (a group commit's) by two statements
    whatever their number: the events' `INSERT … SELECT` of the arrays, whose
    RETURNING gives each event's position, its aggregate's stored previous
    hash (a correlated subquery) and the chain tip (an uncorrelated one, run
    once), read row by row in the events' order (the order of their
    positions) by a loop computing the hashes (an event's previous hash is
    the save's own earlier event of its aggregate when there is one, as the
    statement's subquery cannot see it; should PostgreSQL ever return the
    rows in another order than it inserted them, which it does not promise
    in writing, the save is refused rather than chained wrongly); then the hash rows' `INSERT …
    SELECT` of the arrays the loop built. The arrays are read by subscript
    over `generate_series` (fewer instructions than `unnest` of four or five
    arrays)."""
    genesis = "0" * 64
    return SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{fn}("
        "ids uuid[], versions bigint[], topics text[], states bytea[], "
        "r_actors text[], r_keys text[], r_fingerprints text[], r_responses text[], "
        "data_keys text[]) "
        "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
        "DECLARE i int := 0; j int; pos bigint; prev text; own text; chained text; "
        "  tip text; positions bigint[]; owns text[]; chains text[]; "
        "  got_id uuid; got_version bigint; "
        "  id_bytes bytea; topic_bytes bytea; data_key text; gone text; "
        "BEGIN "
        "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
        "  LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; "
        "  {check}"
        "  IF cardinality(ids) = 1 THEN "
        "    SELECT h.chain_hash INTO chained FROM {schema}.{hashes} h "
        "      ORDER BY h.position DESC LIMIT 1; "
        "    INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
        "      VALUES (ids[1], versions[1], topics[1], states[1]) "
        "      RETURNING notification_id INTO pos; "
        "    IF versions[1] > 1 THEN "
        "      SELECT h.event_hash INTO prev FROM {schema}.{hashes} h "
        "        WHERE h.originator_id = ids[1] AND h.originator_version = versions[1] - 1; "
        "    END IF; "
        "    {hash_one}"
        "    INSERT INTO {schema}.{hashes} VALUES (pos, ids[1], versions[1], own, chained); "
        "    RETURN NEXT pos; "
        "  ELSIF cardinality(ids) > 1 THEN "
        "    FOR pos, prev, tip, got_id, got_version IN "
        "      INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
        "        SELECT ids[k], versions[k], topics[k], states[k] "
        "        FROM generate_series(1, cardinality(ids)) AS k "
        "        RETURNING notification_id, "
        "          (SELECT h.event_hash FROM {schema}.{hashes} h "
        "            WHERE h.originator_id = {events}.originator_id "
        "            AND h.originator_version = {events}.originator_version - 1), "
        "          (SELECT h.chain_hash FROM {schema}.{hashes} h "
        "            ORDER BY h.position DESC LIMIT 1), "
        "          originator_id, originator_version "
        "    LOOP "
        "      i := i + 1; "
        "      IF got_id <> ids[i] OR got_version <> versions[i] "
        "        OR (i > 1 AND pos <= positions[i - 1]) THEN "
        "        RAISE EXCEPTION 'fieldledger save: RETURNING out of the insert''s order'; "
        "      END IF; "
        "      IF i = 1 THEN chained := tip; END IF; "
        "      FOR j IN REVERSE i - 1 .. 1 LOOP "
        "        IF ids[j] = ids[i] AND versions[j] = versions[i] - 1 THEN "
        "          prev := owns[j]; "
        "          EXIT; "
        "        END IF; "
        "      END LOOP; "
        "      {hash_each}"
        "      positions[i] := pos; owns[i] := own; chains[i] := chained; "
        "      RETURN NEXT pos; "
        "    END LOOP; "
        "    INSERT INTO {schema}.{hashes} "
        "      SELECT positions[k], ids[k], versions[k], owns[k], chains[k] "
        "      FROM generate_series(1, i) AS k; "
        "  END IF; "
        "  IF cardinality(r_actors) > 0 THEN "
        "    INSERT INTO {schema}.{receipts} "
        "      SELECT a, k, f, r::jsonb "
        "      FROM unnest(r_actors, r_keys, r_fingerprints, r_responses) AS u(a, k, f, r); "
        "  END IF; "
        "END; $BODY$"
    ).format(
        schema=Identifier(schema),
        fn=Identifier(SAVE_FUNCTION),
        events=Identifier(events),
        hashes=Identifier(HASHES_TABLE),
        receipts=Identifier(RECEIPTS_TABLE),
        check=_check_keys_sql(schema=schema),
        lock_timeout=SQL(str(int(lock_timeout))),
        hash_one=SQL(_event_hash_sql("1")).format(genesis=Literal(genesis)),
        hash_each=SQL(_event_hash_sql("i")).format(genesis=Literal(genesis)),
    )


#: The attribute of a pooled connection holding its save cursor (`_save_cursor`).
_SAVE_CURSOR = "_fieldledger_save_cursor"


def _save_cursor(conn: psycopg.Connection[DictRow]) -> Cursor[DictRow]:
    """The connection's cursor for saves (`kept_cursor`): psycopg chooses
    each parameter's dumper per cursor (for a list, by looking at its
    elements), and a new cursor per save chose all nine arrays' again: the
    client's instructions per two-event save were 538k, now 380k (callgrind,
    docs/benchmarks.md)."""
    return kept_cursor(conn, _SAVE_CURSOR)


def kept_cursor(conn: psycopg.Connection[Any], name: str) -> Cursor[Any]:
    """A cursor of a pooled connection made once and kept with it, under the
    attribute `name` (`Connection.execute` makes a cursor per call). A pooled
    connection serves one thread at a time, and so does its cursor; it goes
    with the connection (a reference cycle the collector frees when the pool
    drops the connection); a closed one is replaced."""
    curs: Cursor[Any] | None = conn.__dict__.get(name)
    if curs is None or curs.closed:
        curs = conn.cursor()
        setattr(conn, name, curs)
    return curs


def _pg_hash_row(r: HashRow) -> tuple[Any, ...]:
    return (r.position, r.originator_id, r.originator_version, r.event_hash, r.chain_hash)
