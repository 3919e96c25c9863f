"""End-to-end: the real FastAPI app over HTTP (TestClient), on SQLite and PostgreSQL.

Background projectors are off: tests bring read models up to date with
`api.catch_up()` — waiting on the tracked position, never on a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fieldledger.api.app import create_app
from fieldledger.application.database import Database
from fieldledger.application.settings import Settings
from fieldledger.application.tokens import TokenBook


class Actor:
    """A client holding one token: `actor.post(path, json)` with its Authorization."""

    def __init__(self, client: TestClient, token: str, actor: str, role: str) -> None:
        self.client = client
        self.token = token
        self.actor = actor
        self.role = role
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, json: Any = None, **headers: str) -> Any:
        return self.client.post(path, json=json, headers={**self.headers, **headers})

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers)


class Api:
    def __init__(self, client: TestClient, app: FastAPI) -> None:
        self.client = client
        self.app = app

    def actor(self, actor: str, role: str) -> Actor:
        tokens: TokenBook = self.app.state.tokens
        return Actor(self.client, tokens.issue(actor, role, datetime.now(UTC)), actor, role)

    def catch_up(self) -> None:
        self.app.state.projections.catch_up_all()

    def event_count(self) -> int:
        """How many events the store holds (a count: PostgreSQL's positions have gaps
        where a transaction was rolled back)."""
        recorder = self.app.state.ledger.recorder
        with Database(recorder).transaction(commit=False) as tx:
            table = tx.table(recorder.events_table_name)
            return int(tx.scalar(f"SELECT COUNT(*) FROM {table}"))

    def head(self) -> int:
        """The position of the last event in the store (what X-Position speaks of)."""
        return int(self.app.state.ledger.recorder.max_notification_id() or 0)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The scenarios replay fixed dates of autumn 2026 as history, as an operator
    # importing it would (FIELDLEDGER_MAX_BACKDATE=none); the bound itself is
    # tested with its default in test_hostile_input.py.
    return Settings(
        database_url=database_url, background=False, sweep_interval=0, max_backdate="none"
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, app)
