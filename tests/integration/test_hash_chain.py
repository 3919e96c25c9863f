"""Tamper evidence on SQLite and PostgreSQL: rows edited, deleted, swapped or
moved behind the recorder's back with plain SQL are caught by `fieldledger
audit verify`, which names the first broken event and exits non-zero."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from fieldledger.api.cli import app as cli
from fieldledger.application.database import Database, Tx
from fieldledger.application.hash_chain import (
    GENESIS,
    HASHES_TABLE,
    chain_hash,
    event_hash,
    verify_chain,
)
from fieldledger.application.ledger import Caller, FieldLedger, NotFound
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone
from typer.testing import CliRunner

DISPATCHER = Caller("disp-1", Role.DISPATCHER)


@pytest.fixture
def ledger(database_url: str) -> Iterator[FieldLedger]:
    # No PolicyAdopted before the first booking: these tests name events by position.
    app = FieldLedger(database_url, record_policy=False)
    yield app
    app.close()


def book(ledger: FieldLedger, n: int) -> list[UUID]:
    ids = []
    for i in range(n):
        r = ledger.book_work_order(
            DISPATCHER, customer=Customer(f"customer {i}", "1"), service_type="repair",
            priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
            billing=Billing.PAID, description="",
        )  # fmt: skip
        ledger.work_order_command(DISPATCHER, r.id, "assign", {"technician_id": f"tech-{i}"})
        ids.append(r.id)
    return ids


def verify(database_url: str, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["audit", "verify", *args], env={"FIELDLEDGER_DATABASE_URL": database_url}
    )


class Store:
    """Plain SQL on the events table, as someone with database access would."""

    def __init__(self, ledger: FieldLedger) -> None:
        self.db = Database(ledger.recorder)
        self.events = ledger.recorder.events_table_name  # type: ignore[attr-defined]
        self.position = "rowid" if self.db.dialect == "sqlite" else "notification_id"

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        with self.db.transaction() as tx:
            tx.execute(statement.format(events=tx.table(self.events),
                                        hashes=tx.table(HASHES_TABLE), pos=self.position), params)

    def row(self, position: int) -> dict[str, Any]:
        with self.db.transaction(commit=False) as tx:
            rows = tx.query(
                f"SELECT topic, state FROM {tx.table(self.events)} WHERE {self.position} = ?",
                (position,),
            )
        return {"topic": rows[0]["topic"], "state": bytes(rows[0]["state"])}

    def tx(self) -> Any:
        return self.db.transaction()


def test_an_untouched_store_verifies_and_every_event_has_its_hash(
    ledger: FieldLedger, database_url: str
) -> None:
    (order,) = book(ledger, 1)
    history = ledger.history(WorkOrder, order)
    assert [e.version for e in history] == [1, 2]
    assert all(e.hash is not None and len(e.hash) == 64 for e in history)
    # The aggregate's chain: version 2's hash is built on version 1's.
    stored = ledger.recorder.select_events(order)
    assert history[0].hash == event_hash(None, order, 1, stored[0].topic, stored[0].state)
    assert history[1].hash == event_hash(history[0].hash, order, 2, stored[1].topic,
                                         stored[1].state)
    result = verify(database_url)
    assert result.exit_code == 0, result.output
    assert "intact: 2 events up to position 2" in result.stdout


def test_concurrent_writers_extend_one_unforked_chain(
    ledger: FieldLedger, database_url: str
) -> None:
    threads = [threading.Thread(target=book, args=(ledger, 5)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = verify_chain(ledger.recorder, batch_size=7)
    assert verdict.broken is None
    assert verdict.events == 40
    with Database(ledger.recorder).transaction(commit=False) as tx:
        rows = tx.query(f"SELECT position, event_hash, chain_hash FROM {tx.table(HASHES_TABLE)} "
                        "ORDER BY position")
    chained = GENESIS
    for r in rows:
        chained = chain_hash(chained, r["position"], r["event_hash"])
        assert r["chain_hash"] == chained


def test_an_edited_event_is_caught(ledger: FieldLedger, database_url: str) -> None:
    book(ledger, 3)
    store = Store(ledger)
    state = json.loads(store.row(4)["state"])  # the second order's Assigned
    assert state["technician_id"] == "tech-1"
    state["technician_id"] = "someone-else"
    store.sql("UPDATE {events} SET state = ? WHERE {pos} = 4", (json.dumps(state).encode(),))
    result = verify(database_url)
    assert result.exit_code == 1
    assert "hash chain broken at position 4" in result.stderr
    assert "version 2" in result.stderr
    assert "does not match its hash" in result.stderr
    assert result.stderr.count("\n") == 1  # one line


def test_a_deleted_event_is_caught(ledger: FieldLedger, database_url: str) -> None:
    book(ledger, 3)
    Store(ledger).sql("DELETE FROM {events} WHERE {pos} = 3")
    result = verify(database_url)
    assert result.exit_code == 1
    assert "broken at position 3" in result.stderr
    assert "the store has none (deleted)" in result.stderr


def test_an_event_deleted_with_its_hash_row_breaks_the_chain_after_it(
    ledger: FieldLedger, database_url: str
) -> None:
    book(ledger, 3)
    store = Store(ledger)
    store.sql("DELETE FROM {events} WHERE {pos} = 6")
    store.sql("DELETE FROM {hashes} WHERE position = 6")
    store.sql("DELETE FROM {events} WHERE {pos} = 3")
    store.sql("DELETE FROM {hashes} WHERE position = 3")
    result = verify(database_url)
    assert result.exit_code == 1
    # Position 4 is version 2 of the order whose Booked (3) is gone: caught there.
    assert "broken at position 4" in result.stderr
    assert "previous event (version 1) has no hash row" in result.stderr


def test_the_last_event_deleted_with_its_hash_row_needs_an_anchor(
    ledger: FieldLedger, database_url: str
) -> None:
    book(ledger, 2)
    anchor = verify_chain(ledger.recorder)
    assert anchor.head == 4 and anchor.head_chain_hash is not None
    store = Store(ledger)
    store.sql("DELETE FROM {events} WHERE {pos} = 4")
    store.sql("DELETE FROM {hashes} WHERE position = 4")
    # Truncating the end is invisible to the chain itself ...
    assert verify(database_url).exit_code == 0
    # ... but not to a chain hash kept outside the database.
    result = verify(database_url, "--anchor", f"4:{anchor.head_chain_hash}")
    assert result.exit_code == 1
    assert "anchored position is not in the store" in result.stderr


def test_swapped_contents_of_two_rows_are_caught(ledger: FieldLedger, database_url: str) -> None:
    book(ledger, 3)
    store = Store(ledger)
    second, third = store.row(4), store.row(6)  # two Assigned events, other orders
    store.sql("UPDATE {events} SET topic = ?, state = ? WHERE {pos} = 4",
              (third["topic"], third["state"]))
    store.sql("UPDATE {events} SET topic = ?, state = ? WHERE {pos} = 6",
              (second["topic"], second["state"]))
    result = verify(database_url)
    assert result.exit_code == 1
    assert "broken at position 4" in result.stderr
    assert "swapped" in result.stderr


def test_rows_moved_to_other_positions_are_caught(ledger: FieldLedger, database_url: str) -> None:
    book(ledger, 3)
    store = Store(ledger)
    # Renumber two events: their order in the store is swapped.
    store.sql("UPDATE {events} SET {pos} = 100 WHERE {pos} = 4")
    store.sql("UPDATE {events} SET {pos} = 4 WHERE {pos} = 6")
    store.sql("UPDATE {events} SET {pos} = 6 WHERE {pos} = 100")
    result = verify(database_url)
    assert result.exit_code == 1
    assert "broken at position 4" in result.stderr
    assert "rows moved or renumbered" in result.stderr


def test_an_edit_covered_by_rewriting_the_hash_table_needs_an_anchor(
    ledger: FieldLedger, database_url: str
) -> None:
    """What the chain alone cannot catch (docs/audit.md): someone who can write
    both tables recomputes every hash after an edit. An anchor kept elsewhere can."""
    book(ledger, 2)
    anchor = verify_chain(ledger.recorder)
    store = Store(ledger)
    state = json.loads(store.row(2)["state"])
    state["technician_id"] = "someone-else"
    store.sql("UPDATE {events} SET state = ? WHERE {pos} = 2", (json.dumps(state).encode(),))
    with store.tx() as tx:
        _rewrite_hashes(tx, ledger)
    assert verify(database_url).exit_code == 0
    result = verify(database_url, "--anchor", f"{anchor.head}:{anchor.head_chain_hash}")
    assert result.exit_code == 1
    assert "differs from the anchored" in result.stderr


def _rewrite_hashes(tx: Tx, ledger: FieldLedger) -> None:
    table = tx.table(HASHES_TABLE)
    previous: dict[str, str] = {}
    chained: str | None = None
    for n in ledger.recorder.select_notifications(start=1, limit=100):
        own = event_hash(previous.get(str(n.originator_id)), n.originator_id,
                         n.originator_version, n.topic, n.state)
        previous[str(n.originator_id)] = own
        chained = chain_hash(chained, n.id, own)
        tx.execute(f"UPDATE {table} SET event_hash = ?, chain_hash = ? WHERE position = ?",
                   (own, chained, n.id))


def test_malformed_anchors_are_refused_in_one_line(database_url: str) -> None:
    result = verify(database_url, "--anchor", "four:abc")
    assert result.exit_code == 2
    assert result.stderr.startswith("fieldledger: --anchor 'four:abc'")


def test_the_timeline_names_an_edited_event_and_verifies_the_others(
    ledger: FieldLedger,
) -> None:
    """What the console's timeline shows (`verified_history`): each event of one
    aggregate checked against its hash row, the edited one named, as stored now."""
    first, second = book(ledger, 2)
    ledger.work_order_command(DISPATCHER, second, "hold", {"reason": "parts"})
    assert [e.problem for e in ledger.verified_history(WorkOrder, second)] == [None] * 3
    store = Store(ledger)
    state = json.loads(store.row(4)["state"])  # the second order's Assigned
    state["technician_id"] = "someone-else"
    store.sql("UPDATE {events} SET state = ? WHERE {pos} = 4", (json.dumps(state).encode(),))
    timeline = ledger.verified_history(WorkOrder, second)
    assert [(e.version, e.type) for e in timeline] == [(1, "Booked"), (2, "Assigned"),
                                                       (3, "PutOnHold")]
    assert timeline[1].entry is not None
    assert timeline[1].entry.data["technician_id"] == "someone-else"  # as stored now
    assert timeline[1].problem is not None and "edited" in timeline[1].problem
    assert timeline[0].problem is None and timeline[2].problem is None
    assert [e.problem for e in ledger.verified_history(WorkOrder, first)] == [None, None]
    # Edited past decoding: still listed, as unreadable and broken.
    store.sql("UPDATE {events} SET state = ? WHERE {pos} = 4", (b"{not json",))
    unreadable = ledger.verified_history(WorkOrder, second)[1]
    assert unreadable.entry is None and unreadable.problem is not None
    assert "cannot be read" in unreadable.problem
    # A hash row removed: the event is named.
    store.sql("DELETE FROM {hashes} WHERE position = 5")
    last = ledger.verified_history(WorkOrder, second)[2]
    assert last.problem is not None and "no hash row" in last.problem
    assert ledger.get_at_version(WorkOrder, first, 1).technician_id is None
    with pytest.raises(NotFound):
        ledger.verified_history(Complaint, first)
