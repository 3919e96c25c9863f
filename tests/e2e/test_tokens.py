"""Tokens expire, can be revoked (by id or by actor) with effect on every worker
at once, and are stored only as digests: on SQLite and PostgreSQL.

Each worker remembers the tokens it has read (no query per request while
nothing changes) and forgets them when any process revokes one: PostgreSQL
tells its listener (NOTIFY, delivered after the revocation commits: the tests
wait for the worker to have heard it, never a sleep); SQLite's check reads a
change counter on every call, so there the next request already knows."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fieldledger.api import cli
from fieldledger.application.database import Database
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.application.tokens import TokenBook, token_id
from fieldledger.domain.facts import Role
from typer.testing import CliRunner

from tests.e2e.conftest import Api
from tests.views import wait_until

runner = CliRunner()
MISSING = "/work-orders/00000000-0000-4000-8000-000000000000"


@pytest.fixture
def ledger(database_url: str) -> Iterator[FieldLedger]:
    ledger = FieldLedger(database_url)
    yield ledger
    ledger.close()


def listening(book: TokenBook) -> TokenBook:
    """`book` as a serving process has it: hearing of revocations (PostgreSQL:
    once its listener is connected)."""
    book.listen()
    wait_until(lambda: book.listening)
    return book


@pytest.fixture
def books(ledger: FieldLedger) -> Iterator[list[TokenBook]]:
    """Two workers' token books (each with its own cache) over one database."""
    made = [listening(TokenBook(Database(ledger.recorder))) for _ in range(2)]
    yield made
    for book in made:
        book.close()


def heard(book: TokenBook, since: int) -> None:
    """Wait until `book` has cleared its cache after `since` (PostgreSQL: the
    notification is delivered after the commit; SQLite: the next check reads the
    counter, so nothing to wait for)."""
    if book.db.dialect == "postgres":
        wait_until(lambda: book.invalidations > since, timeout=5)


def status(api: Api, token: str) -> int:
    return int(api.client.get(MISSING, headers={"Authorization": f"Bearer {token}"}).status_code)


def test_an_expired_token_is_401(api: Api) -> None:
    tokens: TokenBook = api.app.state.tokens
    now = datetime.now(UTC)
    fresh = tokens.issue("disp-1", "dispatcher", now, expires_in=timedelta(hours=1))
    stale = tokens.issue("disp-1", "dispatcher", now - timedelta(hours=2),
                         expires_in=timedelta(hours=1))  # fmt: skip
    forever = tokens.issue("disp-1", "dispatcher", now - timedelta(days=900), expires_in=None)
    assert (status(api, fresh), status(api, stale), status(api, forever)) == (404, 401, 404)


def test_a_cached_token_expires_on_time(ledger: FieldLedger) -> None:
    wall = [datetime.now(UTC)]
    book = listening(TokenBook(Database(ledger.recorder), clock=lambda: wall[0]))
    try:
        token = book.issue("tech-1", "technician", wall[0], expires_in=timedelta(minutes=5))
        assert book.identify(token) == Caller("tech-1", Role.TECHNICIAN)  # now cached
        lookups = book.lookups
        assert book.identify(token) == Caller("tech-1", Role.TECHNICIAN)
        assert book.lookups == lookups  # from the cache
        wall[0] += timedelta(minutes=5)
        assert book.identify(token) is None
    finally:
        book.close()


def test_a_revocation_reaches_every_worker_at_once(books: list[TokenBook]) -> None:
    worker, other = books
    now = datetime.now(UTC)
    token = worker.issue("disp-1", "dispatcher", now)
    assert worker.identify(token) == Caller("disp-1", Role.DISPATCHER)
    lookups = worker.lookups
    for _ in range(20):
        assert worker.identify(token) == Caller("disp-1", Role.DISPATCHER)
    assert worker.lookups == lookups  # nothing changed: no query per check
    since = worker.invalidations
    assert other.revoke(token_id(token), now)
    assert other.identify(token) is None  # where it was revoked: at once
    heard(worker, since)
    assert worker.identify(token) is None  # and on the other worker, its cache warm
    assert not other.revoke(token_id(token), now)  # revoked already


def test_revoking_an_actor_revokes_all_their_tokens(ledger: FieldLedger) -> None:
    book = TokenBook(Database(ledger.recorder))
    now = datetime.now(UTC)
    theirs = [book.issue("tech-1", "technician", now) for _ in range(2)]
    mine = book.issue("tech-2", "technician", now)
    assert book.revoke_actor("tech-1", now) == 2
    assert [book.identify(t) for t in theirs] == [None, None]
    assert book.identify(mine) == Caller("tech-2", Role.TECHNICIAN)
    statuses = {r.token_id: r.status(now) for r in book.records()}
    assert statuses == {token_id(theirs[0]): "revoked", token_id(theirs[1]): "revoked",
                        token_id(mine): "active"}  # fmt: skip


def test_tokens_of_an_earlier_version_keep_working(ledger: FieldLedger) -> None:
    """A table without ids, expiry or revocation gains them; its tokens stay valid."""
    database = Database(ledger.recorder)
    token = "fl_an-old-token"
    with database.transaction() as tx:
        tx.execute(
            f"CREATE TABLE {tx.table('api_tokens')} (token_digest TEXT PRIMARY KEY, "
            "actor TEXT NOT NULL, role TEXT NOT NULL, issued_at TEXT NOT NULL)"
        )
        tx.execute(f"INSERT INTO {tx.table('api_tokens')} VALUES (?, ?, ?, ?)",
                   (hashlib.sha256(token.encode()).hexdigest(), "ana-1", "analyst",
                    "2026-01-01T00:00:00+00:00"))  # fmt: skip
    book = TokenBook(database)
    assert book.identify(token) == Caller("ana-1", Role.ANALYST)
    (record,) = book.records()
    assert (record.token_id, record.expires_at) == (token_id(token), None)


def invoke(database_url: str, *args: str) -> Any:
    return runner.invoke(cli.app, ["token", *args], env={"FIELDLEDGER_DATABASE_URL": database_url})


def test_the_token_commands(database_url: str) -> None:
    issued = invoke(database_url, "issue", "--actor", "sup-1", "--role", "supervisor",
                    "--expires-in", "30d")  # fmt: skip
    assert issued.exit_code == 0, issued.stderr
    token = issued.stdout.strip()
    assert f"issued {token_id(token)} for sup-1 (supervisor), expires " in issued.stderr
    expected = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    assert expected in issued.stderr and "in " in issued.stderr

    listed = invoke(database_url, "list")
    assert listed.exit_code == 0, listed.stderr
    assert token_id(token) in listed.stdout and "active" in listed.stdout
    assert token not in listed.stdout  # never the token itself

    revoked = invoke(database_url, "revoke", token_id(token))
    assert revoked.exit_code == 0 and f"revoked {token_id(token)}" in revoked.stdout
    assert "revoked" in invoke(database_url, "list").stdout
    again = invoke(database_url, "revoke", token_id(token))
    assert again.exit_code == 1 and again.stderr.startswith("fieldledger: no active token")

    invoke(database_url, "issue", "--actor", "tech-1", "--role", "technician")
    invoke(database_url, "issue", "--actor", "tech-1", "--role", "technician")
    by_actor = invoke(database_url, "revoke", "--actor", "tech-1")
    assert by_actor.exit_code == 0 and "revoked 2 tokens of tech-1" in by_actor.stdout

    for bad, says in [(["issue", "--actor", "x", "--role", "analyst", "--expires-in", "soon"],
                       "--expires-in"),
                      (["issue", "--actor", "x y", "--role", "analyst"], "actor"),
                      (["revoke"], "TOKEN_ID"),
                      (["revoke", "tok_1", "--actor", "x"], "one of them")]:  # fmt: skip
        result = invoke(database_url, *bad)
        assert result.exit_code != 0 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and says in result.stderr, result.stderr


def test_a_token_revoked_by_the_cli_is_refused_by_the_service(
    api: Api, database_url: str
) -> None:
    """The CLI, a process of its own, revokes; the service's very next request
    after it heard of it (PostgreSQL) or at once (SQLite) is 401, while before,
    its warm cache answered every request without reading the token."""
    tokens: TokenBook = api.app.state.tokens
    wait_until(lambda: tokens.listening)
    token = api.actor("disp-1", "dispatcher").token
    assert status(api, token) == 404
    lookups = tokens.lookups
    assert [status(api, token) for _ in range(10)] == [404] * 10
    assert tokens.lookups == lookups  # the cache is used: no token query per request
    since = tokens.invalidations
    executable = shutil.which("fieldledger", path=str(Path(sys.executable).parent))
    assert executable is not None
    revoked = subprocess.run(
        [executable, "token", "revoke", token_id(token)], capture_output=True, text=True,
        env={**os.environ, "FIELDLEDGER_DATABASE_URL": database_url}, check=False,
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr
    heard(tokens, since)
    assert status(api, token) == 401


def listener_backends(pg_database: str) -> list[int]:
    """The token listeners connected to the test database (one test at a time
    uses it)."""
    with psycopg.connect(pg_database) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s", (TokenBook.LISTENER_NAME,)
        ).fetchall()  # fmt: skip
    return [int(r[0]) for r in rows]


def terminate_listener(pg_database: str) -> None:
    (pid,) = listener_backends(pg_database)
    with psycopg.connect(pg_database) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_while_the_listener_is_down_nothing_is_remembered(
    pg_url: str, pg_database: str
) -> None:
    ledger = FieldLedger(pg_url)
    worker, other = (TokenBook(Database(ledger.recorder)) for _ in range(2))
    try:
        now = datetime.now(UTC)
        token = worker.issue("disp-1", "dispatcher", now)
        # Before its listener is connected, a book reads the token every time.
        assert [worker.identify(token) for _ in range(3)] == [Caller("disp-1", Role.DISPATCHER)] * 3
        assert worker.lookups == 3
        worker.RETRY_SECONDS = 60  # stays down once its connection is lost
        listening(worker)
        worker.identify(token)
        lookups = worker.lookups
        worker.identify(token)
        assert worker.lookups == lookups  # listening: cached
        terminate_listener(pg_database)
        wait_until(lambda: not worker.listening)
        lookups = worker.lookups
        worker.identify(token)
        worker.identify(token)
        assert worker.lookups == lookups + 2  # down: a query per check
        assert other.revoke(token_id(token), now)  # no notification can reach it
        assert worker.identify(token) is None  # yet the revocation holds at once
    finally:
        worker.close()
        other.close()
        ledger.close()


@pytest.mark.postgres
def test_the_listener_reconnects_and_forgets_what_it_may_have_missed(
    pg_url: str, pg_database: str
) -> None:
    ledger = FieldLedger(pg_url)
    worker = TokenBook(Database(ledger.recorder))
    try:
        worker.RETRY_SECONDS = 0.05
        listening(worker)
        token = worker.issue("disp-1", "dispatcher", datetime.now(UTC))
        worker.identify(token)
        lookups = worker.lookups
        worker.identify(token)
        assert worker.lookups == lookups
        since = worker.invalidations
        terminate_listener(pg_database)
        # Lost (one clearing), then connected again (another).
        wait_until(lambda: worker.invalidations >= since + 2 and worker.listening)
        assert len(listener_backends(pg_database)) == 1
        worker.identify(token)
        assert worker.lookups == lookups + 1  # read again after the reconnect
        worker.identify(token)
        assert worker.lookups == lookups + 1  # and cached again
    finally:
        worker.close()
        ledger.close()
