"""Console sessions: an API token exchanged for a session cookie.

The browser never keeps the token. Signing in stores a session row (only
digests: of the session id and of the token it was opened with) and sets a
cookie holding the random session id: `HttpOnly`, `SameSite=Strict`, `Path=/console`,
`Secure` when the request came over TLS. Every request re-checks the token in
the token book, so a token revoked or expired after sign-in ends the session at
once. Each session has its own CSRF secret, sent back by every form as a hidden
field (and by the console's scripts as `X-CSRF-Token`); a form without the
right one is refused. Sign-out deletes the row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fieldledger.application.database import Database
from fieldledger.application.ledger import Caller
from fieldledger.application.tokens import TokenBook, digest
from fieldledger.domain.facts import Role

COOKIE = "fl_session"
TABLE = "console_sessions"
#: A session ends this long after sign-in, whatever the token's own life.
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf: str
    expires_at: datetime

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given, self.csrf)


class SessionBook:
    def __init__(self, database: Database, tokens: TokenBook) -> None:
        self.db = database
        self.tokens = tokens
        with self.db.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {tx.table(TABLE)} ("
                "session_digest TEXT PRIMARY KEY, token_digest TEXT NOT NULL, "
                "csrf TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL)"
            )

    def open(self, token: str, now: datetime) -> tuple[str, Session] | None:
        """A new session for a valid token: (the cookie's value, the session); None
        for a token the token book does not know (or no longer honours)."""
        caller = self.tokens.identify(token.strip())
        if caller is None:
            return None
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + LIFETIME
        with self.db.transaction() as tx:
            tx.execute(f"DELETE FROM {tx.table(TABLE)} WHERE expires_at < ?", (now.isoformat(),))
            tx.execute(
                f"INSERT INTO {tx.table(TABLE)} VALUES (?, ?, ?, ?, ?)",
                (digest(session_id), digest(token.strip()), csrf, now.isoformat(),
                 expires.isoformat()),
            )  # fmt: skip
        return session_id, Session(caller, csrf, expires)

    def find(self, session_id: str | None, now: datetime) -> Session | None:
        if not session_id:
            return None
        with self.db.transaction(commit=False) as tx:
            tx.execute(
                f"SELECT token_digest, csrf, expires_at FROM {tx.table(TABLE)} "
                "WHERE session_digest = ?",
                (digest(session_id),),
            )
            row = tx.fetchone()
        if row is None:
            return None
        expires = datetime.fromisoformat(row["expires_at"])
        if expires <= now:
            return None
        caller = self.tokens.identify_digest(row["token_digest"])
        if caller is None:  # the token was revoked or has expired: so has the session
            return None
        return Session(caller, row["csrf"], expires)

    def close(self, session_id: str | None) -> None:
        if not session_id:
            return
        with self.db.transaction() as tx:
            tx.execute(
                f"DELETE FROM {tx.table(TABLE)} WHERE session_digest = ?", (digest(session_id),)
            )


def fingerprint(text: str) -> str:
    """A short stable digest (for ETags of fragments)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Who may sign in to the console at all (client apps and the system act over the API).
CONSOLE_ROLES = frozenset({Role.SUPERVISOR, Role.ANALYST, Role.DISPATCHER, Role.TECHNICIAN})
