"""API tokens: issued by the CLI, presented as `Authorization: Bearer TOKEN`.

Only a SHA-256 digest of each token is stored. Tokens are 256 random bits, so
a fast digest is enough (a slow password hash guards low-entropy secrets).

A token has a public id (`tok_` and 12 hex digits of its digest: it names the
token in `token list` and `token revoke` without revealing it), an expiry
(`expires_at`, or none) and may be revoked. `TokenBook.identify` is the one
check of a request's token: it remembers a token for at most `CACHE_SECONDS`
(1 s), so a revocation by any process takes effect on every worker within a
second, and checks the expiry against the clock on every call.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from fieldledger.application.database import Database, Tx
from fieldledger.application.ledger import Caller
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role, require_id

TOKEN_PREFIX = "fl_"
ID_PREFIX = "tok_"
#: How long a token is valid unless `--expires-in` says otherwise.
DEFAULT_LIFETIME = timedelta(days=90)


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
    checked_until: float


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class TokenBook:
    """The token store: `issue`, `identify`, `revoke`, `revoke_actor`, `records`."""

    #: Seconds a token's row is remembered without asking the database again:
    #: the longest a revocation takes to reach a worker.
    CACHE_SECONDS = 1.0

    def __init__(self, database: Database, clock: Callable[[], datetime] = _utc_now) -> None:
        self.db = database
        self.clock = clock
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()
        with self.db.transaction() as tx:
            table = tx.table("api_tokens")
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                "token_digest TEXT PRIMARY KEY, actor TEXT NOT NULL, role TEXT NOT NULL, "
                "issued_at TEXT NOT NULL, token_id TEXT, expires_at TEXT, revoked_at TEXT)"
            )
            _add_missing_columns(tx, table)

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

    def identify(self, token: str) -> Caller | None:
        """Who the token speaks for, or None: unknown, expired or revoked."""
        key = digest(token)
        moment = time.monotonic()
        known = self._known.get(key)
        if known is None or known.checked_until <= moment:
            known = self._look_up(key, moment)
            if known is None:
                return None
        if known.expires_at is not None and known.expires_at <= self.clock():
            return None
        return known.caller

    def _look_up(self, key: str, moment: float) -> _Known | None:
        with self.db.transaction(commit=False) as tx:
            tx.execute(
                f"SELECT actor, role, expires_at FROM {tx.table('api_tokens')} "
                "WHERE token_digest = ? AND revoked_at IS NULL",
                (key,),
            )
            row = tx.fetchone()
        with self._lock:
            if row is None:
                self._known.pop(key, None)
                return None
            if len(self._known) > 10_000:
                self._known.clear()
            known = _Known(Caller(row["actor"], Role(row["role"])), _instant(row["expires_at"]),
                           moment + self.CACHE_SECONDS)  # fmt: skip
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
        self._forget()
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
        self._forget()
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

    def _forget(self) -> None:
        """This process's revocations take effect at once here (others: within 1 s)."""
        with self._lock:
            self._known.clear()


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
