"""Events recorded before contract §11.4's fields existed are read with them
(the library's upcasting, `class_version` 2): a store written by the earlier
version of the service keeps working."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone

from tests.procedure import CHECKLIST, ON_SITE_CHECKS

DISPATCHER = Caller("disp-1", Role.DISPATCHER)
TECH = Caller("tech-1", Role.TECHNICIAN)
#: What each event class did not have in its first version.
ADDED: dict[type[Any], set[str]] = {
    WorkOrder.Booked: {"model", "purchase_date", "previous_work_order_id", "repeat_of",
                       "first_responder_id"},
    WorkOrder.ServiceStarted: {"customer_identity_verified", "site_safe", "tools_complete"},
    WorkOrder.ServiceCompleted: {"checklist"},
    WorkOrder.ResolvedRemotely: {"authorized_by"},
    WorkOrder.Escalated: {"coordinator_id"},
    Complaint.Lodged: {"first_responder_id"},
    Complaint.Resolved: {"customer_informed_via"},
    Complaint.Escalated: {"coordinator_id"},
}  # fmt: skip


@pytest.fixture
def ledger(sqlite_url: str) -> Iterator[FieldLedger]:
    app = FieldLedger(sqlite_url, clock=lambda: datetime(2026, 11, 23, 2, tzinfo=UTC))
    yield app
    app.close()


def as_first_version(ledger: FieldLedger, event: Any) -> Any:
    """The event as the earlier service stored it (without the added fields and
    without a class_version), read back by today's code."""
    stored = ledger.mapper.to_stored_event(event)
    state = ledger.mapper.transcoder.decode(stored.state)
    for name in ADDED[type(event)] | {"class_version"}:
        state.pop(name, None)
    old = dataclasses.replace(stored, state=ledger.mapper.transcoder.encode(state))
    assert isinstance(old, StoredEvent)
    return ledger.mapper.to_domain_event(old)


def test_old_work_order_events_read_with_the_new_fields(ledger: FieldLedger) -> None:
    order = ledger.book_work_order(
        DISPATCHER, customer=Customer("王芳", "138", "北京"), service_type="repair",
        priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
        billing=Billing.PAID, description="",
    ).id  # fmt: skip
    for command, args in [
        ("assign", {"technician_id": "tech-1"}), ("confirm", {}), ("depart", {}),
        ("arrive", {}),
        ("start", {"identity_shown": True, "risk_assessment": "ok", **ON_SITE_CHECKS}),
        ("complete", {"summary": "done", "parts_used": [], "checklist": CHECKLIST}),
    ]:  # fmt: skip
        caller = DISPATCHER if command == "assign" else TECH
        ledger.work_order_command(caller, order, command, args)
    events = list(ledger.events.get(order))
    old = [as_first_version(ledger, e) if type(e) in ADDED else e for e in events]
    booked, started, completed = old[0], old[5], old[6]
    assert (booked.first_responder_id, booked.repeat_of, booked.model) == ("disp-1", None, None)
    assert (started.customer_identity_verified, started.site_safe) == (False, False)
    assert completed.checklist == []
    replayed: Any = None
    for event in old:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, WorkOrder)
    assert (replayed.state.value, replayed.accountable_id) == ("completed", "disp-1")


def test_old_complaint_events_read_with_the_new_fields(ledger: FieldLedger) -> None:
    from fieldledger.domain.complaints import Complainant, ComplaintChannel, Severity

    complaint = ledger.lodge_complaint(
        DISPATCHER, customer=Complainant("李雷", "139"), channel=ComplaintChannel.PHONE,
        category="attitude", severity=Severity.CRITICAL, description="rude",
    ).id  # fmt: skip
    lodged, escalated = (as_first_version(ledger, e) for e in ledger.events.get(complaint))
    assert (lodged.first_responder_id, escalated.coordinator_id) == ("disp-1", None)
    replayed = escalated.mutate(lodged.mutate(None))
    assert (replayed.accountable_id, replayed.escalation_level) == ("disp-1", 3)
