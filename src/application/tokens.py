"""API tokens: issued by the CLI, presented as `Authorization: Bearer TOKEN`.

Only a SHA-256 digest of each token is stored. Tokens are 256 random bits, so
a fast digest is enough (a slow password hash guards low-entropy secrets).

A token has a public id (`tok_` and 12 hex digits of its digest: it names the
token in `token list` and `token revoke` without revealing it), an expiry
(`expires_at`, or none) and may be revoked. `TokenBook.identify` is the one
check of a request's token. It remembers the tokens it has read, checks the
expiry against the clock on every call, and forgets them all the moment any
process revokes a token:

- PostgreSQL: a revocation sends `NOTIFY` in the transaction that records it;
  each serving process listens on a connection of its own (`TokenBook.listen`,
  a thread) and clears its cache when told. While that connection is down (and
  before it is up) nothing is remembered: every request reads its token's row.
  On (re)connecting the cache is cleared, since notifications may have been
  missed meanwhile.
- SQLite: a revocation also bumps a counter row in the same transaction; each
  check reads that counter over a connection of the book's own (a few
  microseconds, outside the library's reader-writer lock) and clears the cache
  when it moved. An in-memory database is one process's alone.

A lookup that raced a revocation is answered but not remembered (the cache's
generation moved while it read).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import select
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from fieldledger.application.database import Database, Tx
from fieldledger.application.ledger import Caller
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role, require_id
from psycopg.sql import SQL, Identifier

TOKEN_PREFIX = "fl_"
ID_PREFIX = "tok_"
#: How long a token is valid unless `--expires-in` says otherwise.
DEFAULT_LIFETIME = timedelta(days=90)

log = logging.getLogger("fieldledger")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """The public id of a token (also of its stored digest)."""
    return ID_PREFIX + digest(token)[:12]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TokenRecord:
    """What is stored of a token: never the token itself."""

    token_id: str
    actor: str
    role: str
    issued_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class _Known:
    caller: Caller
    expires_at: datetime | None


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def notify_channel(schema: str) -> str:
    """The PostgreSQL channel a schema's revocations are announced on (at most 63
    bytes: a longer schema name is hashed)."""
    channel = f"fieldledger_tokens_{schema}"
    if len(channel.encode()) > 63:
        channel = "fieldledger_tokens_" + hashlib.sha256(schema.encode()).hexdigest()[:40]
    return channel


class TokenBook:
    """The token store: `issue`, `identify`, `revoke`, `revoke_actor`, `records`.

    `lookups` counts the token rows `identify` read, `invalidations` how often
    the cache was cleared (both for tests and operators)."""

    #: Seconds the listener waits for a notification before it checks that its
    #: connection is alive (a dead one is found within this, and reconnects).
    PING_SECONDS = 10.0
    #: Seconds between attempts to (re)connect the listener.
    RETRY_SECONDS = 1.0
    #: Tokens remembered at most (the cache starts over beyond it).
    CACHE_SIZE = 10_000
    #: The listener's `application_name` (pg_stat_activity shows it).
    LISTENER_NAME = "fieldledger token listener"

    def __init__(self, database: Database, clock: Callable[[], datetime] = _utc_now) -> None:
        self.db = database
        self.clock = clock
        self.lookups = 0
        self.invalidations = 0
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._listener: _Listener | None = None
        self._counter: _ChangeCounter | None = None
        # Whether this process hears of every revocation: on PostgreSQL only
        # while the listener's connection is up; on SQLite through the counter.
        self._trusted = False
        with self.db.transaction() as tx:
            table = tx.table("api_tokens")
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                "token_digest TEXT PRIMARY KEY, actor TEXT NOT NULL, role TEXT NOT NULL, "
                "issued_at TEXT NOT NULL, token_id TEXT, expires_at TEXT, revoked_at TEXT)"
            )
            _add_missing_columns(tx, table)
            changes = tx.table("api_token_changes")
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {changes} "
                "(id INTEGER PRIMARY KEY, changes INTEGER NOT NULL)"
            )
            tx.execute(f"INSERT INTO {changes} (id, changes) VALUES (1, 0) ON CONFLICT DO NOTHING")
        datastore = self.db.datastore
        if isinstance(datastore, SQLiteDatastore):
            if datastore.pool.is_sqlite_memory_mode:
                self._trusted = True  # one process's alone: `_forget` is enough
            else:
                self._counter = _ChangeCounter(datastore.pool.db_name, self)
                self._trusted = True

    def listen(self) -> None:
        """PostgreSQL: start the thread that hears of revocations (a serving
        process calls this; until it is connected, nothing is remembered). On
        SQLite, nothing to start."""
        datastore = self.db.datastore
        if isinstance(datastore, PostgresDatastore) and self._listener is None:
            self._listener = _Listener(datastore, notify_channel(self.db.schema), self)
            self._listener.start()

    @property
    def listening(self) -> bool:
        """Whether the cache is in use (PostgreSQL: the listener is connected)."""
        return self._trusted

    def close(self) -> None:
        """Stop the listener and close the counter's connection."""
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._counter is not None:
            self._counter.close()
            self._counter = None

    def issue(
        self,
        actor: str,
        role: str,
        now: datetime,
        *,
        expires_in: timedelta | None = DEFAULT_LIFETIME,
    ) -> str:
        """A new token for `actor` in `role`, valid for `expires_in` (None: no expiry)."""
        actor = require_id("actor", actor)
        try:
            checked = Role(role)
        except ValueError:
            raise InvalidCommand(
                "role", f"unknown role {role!r}; roles: " + ", ".join(r.value for r in Role)
            ) from None
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidCommand("expires_in", "must be a positive interval")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = None if expires_in is None else now.astimezone(UTC) + expires_in
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {tx.table('api_tokens')} (token_digest, actor, role, issued_at, "
                "token_id, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (digest(token), actor, checked.value, now.astimezone(UTC).isoformat(),
                 token_id(token), None if expires_at is None else expires_at.isoformat()),
            )  # fmt: skip
        return token

    def knows_staff(self, staff_id: str) -> bool:
        """Whether `staff_id` holds a valid token (neither revoked nor expired) of a
        staff role (not a client app, not the system): the staff a record may be
        handed over to."""
        with self.db.transaction(commit=False) as tx:
            rows = tx.query(
                f"SELECT expires_at FROM {tx.table('api_tokens')} WHERE actor = ? "
                "AND role NOT IN ('client_app', 'system') AND revoked_at IS NULL",
                (staff_id,),
            )
        now = self.clock()
        return any(
            (expires := _instant(r["expires_at"])) is None or expires > now for r in rows
        )

    def identify(self, token: str) -> Caller | None:
        """Who the token speaks for, or None: unknown, expired or revoked."""
        return self.identify_digest(digest(token))

    def remembered(self, token: str) -> Caller | None:
        """Who the token speaks for when that is known without a query (a
        remembered, unexpired token on PostgreSQL); None otherwise, when only
        `identify` can tell. For callers on an event loop, which must not wait
        on the database (SQLite's change counter is a query, so nothing is
        answered from memory there)."""
        if self._counter is not None:
            return None
        known = self._known.get(digest(token))
        if known is None or (known.expires_at is not None and known.expires_at <= self.clock()):
            return None
        return known.caller

    def identify_digest(self, key: str) -> Caller | None:
        """The same, by the token's digest (the console's sessions keep only the
        digest of the token they were opened with)."""
        if self._counter is not None:
            self._counter.observe()
        known = self._known.get(key)
        if known is None:
            known = self._look_up(key)
            if known is None:
                return None
        if known.expires_at is not None and known.expires_at <= self.clock():
            return None
        return known.caller

    def _look_up(self, key: str) -> _Known | None:
        generation = self._generation  # read before the row: see `_invalidate`
        with self.db.transaction(commit=False) as tx:
            tx.execute(
                f"SELECT actor, role, expires_at FROM {tx.table('api_tokens')} "
                "WHERE token_digest = ? AND revoked_at IS NULL",
                (key,),
            )
            row = tx.fetchone()
        with self._lock:
            self.lookups += 1
            if row is None:
                self._known.pop(key, None)
                return None
            known = _Known(Caller(row["actor"], Role(row["role"])), _instant(row["expires_at"]))
            # Remembered only if no revocation was heard of since the row was
            # read (it may predate the revocation) and revocations are heard.
            if self._trusted and self._generation == generation:
                if len(self._known) >= self.CACHE_SIZE:
                    self._known.clear()
                self._known[key] = known
        return known

    def revoke(self, token_id: str, now: datetime) -> bool:
        """Revoke one token by its id; False if no unrevoked token has it."""
        with self.db.transaction() as tx:
            table = tx.table("api_tokens")
            changed = int(tx.scalar(
                f"SELECT COUNT(*) FROM {table} WHERE token_id = ? AND revoked_at IS NULL",
                (token_id,),
            ))  # fmt: skip
            tx.execute(
                f"UPDATE {table} SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                (now.astimezone(UTC).isoformat(), token_id),
            )
            if changed:
                _announce(tx)
        self._invalidate()
        return changed > 0

    def revoke_actor(self, actor: str, now: datetime) -> int:
        """Revoke every token of `actor`; how many were revoked."""
        with self.db.transaction() as tx:
            table = tx.table("api_tokens")
            changed = int(tx.scalar(
                f"SELECT COUNT(*) FROM {table} WHERE actor = ? AND revoked_at IS NULL", (actor,)
            ))  # fmt: skip
            tx.execute(
                f"UPDATE {table} SET revoked_at = ? WHERE actor = ? AND revoked_at IS NULL",
                (now.astimezone(UTC).isoformat(), actor),
            )
            if changed:
                _announce(tx)
        self._invalidate()
        return changed

    def records(self) -> list[TokenRecord]:
        """Every token ever issued, oldest first (ids, never the tokens)."""
        with self.db.transaction(commit=False) as tx:
            rows = tx.query(
                f"SELECT token_id, actor, role, issued_at, expires_at, revoked_at "
                f"FROM {tx.table('api_tokens')} ORDER BY issued_at, token_id"
            )
        return [
            TokenRecord(
                token_id=r["token_id"], actor=r["actor"], role=r["role"],
                issued_at=datetime.fromisoformat(r["issued_at"]),
                expires_at=_instant(r["expires_at"]), revoked_at=_instant(r["revoked_at"]),
            )
            for r in rows
        ]

    def _invalidate(self, *, trusted: bool | None = None) -> None:
        """Forget every token (a revocation was heard of, or may have been missed);
        `trusted`: whether revocations are heard from now on."""
        with self._lock:
            self._generation += 1
            self._known.clear()
            self.invalidations += 1
            if trusted is not None:
                self._trusted = trusted


def _announce(tx: Tx) -> None:
    """Tell every process of a revocation, in the transaction that records it:
    the counter SQLite's books read, and PostgreSQL's NOTIFY (sent at commit)."""
    tx.execute(f"UPDATE {tx.table('api_token_changes')} SET changes = changes + 1 WHERE id = 1")
    if tx.dialect == "postgres":
        tx.execute("SELECT pg_notify(?, 'revoked')", (notify_channel(tx.schema),))


class _ChangeCounter:
    """SQLite: the revocation counter, read over a connection of its own."""

    def __init__(self, path: str, book: TokenBook) -> None:
        self._path = path
        self._book = book
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._seen: int | None = None

    def observe(self) -> None:
        """Clear the book's cache if the counter moved (or cannot be read)."""
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = sqlite3.connect(
                        self._path, check_same_thread=False, isolation_level=None
                    )
                row = self._connection.execute(
                    "SELECT changes FROM api_token_changes WHERE id = 1"
                ).fetchone()
                seen = None if row is None else int(row[0])
            except sqlite3.Error:
                seen = None
            moved = seen is None or seen != self._seen
            self._seen = seen
        if moved:
            self._book._invalidate(trusted=seen is not None)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class _Listener:
    """PostgreSQL: a thread on a connection of its own, `LISTEN`ing for
    revocations; it clears the book's cache on each, and on every (re)connect."""

    def __init__(self, datastore: PostgresDatastore, channel: str, book: TokenBook) -> None:
        pool = datastore.pool
        conninfo, kwargs = pool.conninfo, pool.kwargs  # as the library's pool connects
        self._conninfo = conninfo if isinstance(conninfo, str) else conninfo()
        given = kwargs() if callable(kwargs) else dict(kwargs or {})
        self._kwargs = {k: v for k, v in given.items() if k != "row_factory"}
        self._password = pool.get_password_func
        self._channel = channel
        self._book = book
        self._stopping = threading.Event()
        # Written to by `stop`: wakes the thread from its wait at once.
        self._wake, self._waker = socket.socketpair()
        self._thread = threading.Thread(
            target=self._run, name="fieldledger-token-listener", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._waker.send(b"x")
        self._thread.join(timeout=5)
        self._wake.close()
        self._waker.close()

    def _run(self) -> None:
        warned = False  # once per outage, not once per attempt
        while not self._stopping.is_set():
            try:
                self._listen()
            except (psycopg.Error, OSError) as e:
                if self._book.listening or not warned:  # it was up: a new outage
                    log.warning("token listener: %s (tokens are read on every request "
                                "until it reconnects)", e)  # fmt: skip
                warned = True
            finally:
                self._book._invalidate(trusted=False)
            self._stopping.wait(self._book.RETRY_SECONDS)

    def _listen(self) -> None:
        kwargs = {"application_name": self._book.LISTENER_NAME, **self._kwargs}
        if self._password is not None:
            kwargs["password"] = self._password()
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5,
                             **kwargs) as connection:  # fmt: skip
            connection.execute(SQL("LISTEN {}").format(Identifier(self._channel)))
            # Revocations committed before LISTEN were not announced to us:
            # forget everything, and remember from now on.
            self._book._invalidate(trusted=True)
            while not self._stopping.is_set():
                ready, _, _ = select.select(
                    [connection.fileno(), self._wake.fileno()], [], [], self._book.PING_SECONDS
                )
                if self._stopping.is_set():
                    return
                if not ready:  # quiet: is the connection still there?
                    connection.execute("SELECT 1")
                    continue
                for _ in connection.notifies(timeout=0):  # what has arrived
                    self._book._invalidate()


def _add_missing_columns(tx: Tx, table: str) -> None:
    """Tables of earlier versions had no id, expiry or revocation: add them. Their
    tokens keep working, without an expiry, and get the id of their digest."""
    if tx.dialect == "sqlite":
        present = {r["name"] for r in tx.query(f"PRAGMA table_info({table})")}
    else:
        present = {r["column_name"] for r in tx.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = 'api_tokens'", (tx.schema,))}  # fmt: skip
    for column in ("token_id", "expires_at", "revoked_at"):
        if column not in present:
            tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
    if "token_id" not in present:
        tx.execute(
            f"UPDATE {table} SET token_id = '{ID_PREFIX}' || substr(token_digest, 1, 12) "
            "WHERE token_id IS NULL"
        )
