"""Operating projections across processes: a rebuild killed with SIGKILL leaves
the old view serving and can be run again; the serving process picks up a
generation swapped in by another process; two processes projecting one read
model never apply an event twice; the CLI's status and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from fieldledger.api.cli import app as cli
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone
from fieldledger.projections.audit import AuditTrail
from fieldledger.projections.projector import BackgroundProjector, Projections
from fieldledger.projections.read_model import ProjectionSettings
from typer.testing import CliRunner

from tests.integration.test_audit_trail import START, book
from tests.integration.test_projector import EventCounts, counts
from tests.views import rows_of, wait_until

SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")
DISPATCHER = Caller("disp-1", Role.DISPATCHER)
ROOT = Path(__file__).resolve().parents[2]
FIELDLEDGER = str(Path(sys.executable).with_name("fieldledger"))


@pytest.fixture
def ledger(database_url: str) -> Iterator[FieldLedger]:
    app = FieldLedger(database_url)
    yield app
    app.close()


def seed(ledger: FieldLedger, n: int) -> None:
    ledger.save(*[
        WorkOrder.book(
            Context("disp-1", Role.DISPATCHER, START), id=uuid4(), policy_version=1,
            customer=Customer(f"c{i}", "1"), service_type="repair", priority=Priority.ROUTINE,
            zone=Zone.URBAN, channel=Channel.PHONE, billing=Billing.PAID, description="",
        )
        for i in range(n)
    ])  # fmt: skip


def env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "FIELDLEDGER_DATABASE_URL": database_url, **extra}


def test_a_rebuild_killed_midway_leaves_the_old_view_serving_and_can_be_run_again(
    ledger: FieldLedger, database_url: str
) -> None:
    projections = Projections(ledger, [AuditTrail], SETTINGS)
    seed(ledger, 400)
    projections.catch_up("audit")
    before = rows_of(projections, "audit", 1)
    head = projections.head()
    # One event per transaction: slow enough to be caught mid-way.
    rebuild = subprocess.Popen(
        [FIELDLEDGER, "projections", "rebuild", "audit"],
        env=env(database_url, FIELDLEDGER_REBUILD_BATCH_SIZE="1"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip

    def midway() -> bool:
        assert rebuild.poll() is None, "the rebuild ended before it could be killed"
        (status,) = projections.status()
        return status.building_generation == 2 and 0 < (status.building_position or 0) < head

    try:
        wait_until(midway, timeout=60)
    finally:
        rebuild.send_signal(signal.SIGKILL)
        rebuild.communicate()
    assert rebuild.returncode == -signal.SIGKILL
    # The old view serves, unchanged; status shows the abandoned build.
    (status,) = projections.status()
    assert (status.generation, status.position, status.lag) == (1, head, 0)
    assert status.building_generation == 2
    with projections.reading("audit") as (_tx, tables):
        assert tables.generation == 1
    assert rows_of(projections, "audit", 1) == before
    # Run again: it completes, replaces the abandoned build, swaps in.
    rerun = subprocess.run(
        [FIELDLEDGER, "projections", "rebuild", "audit"],
        env=env(database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "audit: generation 3 is live" in rerun.stderr
    (status,) = projections.status()
    assert (status.generation, status.lag, status.building_generation) == (3, 0, None)
    assert rows_of(projections, "audit", 3) == before


def test_the_service_picks_up_a_generation_swapped_in_by_another_process(
    ledger: FieldLedger, database_url: str
) -> None:
    service = Projections(ledger, [AuditTrail], SETTINGS)
    seed(ledger, 30)
    background = BackgroundProjector(service, interval=0.01)
    background.start()
    try:
        wait_until(lambda: service.status()[0].lag == 0)
        rerun = subprocess.run(
            [FIELDLEDGER, "projections", "rebuild", "audit"],
            env=env(database_url), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        for _ in range(3):
            book(ledger)
        head = service.head()
        wait_until(lambda: service.position("audit", 2) == head)
    finally:
        background.stop()
    assert background.last_errors == {}
    assert service.live_generation("audit") == 2
    # 30 seeded, the ledger's PolicyAdopted before its first booking, 3 bookings.
    assert len(rows_of(service, "audit", 2)["audit_events"]) == head == 34
    with pytest.raises(Exception):  # noqa: B017 - the retired tables are gone
        rows_of(service, "audit", 1)


PROJECTOR = """
import sys
from fieldledger.application.ledger import FieldLedger
from fieldledger.projections.projector import Projections
from tests.integration.test_projector import SETTINGS, EventCounts

ledger = FieldLedger(sys.argv[1])
projections = Projections(ledger, [EventCounts], SETTINGS, batch_size=int(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()
print(projections.catch_up("event_counts"), flush=True)
ledger.close()
"""


def test_two_processes_projecting_one_read_model_never_apply_an_event_twice(
    ledger: FieldLedger, database_url: str
) -> None:
    seed(ledger, 300)
    Projections(ledger, [EventCounts], SETTINGS)  # its tables, before the race
    processes = []
    for batch in (3, 7):
        # Started one after the other: the library's start-up DDL (CREATE OR
        # REPLACE FUNCTION) is not safe to run concurrently on PostgreSQL.
        p = subprocess.Popen(
            [sys.executable, "-c", PROJECTOR, database_url, str(batch)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        processes.append(p)
        assert p.stdout is not None
        if p.stdout.readline() != "ready\n":
            pytest.fail(f"a projector did not start: {p.communicate()[1]}")
    for p in processes:  # go, both at once
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in processes:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "300"
    assert counts(Projections(ledger, [EventCounts], SETTINGS)) == {"Booked": 300}


def test_status_and_unknown_names_on_the_command_line(
    ledger: FieldLedger, database_url: str
) -> None:
    seed(ledger, 4)
    runner = CliRunner()
    variables = {"FIELDLEDGER_DATABASE_URL": database_url}
    status = runner.invoke(cli, ["projections", "status"], env=variables)
    assert status.exit_code == 0, status.output
    (line,) = [row for row in status.stdout.splitlines() if " audit " in row]
    cells = [cell.strip() for cell in line.split("│")]
    assert cells[1:5] == ["audit", "1", "0", "4"]  # name, generation, position, lag
    unknown = runner.invoke(cli, ["projections", "rebuild", "audit", "nope"], env=variables)
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("fieldledger: unknown projection 'nope'; known: ")
    assert unknown.stderr.count("\n") == 1 and "audit" in unknown.stderr
    rebuilt = runner.invoke(cli, ["projections", "rebuild", "audit"], env=variables)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "audit: generation 2 is live" in rebuilt.stderr


def test_a_read_opened_with_settings_has_them_in_force_and_leaves_nothing_behind(
    pg_url: str,
) -> None:
    """The board's settings go with the read transaction's BEGIN (one round trip):
    in force inside it, with the drop lock held; rolled back after it, also when
    the reader fails, so the pooled connection comes back idle and unchanged."""
    ledger = FieldLedger(pg_url)
    projections = Projections(ledger, [AuditTrail], SETTINGS)
    settings = {"max_parallel_workers_per_gather": "0", "plan_cache_mode": "force_generic_plan"}
    with projections.reading("audit", settings) as (tx, tables):
        assert tables.generation == 1
        assert tx.settings == settings
        assert tx.scalar("SHOW plan_cache_mode") == "force_generic_plan"
        assert tx.scalar("SHOW max_parallel_workers_per_gather") == "0"
        assert tx.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                         "AND mode = 'ShareLock' AND pid = pg_backend_pid()") == 1  # fmt: skip
    with pytest.raises(LookupError), projections.reading("audit", settings):
        raise LookupError("the reader fails")
    with pytest.raises(Exception, match="no_such_table"), projections.reading("audit") as (tx, _t):
        tx.execute("SELECT * FROM no_such_table_here")
    for _ in range(8):  # every pooled connection: idle, settings as configured
        with projections.reading("audit") as (tx, _t):
            assert tx.settings == {}
            assert tx.scalar("SHOW plan_cache_mode") == "auto"
            assert tx.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                             "AND pid = pg_backend_pid()") == 1  # fmt: skip
    with ledger.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        assert conn.info.transaction_status == 0  # IDLE
    ledger.close()


def test_a_read_s_last_query_goes_with_its_commit(database_url: str) -> None:
    """`Tx.query_last` (the board's query): its rows as `query` gives them; on
    PostgreSQL the `COMMIT` is sent with it (one round trip), so the snapshot is
    over when it returns (the drop lock released) and its end sends nothing more.
    After a write it is a plain `query`, the end left to the snapshot."""
    ledger = FieldLedger(database_url)
    projections = Projections(ledger, [AuditTrail], SETTINGS)
    statement = "SELECT 1 AS one UNION ALL SELECT ? AS one"
    with projections.reading("audit") as (tx, _t):
        assert tx.query_last(statement, (2,)) == tx.query(statement, (2,)) == [
            {"one": 1}, {"one": 2}
        ]  # fmt: skip
        if tx.dialect == "postgres":
            connection = tx.cursor.connection
            assert connection.info.transaction_status == 0  # IDLE: committed
    if tx.dialect != "postgres":
        ledger.close()
        return
    with projections.reading("audit") as (tx, _t):
        assert tx.query_last(statement, (3,)) == [{"one": 1}, {"one": 3}]
        # Read in a transaction of its own: the drop lock was released.
        assert tx.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                         "AND pid = pg_backend_pid()") == 0  # fmt: skip
    with projections.reading("audit") as (tx, _t):
        tx.execute("CREATE TEMP TABLE scratch_here (x int) ON COMMIT DROP")
        assert tx.query_last(statement, (4,)) == [{"one": 1}, {"one": 4}]
        assert tx.cursor.connection.info.transaction_status == 2  # INTRANS: not ended
    with ledger.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        assert conn.info.transaction_status == 0  # IDLE
    ledger.close()
