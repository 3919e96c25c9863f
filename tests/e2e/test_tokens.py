"""Tokens expire, can be revoked (by id or by actor) with effect on every worker
within one second, and are stored only as digests: on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fieldledger.api import cli
from fieldledger.application import tokens as tokens_module
from fieldledger.application.database import Database
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.application.tokens import TokenBook, token_id
from fieldledger.domain.facts import Role
from typer.testing import CliRunner

from tests.e2e.conftest import Api

runner = CliRunner()
MISSING = "/work-orders/00000000-0000-4000-8000-000000000000"


class Monotonic:
    """The clock the token cache reads, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    clock = Monotonic()
    monkeypatch.setattr(tokens_module.time, "monotonic", clock)
    return clock


@pytest.fixture
def ledger(database_url: str) -> Iterator[FieldLedger]:
    ledger = FieldLedger(database_url)
    yield ledger
    ledger.close()


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


def test_a_cached_token_expires_on_time(ledger: FieldLedger, monotonic: Monotonic) -> None:
    wall = [datetime.now(UTC)]
    book = TokenBook(Database(ledger.recorder), clock=lambda: wall[0])
    token = book.issue("tech-1", "technician", wall[0], expires_in=timedelta(minutes=5))
    assert book.identify(token) == Caller("tech-1", Role.TECHNICIAN)  # now cached
    wall[0] += timedelta(minutes=5)
    assert book.identify(token) is None


def test_a_revocation_reaches_every_worker_within_a_second(
    ledger: FieldLedger, monotonic: Monotonic
) -> None:
    # Two workers, each with its own token book (and cache), over one database.
    worker, other = (TokenBook(Database(ledger.recorder)) for _ in range(2))
    now = datetime.now(UTC)
    token = worker.issue("disp-1", "dispatcher", now)
    assert worker.identify(token) == Caller("disp-1", Role.DISPATCHER)
    assert other.revoke(token_id(token), now)
    assert other.identify(token) is None  # where it was revoked: at once
    monotonic.now += TokenBook.CACHE_SECONDS  # a second later, on the other worker too
    assert worker.identify(token) is None
    assert not other.revoke(token_id(token), now)  # revoked already


def test_revoking_an_actor_revokes_all_their_tokens(
    ledger: FieldLedger, monotonic: Monotonic
) -> None:
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


def test_the_token_commands(database_url: str, monotonic: Monotonic) -> None:
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
    api: Api, database_url: str, monotonic: Monotonic
) -> None:
    token = api.actor("disp-1", "dispatcher").token
    assert status(api, token) == 404
    assert invoke(database_url, "revoke", token_id(token)).exit_code == 0
    monotonic.now += TokenBook.CACHE_SECONDS
    assert status(api, token) == 401
