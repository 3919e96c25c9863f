"""The event store on SQLite and PostgreSQL: exact round trips, replays equal to
the in-memory aggregate, optimistic concurrency, idempotency receipts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from fieldledger.application.commands import WORK_ORDER
from fieldledger.application.ledger import (
    Caller,
    FieldLedger,
    Idempotency,
    IdempotencyKeyReused,
    VersionMismatch,
)
from fieldledger.domain.complaints import Complainant, Complaint, ComplaintChannel, Severity
from fieldledger.domain.customers import SealedPersonalData
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand, NotPermitted
from fieldledger.domain.facts import Role
from fieldledger.domain.staff import StaffMember, staff_aggregate_id
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    Customer,
    Part,
    Priority,
    WorkOrder,
    Zone,
)

from tests.procedure import CHECKLIST, ON_SITE_CHECKS

DISPATCHER = Caller("disp-1", Role.DISPATCHER)
TECH = Caller("tech-1", Role.TECHNICIAN)
CLIENT = Caller("app-1", Role.CLIENT_APP)
SUPERVISOR = Caller("sup-1", Role.SUPERVISOR)
SHANGHAI = timezone(timedelta(hours=8))


class SteppingClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 10, 9, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=30)
        return self.now


@pytest.fixture
def app(database_url: str) -> Iterator[FieldLedger]:
    ledger = FieldLedger(database_url, clock=SteppingClock())
    yield ledger
    ledger.close()


def book(app: FieldLedger, **extra: object) -> UUID:
    start = datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI)  # a make-up working Saturday
    fields: dict[str, object] = {
        "customer": Customer("陈小姐", "+86 138 0013 8000", "广州市天河区体育西路 1 号"),
        "service_type": "洗衣机维修",
        "priority": Priority.PRIORITY,
        "zone": Zone.SUBURBAN,
        "channel": Channel.ONLINE,
        "billing": Billing.CONTRACT,
        "description": "滚筒不转 — drum does not turn",
        "appointment": Appointment(start, start + timedelta(hours=2)),
    }
    fields.update(extra)
    return app.book_work_order(DISPATCHER, **fields).id


def run(app: FieldLedger, caller: Caller, order: UUID, command: str, **args: object) -> int:
    return app.work_order_command(caller, order, command, args).version


def test_events_round_trip_exactly(app: FieldLedger) -> None:
    order = book(app)
    run(app, DISPATCHER, order, "assign", technician_id="tech-1")
    run(app, TECH, order, "confirm")
    run(app, TECH, order, "depart")
    run(app, TECH, order, "arrive")
    run(app, TECH, order, "start", identity_shown=True, **ON_SITE_CHECKS,
        risk_assessment="电源已断开")  # fmt: skip
    run(app, TECH, order, "complete", summary="换了皮带",
        parts_used=[Part("皮带 belt", 2, Decimal("38.50"), ["SN-0042"]), Part("screw", 4, None)],
        checklist=CHECKLIST)  # fmt: skip
    written = app.get(WorkOrder, order).collect_events()  # none pending after a load
    assert written == []
    stored = list(app.events.get(order))
    booked = stored[0]
    assert isinstance(booked, WorkOrder.Booked)
    # Sealed in the store (docs/privacy.md), opened by the vault.
    assert isinstance(booked.customer, SealedPersonalData)
    assert app.personal_data.reveal(booked.customer) == {
        "customer_id": str(app.personal_data.customer_id("13800138000")),
        "name": "陈小姐", "phone": "+86 138 0013 8000", "address": "广州市天河区体育西路 1 号",
    }  # fmt: skip
    assert booked.priority is Priority.PRIORITY and booked.zone is Zone.SUBURBAN
    assert booked.appointment is not None
    assert booked.appointment.start == datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI)
    assert booked.appointment.start.utcoffset() == timedelta(hours=8)
    completed = stored[-1]
    assert isinstance(completed, WorkOrder.ServiceCompleted)
    assert completed.parts_used == [
        Part("皮带 belt", 2, Decimal("38.50"), ["SN-0042"]), Part("screw", 4, None)
    ]
    assert completed.checklist == CHECKLIST
    assert isinstance(completed.parts_used[0].unit_price, Decimal)
    # Every event, re-encoded, is byte for byte what was stored.
    for event in stored:
        again = app.mapper.to_domain_event(app.mapper.to_stored_event(event))
        assert again == event


def test_lifecycle_with_two_rejections_replays_to_the_in_memory_state(app: FieldLedger) -> None:
    order = book(app)
    steps: list[tuple[Caller, str, dict[str, object]]] = [
        (DISPATCHER, "assign", {"technician_id": "tech-1"}),
        (TECH, "confirm", {}),
        (TECH, "depart", {}),
        (TECH, "notify-late", {"expected_arrival": datetime(2026, 10, 10, 2, 20, tzinfo=UTC),
                               "reason": "堵车"}),
        (TECH, "arrive", {}),
        (TECH, "start",
         {"identity_shown": True, **ON_SITE_CHECKS, "risk_assessment": "water off"}),
        (TECH, "change-scope",
         {"description": "also the pump", "new_eta": datetime(2030, 1, 1, tzinfo=UTC)}),
        (TECH, "complete", {"summary": "belt", "parts_used": [], "checklist": CHECKLIST}),
        (CLIENT, "reject", {"reasons": ["still noisy"]}),
        (TECH, "complete", {"summary": "belt and pump", "parts_used": [], "checklist": CHECKLIST}),
        (CLIENT, "reject", {"reasons": ["leaks"]}),
        (TECH, "complete",
         {"summary": "seal", "parts_used": [Part("seal", 1, Decimal("5"))], "checklist": CHECKLIST}),
        (CLIENT, "accept", {"signed_by": "陈小姐"}),
        (CLIENT, "feedback", {"csat": 4, "attitude": 3, "skill": 4, "punctuality": 2,
                              "promise": 4, "praise": False, "comment": "还行"}),
        (DISPATCHER, "log-callback", {"outcome": "reached", "note": "all good"}),
    ]
    # The same commands on an aggregate that is never stored.
    in_memory = WorkOrder.book(
        app.context(DISPATCHER, None), id=order, **_booking_fields(app, order)
    )
    for caller, command, args in steps:
        app.work_order_command(caller, order, command, args)
        # The registry's own call, on the aggregate never stored.
        given = WORK_ORDER[command]
        given.call(in_memory, app.context(caller, None), given.body.model_construct(**args),
                   app.rules())
    replayed = app.get(WorkOrder, order)
    assert replayed.version == in_memory.version == 16
    assert (replayed.state, replayed.rejections, replayed.completions) == (
        in_memory.state, 2, 3)  # fmt: skip
    comparable = ("state", "technician_id", "feedback", "rejections", "completions", "callbacks",
                  "customer", "appointment", "priority", "lateness_notified")  # fmt: skip
    reveal = app.personal_data.reveal
    for name in comparable:
        if name == "customer":  # sealed when stored, clear in memory
            assert reveal(replayed.customer) == reveal(in_memory.customer)
            continue
        assert getattr(replayed, name) == getattr(in_memory, name), name


def _booking_fields(app: FieldLedger, order: UUID) -> dict[str, object]:
    booked = next(iter(app.events.get(order)))
    keep = ("customer", "service_type", "priority", "zone", "channel", "billing",
            "description", "appointment", "policy_version")  # fmt: skip
    fields = {k: getattr(booked, k) for k in keep}
    opened = app.personal_data.reveal(booked.customer)
    fields["customer"] = Customer(opened["name"], opened["phone"], opened["address"])
    return fields


def test_a_stale_expected_version_is_refused_and_writes_nothing(app: FieldLedger) -> None:
    order = book(app)
    app.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"},
                           expected_version=1)  # fmt: skip
    with pytest.raises(VersionMismatch, match="expected version 1, but the current version is 2"):
        app.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-9"},
                               expected_version=1)  # fmt: skip
    assert app.get(WorkOrder, order).technician_id == "tech-1"
    assert len(list(app.events.get(order))) == 2


def test_two_writers_on_one_aggregate_the_second_is_refused_and_nothing_is_lost(
    app: FieldLedger,
) -> None:
    order = book(app)
    first = app.get(WorkOrder, order)
    second = app.get(WorkOrder, order)
    first.assign(app.context(DISPATCHER, None), "tech-1")
    second.assign(app.context(DISPATCHER, None), "tech-2")
    app.save(first)
    from eventsourcing.persistence import IntegrityError

    with pytest.raises(IntegrityError):
        app.save(second)
    stored = list(app.events.get(order))
    assert [type(e).__name__ for e in stored] == ["Booked", "Assigned"]
    assert stored[1].technician_id == "tech-1"


def test_concurrent_commands_without_expected_version_all_land(app: FieldLedger) -> None:
    order = book(app)
    errors: list[BaseException] = []

    def escalate(level: int) -> None:
        try:
            app.work_order_command(SUPERVISOR, order, "escalate",
                                   {"level": 3, "reason": f"writer {level}"})  # fmt: skip
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=escalate, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reasons = sorted(e.reason for e in app.events.get(order) if isinstance(e, WorkOrder.Escalated))
    assert reasons == [f"writer {i}" for i in range(4)]


def test_an_idempotent_repeat_returns_the_first_result_and_writes_nothing(
    app: FieldLedger,
) -> None:
    order = book(app)
    key = Idempotency("key-1", "fingerprint-a")
    first = app.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"},
                                   idempotency=key)  # fmt: skip
    again = app.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-1"},
                                   idempotency=key)  # fmt: skip
    assert (again.id, again.version, again.state, again.replayed) == (
        first.id, first.version, first.state, True)  # fmt: skip
    assert app.get(WorkOrder, order).version == 2
    with pytest.raises(IdempotencyKeyReused):
        app.work_order_command(DISPATCHER, order, "assign", {"technician_id": "tech-2"},
                               idempotency=Idempotency("key-1", "fingerprint-b"))  # fmt: skip
    assert app.get(WorkOrder, order).version == 2


def test_a_refused_command_writes_no_receipt(app: FieldLedger) -> None:
    order = book(app)
    run(app, DISPATCHER, order, "assign", technician_id="tech-1")
    key = Idempotency("key-2", "fp")
    with pytest.raises(CommandNotAllowed):
        app.work_order_command(TECH, order, "arrive", {}, idempotency=key)
    assert app.ledger_recorder.find_receipt(TECH.actor, "key-2") is None


def test_a_technician_may_act_only_on_orders_assigned_to_them(app: FieldLedger) -> None:
    order = book(app)
    run(app, DISPATCHER, order, "assign", technician_id="tech-2")
    with pytest.raises(NotPermitted, match="not assigned to tech-1"):
        run(app, TECH, order, "confirm")
    with pytest.raises(NotPermitted, match="role technician may not assign"):
        run(app, TECH, order, "assign", technician_id="tech-1")


def test_a_critical_complaint_is_stored_with_its_escalation(app: FieldLedger) -> None:
    result = app.lodge_complaint(
        CLIENT, customer=Complainant("周先生", "139"), channel=ComplaintChannel.EMAIL,
        category="safety", severity=Severity.CRITICAL, description="燃气味道",
        staff_ids=["tech-1"],
    )  # fmt: skip
    stored = list(app.events.get(result.id))
    assert [type(e).__name__ for e in stored] == ["Lodged", "Escalated"]
    assert app.get(Complaint, result.id).escalation_level == 3
    assert stored[0].severity is Severity.CRITICAL


def test_conduct_opens_the_staff_record_on_first_entry(app: FieldLedger) -> None:
    app.record_conduct(SUPERVISOR, "tech-7", kind="grooming", points=Decimal("-0.5"), note="")
    app.record_conduct(SUPERVISOR, "tech-7", kind="uniform", points=None, note="no badge")
    staff = app.get(StaffMember, staff_aggregate_id("tech-7"))
    assert staff.conduct_records == 2
    points = [e.points for e in app.events.get(staff.id) if isinstance(e, StaffMember.ConductRecorded)]
    assert points == [Decimal("-0.5"), Decimal("-1")]
    with pytest.raises(InvalidCommand):
        app.record_conduct(SUPERVISOR, "tech-7", kind="absence", points=Decimal(-3), note="")
    assert app.get(StaffMember, staff.id).conduct_records == 2


def test_as_of_replays_only_what_had_occurred(app: FieldLedger) -> None:
    order = book(app)
    run(app, DISPATCHER, order, "assign", technician_id="tech-1")
    history = app.history(WorkOrder, order)
    between = history[0].occurred_at + (history[1].occurred_at - history[0].occurred_at) / 2
    then = app.get_as_of(WorkOrder, order, between)
    assert (then.state.value, then.version) == ("booked", 1)
    assert app.get_as_of(WorkOrder, order, history[1].occurred_at).state.value == "assigned"


def test_the_recorder_selects_events_as_the_library_does_in_every_shape(app: FieldLedger) -> None:
    """The PostgreSQL recorder composes `select_events`' query once per shape; it
    returns what the library's own method returns, for every combination."""
    order = book(app)
    run(app, DISPATCHER, order, "assign", technician_id="tech-1")
    run(app, TECH, order, "confirm")
    run(app, TECH, order, "depart")
    recorder = app.recorder
    library = type(recorder).__mro__[1].select_events
    for gt in (None, 1):
        for lte in (None, 3):
            for desc in (False, True):
                for limit in (None, 2):
                    shape = {"gt": gt, "lte": lte, "desc": desc, "limit": limit}
                    ours = recorder.select_events(order, **shape)  # type: ignore[arg-type]
                    theirs = library(recorder, order, **shape)  # type: ignore[arg-type]
                    assert ours == theirs, shape
                    assert ours, shape
