"""The command line of docs/privacy.md: the master key at start-up, `customers
erase`, `keys rotate-master`, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from fieldledger.api import cli
from fieldledger.api.app import create_app
from fieldledger.application.ledger import FieldLedger
from fieldledger.application.personal_data import (
    MasterKeyError,
    new_master_key_text,
    read_key_file,
)
from fieldledger.application.settings import Settings
from fieldledger.domain.work_orders import WorkOrder
from typer.testing import CliRunner

from tests.e2e.test_cli import one_line_error
from tests.integration.field import Clock, Field, utc
from tests.store_dump import dump_database, found_in

runner = CliRunner()
ZHANG = ["张三", "13800000000", "北京"]


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The master key in a file, as production would keep it."""
    path = tmp_path / "master.key"
    path.write_text(new_master_key_text() + "\n")
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY", raising=False)
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY_FILE", str(path))
    return path


def book_and_accept(database_url: str) -> str:
    ledger = FieldLedger(database_url)
    try:
        field = Field(ledger, Clock(utc("2026-10-01T02:00")))
        order = field.book(utc("2026-10-01T02:00"))
        field.arrive(order, utc("2026-10-01T04:00"))
        field.finish(order, utc("2026-10-01T05:00"))
        return str(order)
    finally:
        ledger.close()


def run(*args: str) -> str:
    result = runner.invoke(cli.app, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_erase_from_the_command_line_then_verify_and_rebuild(
    database_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", database_url)
    order = book_and_accept(database_url)
    customer_id = run("customers", "id", "--phone", "+86 138 0000 0000").strip()

    refused = runner.invoke(cli.app, ["customers", "erase", "--phone", "13800000000",
                                      "--reason", "asked on 13800000000"])  # fmt: skip
    assert "--reason" in one_line_error(refused)
    missing = runner.invoke(cli.app, ["customers", "erase", "--phone", "13700000000",
                                      "--reason", "asked"])  # fmt: skip
    assert "no personal data held" in one_line_error(missing)

    out = run("customers", "erase", "--phone", "13800000000", "--reason", "ticket 9",
              "--actor", "sup-7")  # fmt: skip
    assert f"customer {customer_id} erased: 1 data key(s) destroyed" in out
    assert "nothing new to erase" in run(
        "customers", "erase", "--phone", "13800000000", "--reason", "ticket 9"
    )
    assert "audit trail intact" in run("audit", "verify")
    run("projections", "rebuild")
    assert found_in(dump_database(database_url), ZHANG) == []

    app = create_app(Settings(database_url=database_url, background=False))
    with TestClient(app) as client:
        token = app.state.tokens.issue("sup-1", "supervisor", utc("2026-10-02T00:00"))
        got = client.get(f"/work-orders/{order}", headers={"Authorization": f"Bearer {token}"})
        assert got.json()["customer"] == {"customer_id": customer_id, "name": "[erased]",
                                          "phone": "[erased]", "address": "[erased]"}  # fmt: skip
        history = client.get(f"/work-orders/{order}/history",
                             headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        accepted = [e for e in history["events"] if e["type"] == "Accepted"]
        assert accepted[0]["data"]["signed_by"] == "[erased]"
        erased = client.get(f"/customers/{customer_id}/data",
                            headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert [(e["actor"], e["role"]) for e in erased["erasures"]] == [("sup-7", "supervisor")]


def test_postgres_without_a_master_key_refuses_to_start(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", pg_url)
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY", raising=False)
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY_FILE", raising=False)
    for command in (["serve", "--port", "1"], ["projections", "status"], ["audit", "verify"]):
        line = one_line_error(runner.invoke(cli.app, command))
        assert "no master key" in line and "FIELDLEDGER_MASTER_KEY" in line, line
    app = create_app(Settings(database_url=pg_url, background=False))
    with pytest.raises(MasterKeyError, match="no master key"), TestClient(app):
        pass  # the service does not start
    with pytest.raises(MasterKeyError, match="no master key"):
        FieldLedger(pg_url)


def test_a_wrong_or_broken_key_is_refused_in_one_line(
    database_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", database_url)
    book_and_accept(database_url)
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", new_master_key_text())
    line = one_line_error(runner.invoke(cli.app, ["projections", "status"]))
    assert "wrong key" in line and "FIELDLEDGER_MASTER_KEY" in line
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", "too-short")
    line = one_line_error(runner.invoke(cli.app, ["projections", "status"]))
    assert "FIELDLEDGER_MASTER_KEY: not a master key" in line
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY")
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY_FILE", str(key_file) + ".missing")
    line = one_line_error(runner.invoke(cli.app, ["projections", "status"]))
    assert "FIELDLEDGER_MASTER_KEY_FILE" in line and "cannot read it" in line


def test_the_embedded_default_generates_its_key_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "fieldledger.db"
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY", raising=False)
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY_FILE", raising=False)
    first = runner.invoke(cli.app, ["projections", "status"])
    assert first.exit_code == 0, first.stderr
    key_path = Path(f"{database}.key")
    assert f"generated a master key for the embedded database at {key_path}" in first.stderr
    assert key_path.stat().st_mode & 0o777 == 0o600
    read_key_file(key_path, "test")  # a valid key
    again = runner.invoke(cli.app, ["projections", "status"])
    assert again.exit_code == 0 and "generated" not in again.stderr  # kept, not regenerated


def test_rotate_master_rewraps_the_keys_and_leaves_the_events(
    database_url: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", database_url)
    order = book_and_accept(database_url)
    old_key = key_file.read_text()
    before = dump_database(database_url)

    out = run("keys", "rotate-master")
    assert "master key rotated: 1 data key(s) re-wrapped" in out
    assert key_file.read_text() != old_key and not Path(f"{key_file}.new").exists()
    after = dump_database(database_url)
    # The events (and their hash chain) are untouched.
    events = [line for line in before.splitlines() if "Booked" in line or "Accepted" in line]
    assert events and all(line in after for line in events)
    assert "audit trail intact" in run("audit", "verify")

    ledger = FieldLedger(database_url)  # with the new key in the file
    try:
        opened = ledger.personal_data.reveal(ledger.get(WorkOrder, UUID(order)).customer)
        assert opened["name"] == "张三"
    finally:
        ledger.close()
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", old_key.strip())
    assert "wrong key" in one_line_error(runner.invoke(cli.app, ["projections", "status"]))

    # From an environment variable, the new key must go to a file named for it.
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", key_file.read_text().strip())
    line = one_line_error(runner.invoke(cli.app, ["keys", "rotate-master"]))
    assert "--new-key-file" in line
    target = key_file.with_name("next.key")
    assert str(target) in run("keys", "rotate-master", "--new-key-file", str(target))
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY")
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY_FILE", str(target))
    assert "audit trail intact" in run("audit", "verify")
