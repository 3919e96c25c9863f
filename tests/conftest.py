"""Shared fixtures: a clock to pass in, and the two databases every integration
and end-to-end test runs on (SQLite, and the PostgreSQL of
FIELDLEDGER_TEST_DATABASE_URL). Under CI=true an unreachable PostgreSQL fails
the run; elsewhere its tests are skipped with the reason."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_ENV = "FIELDLEDGER_TEST_DATABASE_URL"
#: The master key the tests' stores are sealed under (docs/privacy.md); set for
#: the CLI's subprocesses too. Tests of the key's absence unset it.
TEST_MASTER_KEY = "dGVzdC1tYXN0ZXIta2V5LW9mLWZpZWxkbGVkZ2VyLTE="
os.environ.setdefault("FIELDLEDGER_MASTER_KEY", TEST_MASTER_KEY)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (one per xdist worker)."""
    admin_url = _pg_admin_url()
    if admin_url is None:
        if IN_CI:
            pytest.fail(f"{PG_ENV} is not set under CI=true: the PostgreSQL tests must run")
        pytest.skip(f"{PG_ENV} is not set (the README's test command sets it)")
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_ENV} is unreachable under CI=true: {e}")
        pytest.skip(f"PostgreSQL at {PG_ENV} is unreachable: {e}")
    name = f"fieldledger_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _db = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """A PostgreSQL URL with a schema of its own for this one test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return f"{pg_database}?schema={schema}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fieldledger.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))
