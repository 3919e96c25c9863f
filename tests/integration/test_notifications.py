"""The notification outbox (contract §11.6) and its delivery to a webhook, on
SQLite and PostgreSQL: reminders (004 二(二) 主動提醒處理人), coordinator
appointments (立即派專人協調) and escalations are listed per staff member and
POSTed to a local receiver until it acknowledges each with a 2xx — across a
restart, and beside commands however slow the receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fieldledger.application.ledger import Caller
from fieldledger.application.renewal_notices import record_renewal_notices
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import Customer
from fieldledger.projections.maintenance_contracts import ContractRenewals
from fieldledger.projections.notification_delivery import (
    BackgroundDelivery,
    WebhookDelivery,
)
from fieldledger.projections.notifications import OUTBOX, NotificationOutbox

from tests.integration.field import read
from tests.integration.procedure_service import DISPATCHER, ROSTER, Service, open_service, sh
from tests.webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    yield r
    r.close()


def red_and_yellow(service: Service) -> Any:
    """An unassigned order (first responder disp-1) reminded at 12:30 and escalated
    at 13:30, appointing coord-a."""
    order = service.book(sh(10, 8, 9))
    assert len(service.sweep(sh(10, 8, 12, 30)).reminded) == 1
    assert len(service.sweep(sh(10, 8, 13, 30)).escalated) == 1
    return order


def outbox(service: Service, staff_id: str, after: int = 0, limit: int = 100) -> list[Any]:
    found: list[Any] = read(service.projections, "notifications", "for_staff", staff_id,
                            after, limit)  # fmt: skip
    return found


def test_the_outbox_lists_each_staff_members_notices_with_a_cursor_11_6(
    database_url: str,
) -> None:
    service = open_service(database_url, ROSTER)
    try:
        order = red_and_yellow(service)
        mine = outbox(service, "disp-1")
        assert [(n["kind"], n["event_type"], n["aggregate_id"]) for n in mine] == [
            ("reminder", "ReminderIssued", str(order)),
            ("escalation", "Escalated", str(order)),
        ]
        assert mine[0]["data"] == {"target": "response", "owner_id": "disp-1"}
        (appointed,) = outbox(service, "coord-a")
        assert appointed["kind"] == "coordinator_appointed"
        assert appointed["data"]["coordinator_id"] == "coord-a"
        # The cursor: what came after the first.
        assert [n["id"] for n in outbox(service, "disp-1", after=mine[0]["id"])] == [mine[1]["id"]]
        assert outbox(service, "disp-1", limit=1) == mine[:1]
        # A rebuild gives the same notifications the same ids.
        service.projections.rebuild("notifications")
        assert outbox(service, "disp-1") == mine
        # So does `projections rebuild`: every view in one pass (bulk-loaded).
        names = list(service.projections.models)
        assert "notifications" in names
        generations = service.projections.rebuild_many(names)
        assert generations["notifications"] == 3
        assert outbox(service, "disp-1") == mine
        assert outbox(service, "coord-a") == [appointed]
        (status,) = [s for s in service.projections.status() if s.name == "notifications"]
        assert status.lag == 0 and status.building_generation is None
    finally:
        service.ledger.close()


def test_each_notification_is_delivered_until_acknowledged_across_a_restart_11_6(
    database_url: str, receiver: Receiver
) -> None:
    service = open_service(database_url, ROSTER)
    red_and_yellow(service)
    now = service.field.clock.now
    delivery = WebhookDelivery(service.projections, receiver.url, first_backoff=timedelta(
        seconds=30))  # fmt: skip
    first = delivery.deliver_due()
    # Three notices (reminder, coordinator, escalation); the receiver failed the first two.
    assert len(first.attempts) == 3
    assert (len(first.failed), len(first.delivered)) == (2, 1)
    assert all(a.error == "HTTP 503" for a in first.attempts if not a.delivered)
    delivery.close()
    service.ledger.close()

    # The process dies and starts again on the same database.
    again = open_service(database_url, ROSTER)
    try:
        again.field.at(now)
        delivery = WebhookDelivery(again.projections, receiver.url,
                                   first_backoff=timedelta(seconds=30))  # fmt: skip
        assert delivery.deliver_due().attempts == []  # backing off
        again.field.at(now + timedelta(seconds=29))
        assert delivery.deliver_due().attempts == []
        again.field.at(now + timedelta(seconds=30))
        retried = delivery.deliver_due()
        assert sorted(retried.delivered) == sorted(first.failed)
        assert delivery.deliver_due().attempts == []  # acknowledged: never sent again
        again.field.at(now + timedelta(hours=1))
        assert delivery.deliver_due().attempts == []
        # Every notice reached the receiver exactly as the outbox has it.
        ids = sorted(n["id"] for n in receiver.received)
        assert ids == sorted(first.delivered + first.failed)
        assert {n["kind"] for n in receiver.received} == {
            "reminder", "coordinator_appointed", "escalation"
        }
        assert all(h["Idempotency-Key"] == f"notification-{h['X-Fieldledger-Notification-Id']}"
                   for h in receiver.headers)  # fmt: skip
        state = delivery.delivery_state(first.failed[0])
        assert state is not None and state["attempts"] == 2 and state["delivered_at"]
        delivery.close()
    finally:
        again.ledger.close()


def test_the_backoff_doubles_up_to_its_limit_11_6(database_url: str) -> None:
    service = open_service(database_url, ROSTER)
    try:
        delivery = WebhookDelivery(service.projections, "http://127.0.0.1:9/",
                                   first_backoff=timedelta(seconds=5),
                                   max_backoff=timedelta(seconds=60))  # fmt: skip
        assert [delivery.backoff(n).total_seconds() for n in range(1, 7)] == [
            5, 10, 20, 40, 60, 60
        ]
        delivery.close()
    finally:
        service.ledger.close()


def test_a_receiver_that_never_answers_cannot_hold_up_commands_11_6(
    database_url: str,
) -> None:
    silent = Receiver(hold=True)
    service = open_service(database_url, ROSTER)
    background: BackgroundDelivery | None = None
    try:
        red_and_yellow(service)
        delivery = WebhookDelivery(service.projections, silent.url, timeout=30)
        background = BackgroundDelivery(delivery, interval=0.01)
        background.start()
        assert silent.arrived.wait(30), "the delivery never reached the receiver"
        # The receiver holds its answer; commands go on all the same.
        order = service.book(sh(10, 8, 14))
        service.field.wo(DISPATCHER, order, "assign", sh(10, 8, 14), technician_id="tech-9")
        assert not silent.release.is_set()
    finally:
        silent.close()
        if background is not None:
            background.stop()
        service.ledger.close()


def test_an_attempt_is_bounded_by_the_timeout_11_6(database_url: str) -> None:
    silent = Receiver(hold=True)
    service = open_service(database_url, ROSTER)
    try:
        red_and_yellow(service)
        delivery = WebhookDelivery(service.projections, silent.url, timeout=0.2,
                                   batch_size=1)  # fmt: skip
        (attempt,) = delivery.deliver_due().attempts
        assert not attempt.delivered and "Timeout" in (attempt.error or "")
        delivery.close()
    finally:
        silent.close()
        service.ledger.close()


def test_the_outbox_takes_its_events_from_one_list() -> None:
    kinds = {(n.event.__qualname__, n.kind) for n in OUTBOX}
    assert kinds == {
        ("WorkOrder.ReminderIssued", "reminder"), ("Complaint.ReminderIssued", "reminder"),
        ("WorkOrder.Escalated", "coordinator_appointed"),
        ("Complaint.Escalated", "coordinator_appointed"),
        ("WorkOrder.Escalated", "escalation"), ("Complaint.Escalated", "escalation"),
        ("MaintenanceContract.RenewalNoticeDue", "renewal_notice"),
    }
    assert NotificationOutbox.name == "notifications"


def test_a_renewal_notice_goes_to_the_person_who_signed_the_contract_003_15(
    database_url: str,
) -> None:
    service = open_service(database_url, ROSTER)
    try:
        red_and_yellow(service)  # the clock at 13:30 on 8 October
        signer = Caller("sup-2", Role.SUPERVISOR)
        contract = service.ledger.sign_maintenance_contract(
            signer, customer=Customer("王五", "13900000000", "上海"),
            starts_on=date(2026, 1, 1), ends_on=date(2026, 11, 5), visits_per_year=4,
        ).id  # fmt: skip
        renewals = ContractRenewals(service.projections)
        renewals.catch_up()
        (notice,) = record_renewal_notices(service.ledger, renewals, sh(10, 8, 13, 30))
        assert notice.contract_id == contract
        service.projections.catch_up("notifications")
        (mine,) = outbox(service, "sup-2")
        assert (mine["kind"], mine["event_type"], mine["aggregate_id"]) == (
            "renewal_notice", "RenewalNoticeDue", str(contract),
        )  # fmt: skip
        assert mine["data"]["ends_on"] == "2026-11-05"
        assert all(n["kind"] != "renewal_notice" for n in outbox(service, "disp-1"))
    finally:
        service.ledger.close()
