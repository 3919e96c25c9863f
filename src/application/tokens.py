"""API tokens: issued by the CLI, presented as `Authorization: Bearer TOKEN`.

Only a SHA-256 digest of each token is stored. Tokens are 256 random bits, so
a fast digest is enough (a slow password hash guards low-entropy secrets).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime

from fieldledger.application.database import Database
from fieldledger.application.ledger import Caller
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Role, require_text

TOKEN_PREFIX = "fl_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    #: Seconds a known token is remembered without asking the database again.
    CACHE_SECONDS = 60.0

    def __init__(self, database: Database) -> None:
        self.db = database
        self._known: dict[str, tuple[Caller, float]] = {}
        self._lock = threading.Lock()
        with self.db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {tx.table('api_tokens')} ("
                "token_digest TEXT PRIMARY KEY, actor TEXT NOT NULL, role TEXT NOT NULL, "
                "issued_at TEXT NOT NULL)"
            )

    def issue(self, actor: str, role: str, now: datetime) -> str:
        actor = require_text("actor", actor, max_length=200)
        try:
            checked = Role(role)
        except ValueError:
            raise InvalidCommand(
                "role", f"unknown role {role!r}; roles: " + ", ".join(r.value for r in Role)
            ) from None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO {tx.table('api_tokens')} VALUES (?, ?, ?, ?)",
                (digest(token), actor, checked.value, now.isoformat()),
            )
        return token

    def identify(self, token: str) -> Caller | None:
        return self.identify_digest(digest(token))

    def identify_digest(self, key: str) -> Caller | None:
        """The caller of the token with this digest (the console's sessions keep
        only the digest of the token they were opened with)."""
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and known[1] > now:
            return known[0]
        with self.db.transaction(commit=False) as tx:
            tx.execute(
                f"SELECT actor, role FROM {tx.table('api_tokens')} WHERE token_digest = ?",
                (key,),
            )
            row = tx.fetchone()
        if row is None:
            return None
        caller = Caller(row["actor"], Role(row["role"]))
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[key] = (caller, now + self.CACHE_SECONDS)
        return caller
