"""The command line of contract §2: `token issue` and `serve`.

No test starts a server in-process; one smoke test runs `fieldledger serve` as
a subprocess on a free port, waits for uvicorn to say it has started (no
sleeps), talks to it over a real socket and stops it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fieldledger.api import cli
from fieldledger.api.app import create_app
from fieldledger.application.database import Database
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.application.settings import Settings
from fieldledger.application.tokens import TokenBook, token_id
from fieldledger.domain.facts import Role
from typer.testing import CliRunner

from tests.e2e.scenarios import booking
from tests.servers import free_port

runner = CliRunner()
TOKEN = re.compile(r"fl_[A-Za-z0-9_-]{43}")


def one_line_error(result: Any) -> str:
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fieldledger: ")
    assert "Traceback" not in result.stderr
    return str(lines[0])


def stored_tokens(database_url: str) -> list[dict[str, Any]]:
    ledger = FieldLedger(database_url)
    try:
        db = Database(ledger.recorder)
        TokenBook(db)  # the table exists even when nothing was issued
        with db.transaction(commit=False) as tx:
            return tx.query(f"SELECT * FROM {tx.table('api_tokens')}")
    finally:
        ledger.close()


def test_token_issue_prints_the_token_alone_and_stores_only_its_digest(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", database_url)
    result = runner.invoke(cli.app, ["token", "issue", "--actor", "tech-1", "--role", "technician"])
    assert result.exit_code == 0, result.stderr
    assert TOKEN.fullmatch(result.stdout.rstrip("\n")) and result.stdout.endswith("\n")
    token = result.stdout.strip()
    # stderr says which token, until when, and which database it was written to.
    assert result.stderr.startswith(f"issued {token_id(token)} for tech-1 (technician), expires ")
    assert result.stderr.rstrip().endswith(f"in {database_url.split('?')[0]}") or (
        database_url in result.stderr
    )

    rows = stored_tokens(database_url)
    assert len(rows) == 1
    assert token not in repr(rows)  # never in plain text
    assert rows[0]["token_digest"] == hashlib.sha256(token.encode()).hexdigest()
    assert (rows[0]["actor"], rows[0]["role"]) == ("tech-1", "technician")

    # The token speaks for its actor and role over HTTP.
    app = create_app(Settings(database_url=database_url, background=False))
    with TestClient(app) as client:
        assert app.state.tokens.identify(token) == Caller("tech-1", Role.TECHNICIAN)
        headers = {"Authorization": f"Bearer {token}"}
        missing = "00000000-0000-4000-8000-000000000000"
        assert client.get(f"/work-orders/{missing}", headers=headers).status_code == 404
        assert client.post("/work-orders", json=booking(), headers=headers).status_code == 403


def test_token_issue_refuses_a_bad_role_or_actor_in_one_line(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", sqlite_url)
    result = runner.invoke(cli.app, ["token", "issue", "--actor", "x", "--role", "wizard"])
    line = one_line_error(result)
    assert "wizard" in line and "technician" in line  # says what the roles are
    result = runner.invoke(cli.app, ["token", "issue", "--actor", "  ", "--role", "analyst"])
    assert "actor" in one_line_error(result)
    assert stored_tokens(sqlite_url) == []


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` must refuse before it starts anything."""
    import uvicorn

    def must_not_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("serve started a server")

    monkeypatch.setattr(uvicorn, "run", must_not_run)


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(("url", "says"), [
    ("mysql://u@h/db", "unsupported database URL"),
    ("sqlite:///", "sqlite URL needs a path"),
    ("postgresql://u@h", "needs a host and a database"),
    ("sqlite:////no/such/directory/fieldledger.db", "cannot open the database"),
])  # fmt: skip
def test_serve_refuses_a_bad_database_url_in_one_line(
    url: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", url)
    line = one_line_error(runner.invoke(cli.app, ["serve", "--port", "1"]))
    assert says in line


@pytest.mark.usefixtures("no_server")
def test_serve_never_shows_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.redacted("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert cli.redacted("sqlite:///./fieldledger.db") == "sqlite:///./fieldledger.db"
    # Nothing listens on port 1: the database cannot be reached.
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/x")
    line = one_line_error(runner.invoke(cli.app, ["serve"]))
    assert "cannot open the database" in line and "s3cret" not in line


@pytest.mark.usefixtures("no_server")
def test_serve_refuses_bad_settings_in_one_line(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("FIELDLEDGER_TIMEZONE", "Mars/Olympus_Mons")
    assert "FIELDLEDGER_TIMEZONE" in one_line_error(runner.invoke(cli.app, ["serve"]))
    monkeypatch.delenv("FIELDLEDGER_TIMEZONE")
    monkeypatch.setenv("FIELDLEDGER_POLICY", str(tmp_path / "missing.toml"))
    assert "missing.toml" in one_line_error(runner.invoke(cli.app, ["serve"]))


def test_serve_runs_the_api_until_stopped(tmp_path: Path) -> None:
    executable = shutil.which("fieldledger", path=str(Path(sys.executable).parent))
    assert executable is not None
    port = free_port()
    env = {**os.environ, "FIELDLEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}"}
    issued = subprocess.run(
        [executable, "token", "issue", "--actor", "disp-1", "--role", "dispatcher"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    token = issued.stdout.strip()
    server = subprocess.Popen(
        [executable, "serve", "--port", str(port)],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    watchdog = threading.Timer(60, server.kill)  # bounds the test if it never starts
    watchdog.start()
    try:
        assert server.stderr is not None
        said = []
        for line in server.stderr:
            said.append(line)
            # uvicorn says so once it listens ("Application startup complete"
            # comes before it binds the socket: too early under load).
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("the server stopped before it started: " + "".join(said))
        assert f"API docs at http://localhost:{port}/docs" in said[0]
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/docs").status_code == 200
        r = httpx.post(f"{base}/work-orders", json=booking(),
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 201, r.text
        assert httpx.post(f"{base}/work-orders", json=booking()).status_code == 401
    finally:
        watchdog.cancel()
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()


def test_serve_runs_uvicorn_with_one_write_per_answer_and_time_for_a_starting_worker(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` runs uvicorn's httptools protocol writing each answer in one
    write (tests/e2e/test_one_write.py), without uvicorn's `server` header;
    and uvicorn's supervisor, which kills a worker that does not answer its
    ping in time (5 s by default), waits longer under `serve`, so that workers
    starting on a loaded machine are not killed and restarted without end."""
    import uvicorn
    from fieldledger.api.http_protocol import OneWriteProtocol

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append(kw))
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", sqlite_url)
    result = runner.invoke(cli.app, ["serve", "--port", "1", "--workers", "2"])
    assert result.exit_code == 0, result.stderr
    (options,) = started
    assert options["workers"] == 2
    assert options["timeout_worker_healthcheck"] == cli.WORKER_HEALTHCHECK_SECONDS >= 30
    assert options["http"] is OneWriteProtocol
    assert options["server_header"] is False and options.get("date_header", True)
    assert options["access_log"] is False


def test_without_httptools_serve_leaves_uvicorn_its_own_protocol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httptools is optional for uvicorn (it serves with h11 then): the
    one-write protocol, built on uvicorn's httptools protocol, is not used."""
    import sys

    monkeypatch.setitem(sys.modules, "fieldledger.api.http_protocol", None)
    options = cli.uvicorn_options(workers=1)
    assert "http" not in options
    assert options["server_header"] is False
