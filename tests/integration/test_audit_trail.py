"""The audit read model: given events → rows; a rebuild while commands keep
arriving (and the service keeps projecting and reading) ends equal to a clean
rebuild."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.complaints import Complainant, ComplaintChannel, Severity
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone
from fieldledger.projections.audit import AuditFilter, AuditTrail
from fieldledger.projections.projector import BackgroundProjector, Projections, rows_of
from fieldledger.projections.read_model import ProjectionSettings

DISPATCHER = Caller("disp-1", Role.DISPATCHER)
SUPERVISOR = Caller("sup-1", Role.SUPERVISOR)
SETTINGS = ProjectionSettings(builtin_policy(), "Asia/Shanghai")
START = datetime(2026, 10, 9, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=30)
        return self.now


@pytest.fixture
def ledger(database_url: str) -> Iterator[FieldLedger]:
    app = FieldLedger(database_url, clock=Clock(), max_backdate=None)  # history
    yield app
    app.close()


def book(ledger: FieldLedger, occurred_at: datetime | None = None) -> Any:
    return ledger.book_work_order(
        DISPATCHER, customer=Customer("c", "1"), service_type="repair",
        priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
        billing=Billing.PAID, description="", occurred_at=occurred_at,
    )  # fmt: skip


def seed(ledger: FieldLedger, n: int) -> None:
    """n work orders booked in one save: quick to write, n events."""
    orders = [
        WorkOrder.book(
            Context("disp-1", Role.DISPATCHER, START), id=uuid4(),
            policy_version=1, customer=Customer(f"c{i}", "1"), service_type="repair",
            priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
            billing=Billing.PAID, description="",
        )
        for i in range(n)
    ]
    ledger.save(*orders)


def search(projections: Projections, **filters: Any) -> list[Any]:
    with projections.reading("audit") as (tx, t):
        return AuditTrail.search(
            tx, t, AuditFilter(**filters), before=None, limit=100,
            late_after=timedelta(minutes=5),
        )  # fmt: skip


def test_given_events_the_rows(ledger: FieldLedger) -> None:
    projections = Projections(ledger, [AuditTrail], SETTINGS, batch_size=2)
    # Position 1: the ledger records its policy before its first booking (01:00:30).
    late = book(ledger, occurred_at=START - timedelta(hours=2))  # position 2, recorded 01:01:00
    ledger.work_order_command(DISPATCHER, late.id, "assign", {"technician_id": "tech-1"})
    complaint = ledger.lodge_complaint(
        SUPERVISOR, customer=Complainant("c", "1"), channel=ComplaintChannel.EMAIL,
        category="billing", severity=Severity.CRITICAL, description="charged twice",
    )  # fmt: skip
    ledger.record_conduct(SUPERVISOR, "tech-1", kind="sleeping", points=Decimal("-3"),
                          note="asleep in the van")  # fmt: skip
    projections.catch_up("audit")
    rows = search(projections)
    assert [(r.position, r.kind, r.type, r.version, r.actor, r.role, r.late) for r in rows] == [
        (7, "staff", "ConductRecorded", 2, "sup-1", "supervisor", False),
        (6, "staff", "Registered", 1, "sup-1", "supervisor", False),
        # A critical complaint's escalation on lodging is the service's own.
        (5, "complaint", "Escalated", 2, "system", "system", False),
        (4, "complaint", "Lodged", 1, "sup-1", "supervisor", False),
        (3, "work_order", "Assigned", 2, "disp-1", "dispatcher", False),
        (2, "work_order", "Booked", 1, "disp-1", "dispatcher", True),
        (1, "policy", "PolicyAdopted", 1, "system", "system", False),
    ]
    booked = rows[-2]
    assert booked.aggregate_id == str(late.id)
    assert booked.occurred_at == START - timedelta(hours=2)
    assert booked.recorded_at == START + timedelta(seconds=60)
    assert rows[0].data == {"kind": "sleeping", "note": "asleep in the van", "points": -3,
                            "staff_id": "tech-1", "minutes": None, "discipline": None,
                            "extra_points": None}  # fmt: skip
    assert rows[3].aggregate_id == rows[2].aggregate_id == str(complaint.id)
    history = {e.version: e.hash for e in ledger.history(WorkOrder, late.id)}
    assert (booked.hash, rows[4].hash) == (history[1], history[2])
    # Filters on indexed columns, and occurred_at for time.
    assert [r.position for r in search(projections, actor="disp-1")] == [3, 2]
    assert [r.position for r in search(projections, types=("Escalated", "Booked"))] == [5, 2]
    assert [r.position for r in search(projections, occurred_to=START)] == [2]
    assert [r.position for r in search(projections, late=True)] == [2]


def test_a_rebuild_while_commands_arrive_ends_equal_to_a_clean_rebuild(
    ledger: FieldLedger,
) -> None:
    projections = Projections(ledger, [AuditTrail], SETTINGS, batch_size=5)
    seed(ledger, 120)
    projections.catch_up("audit")
    # The service: another projector keeps the live view caught up, a reader reads it.
    service = Projections(ledger, [AuditTrail], SETTINGS, batch_size=3)
    background = BackgroundProjector(service, interval=0)
    stop, go, written = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        go.wait(30)
        count = 0
        while not stop.is_set():
            order = book(ledger)
            ledger.work_order_command(DISPATCHER, order.id, "assign", {"technician_id": "t"})
            count += 1
            if count == 10:
                written.set()

    def read() -> None:
        while not stop.is_set():
            try:
                search(service, kind="work_order")
            except BaseException as e:
                errors.append(e)
                return

    def progress(count: int, position: int) -> None:
        if not go.is_set():  # mid-rebuild: let commands arrive, and wait for some
            go.set()
            assert written.wait(30)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    background.start()
    try:
        generation = projections.rebuild("audit", progress=progress)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        background.stop()
    assert errors == []
    assert generation == 2 and written.is_set()
    assert service.live_generation("audit") == 2
    projections.catch_up("audit")
    rebuilt = rows_of(projections, "audit", 2)
    assert len(rebuilt["audit_events"]) == projections.head() >= 140
    clean = projections.rebuild("audit")
    assert rows_of(projections, "audit", clean) == rebuilt
