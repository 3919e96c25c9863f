"""Where the events live: `FIELDLEDGER_DATABASE_URL` mapped onto the library.

We do not write an event store: the `eventsourcing` library's SQLite and
PostgreSQL recorders are used as they are, extended only so that what must be
written atomically with a command's events is written in the same transaction:
the idempotency receipt of the request that caused them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, StoredEvent, Transcoding
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier


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


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {RECEIPTS_TABLE} ("
            "actor TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
            "response TEXT NOT NULL, PRIMARY KEY (actor, key))",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        receipts: list[Receipt] = kwargs.get("receipts") or []
        if receipts:
            c.executemany(f"INSERT INTO {RECEIPTS_TABLE} VALUES (?, ?, ?, ?)", _rows(receipts))
        return ids

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
        self.receipts_table = Identifier(self.datastore.schema), Identifier(RECEIPTS_TABLE)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                "actor text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
                "response jsonb NOT NULL, PRIMARY KEY (actor, key))"
            ).format(*self.receipts_table)
        )
        self.insert_receipt_statement = SQL("INSERT INTO {}.{} VALUES (%s, %s, %s, %s)").format(
            *self.receipts_table
        )

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Runs in the same transaction as the insert of the events.
        super()._insert_events(curs, stored_events, **kwargs)
        receipts: list[Receipt] = kwargs.get("receipts") or []
        if receipts:
            curs.executemany(self.insert_receipt_statement, _rows(receipts))

    def find_receipt(self, actor: str, key: str) -> Receipt | None:
        with self.datastore.transaction(commit=False) as curs:
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
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT notification_id FROM {}.{} "
                    "WHERE originator_id=%s AND originator_version=%s"
                ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name)),
                (originator_id, version),
            )
            row = curs.fetchone()
        return None if row is None else int(row["notification_id"])
