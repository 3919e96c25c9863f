"""The work order's rules, command by command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.domain import CanInitAggregate
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    ChecklistItem,
    Customer,
    Feedback,
    Part,
    Priority,
    WorkOrder,
    WorkOrderState,
    Zone,
)

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
S = WorkOrderState


class Clock:
    """Hands out ever later instants, one minute apart."""

    def __init__(self) -> None:
        self.now = T0

    def ctx(self, role: Role = Role.TECHNICIAN, actor: str = "tech-1", **kw: object) -> Context:
        self.now += timedelta(minutes=1)
        return Context(actor, role, self.now, **kw)  # type: ignore[arg-type]


CHECKED = [ChecklistItem("refrigerant pressure", True), ChecklistItem("drain", True)]
GOOD = Feedback(csat=5, attitude=4, skill=4, punctuality=4, promise=4, praise=True, comment="好")


def book(clock: Clock, appointment: Appointment | None = None) -> WorkOrder:
    return WorkOrder.book(
        clock.ctx(Role.DISPATCHER, "disp-1"),
        id=uuid4(),
        customer=Customer("王芳", "13800000000", "上海市浦东新区"),
        service_type="air conditioner repair",
        priority=Priority.PRIORITY,
        zone=Zone.URBAN,
        channel=Channel.PHONE,
        billing=Billing.WARRANTY,
        description="不制冷",
        policy_version="builtin@test",
        appointment=appointment,
    )


def advance(wo: WorkOrder, clock: Clock, to: WorkOrderState) -> WorkOrder:
    """Drive an order along the happy path until it reaches `to`."""
    steps = [
        (S.ASSIGNED, lambda: wo.assign(clock.ctx(Role.DISPATCHER, "disp-1"), "tech-1")),
        (S.CONFIRMED, lambda: wo.confirm(clock.ctx())),
        (S.EN_ROUTE, lambda: wo.depart(clock.ctx())),
        (S.ON_SITE, lambda: wo.arrive(clock.ctx())),
        (S.IN_SERVICE, lambda: wo.start(clock.ctx(), True, "gas off, ladder checked",
                                         True, True, True)),
        (S.COMPLETED, lambda: wo.complete(clock.ctx(), "recharged", [Part("R32", 1)], CHECKED)),
        (S.ACCEPTED, lambda: wo.accept(clock.ctx(Role.CLIENT_APP, "app"), "王芳")),
    ]
    for state, step in steps:
        if wo.state is to:
            break
        step()
        assert wo.state is state
    return wo


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.parametrize("appointment", [False, True])
def test_a_booking_makes_the_work_order_the_librarys_mutate_makes(
    clock: Clock, appointment: bool
) -> None:
    """`Booked.mutate` skips the library's sorting of the event's fields into
    constructor arguments: the order it makes, booked or replayed, is the one
    the library's `CanInitAggregate.mutate` makes, attribute for attribute."""
    wo = book(clock, Appointment(T0, T0 + timedelta(hours=2)) if appointment else None)
    booked = wo.pending_events[0]
    assert type(booked) is WorkOrder.Booked
    replayed = booked.mutate(None)
    library = CanInitAggregate.mutate(booked, None)
    assert type(replayed) is type(library) is WorkOrder
    assert vars(replayed) == vars(library)
    assert vars(wo) | {"_pending_events": []} == vars(library)
    assert replayed.state is S.BOOKED and replayed.customer == wo.customer


def test_a_subclass_of_the_work_order_is_booked_by_the_librarys_mutate(clock: Clock) -> None:
    class Special(WorkOrder):
        def __init__(self) -> None:
            super().__init__()
            self.special = True

    ctx = clock.ctx(Role.DISPATCHER, "disp-1")
    wo = Special.book(ctx, id=uuid4(), customer=Customer("王芳", "13800000000", "上海"),
                      service_type="repair", priority=Priority.ROUTINE, zone=Zone.URBAN,
                      channel=Channel.PHONE, billing=Billing.PAID, description="x",
                      policy_version="builtin@test")  # fmt: skip
    assert type(wo) is Special and wo.special is True
    assert type(wo.pending_events[0].mutate(None)) is Special


def test_booking_records_who_booked_and_the_policy_in_force(clock: Clock) -> None:
    wo = book(clock)
    (event,) = wo.collect_events()
    assert isinstance(event, WorkOrder.Booked)
    assert (event.actor, event.role) == ("disp-1", "dispatcher")
    assert event.policy_version == "builtin@test"
    assert wo.state is S.BOOKED


def test_booking_refuses_an_appointment_that_ends_before_it_starts(clock: Clock) -> None:
    with pytest.raises(InvalidCommand, match="appointment.end"):
        book(clock, Appointment(T0 + timedelta(hours=2), T0 + timedelta(hours=1)))


def test_booking_refuses_a_customer_without_a_phone(clock: Clock) -> None:
    with pytest.raises(InvalidCommand, match="customer.phone"):
        WorkOrder.book(
            clock.ctx(Role.DISPATCHER), id=uuid4(), customer=Customer("A", "  "),
            service_type="x", priority=Priority.ROUTINE, zone=Zone.URBAN,
            channel=Channel.ONLINE, billing=Billing.PAID, description="", policy_version="v",
        )  # fmt: skip


@pytest.mark.parametrize("target", [s for s in S if s not in (S.ON_HOLD, S.CANCELLED, S.RESOLVED_REMOTELY, S.BOOKED)])
def test_happy_path_reaches_every_state_in_order(clock: Clock, target: WorkOrderState) -> None:
    assert advance(book(clock), clock, target).state is target


def test_full_lifecycle_with_two_rejections_counts_them(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.COMPLETED)
    wo.reject(clock.ctx(Role.CLIENT_APP, "app"), ["still warm"])
    assert wo.state is S.IN_SERVICE
    wo.complete(clock.ctx(), "again", [], CHECKED)
    wo.reject(clock.ctx(Role.CLIENT_APP, "app"), ["noisy"])
    wo.complete(clock.ctx(), "third time", [], CHECKED)
    wo.accept(clock.ctx(Role.CLIENT_APP, "app"), "王芳")
    assert (wo.state, wo.rejections, wo.completions) == (S.ACCEPTED, 2, 3)
    rejected = [e for e in wo.collect_events() if isinstance(e, WorkOrder.Rejected)]
    assert [e.rejection_count for e in rejected] == [1, 2]


# -- each command refused outside its states ----------------------------------

COMMANDS = {
    "assign": lambda wo, c: wo.assign(c.ctx(Role.DISPATCHER), "tech-2"),
    "confirm": lambda wo, c: wo.confirm(c.ctx()),
    "depart": lambda wo, c: wo.depart(c.ctx()),
    "notify-late": lambda wo, c: wo.notify_late(c.ctx(), c.now + timedelta(hours=1), "traffic"),
    "arrive": lambda wo, c: wo.arrive(c.ctx()),
    "start": lambda wo, c: wo.start(c.ctx(), True, "ok", True, True, True),
    "change-scope": lambda wo, c: wo.change_scope(c.ctx(), "also the fan", c.now + timedelta(hours=3)),
    "complete": lambda wo, c: wo.complete(c.ctx(), "done", [], CHECKED),
    "accept": lambda wo, c: wo.accept(c.ctx(Role.CLIENT_APP), "王芳"),
    "reject": lambda wo, c: wo.reject(c.ctx(Role.CLIENT_APP), ["bad"]),
    "resolve-remotely": lambda wo, c: wo.resolve_remotely(c.ctx(Role.DISPATCHER), "reset", "王芳"),
    "hold": lambda wo, c: wo.hold(c.ctx(Role.DISPATCHER), "waiting for parts"),
    "resume": lambda wo, c: wo.resume(c.ctx(Role.DISPATCHER)),
    "feedback": lambda wo, c: wo.give_feedback(c.ctx(Role.CLIENT_APP), GOOD),
    "cancel": lambda wo, c: wo.cancel(c.ctx(Role.CLIENT_APP), "no longer needed"),
    "log-callback": lambda wo, c: wo.log_callback(c.ctx(Role.DISPATCHER), "reached", "fine"),
    "hand-over": lambda wo, c: wo.hand_over(c.ctx(Role.DISPATCHER), "disp-2", "shift ends"),
    "remind": lambda wo, c: wo.remind(c.ctx(Role.SYSTEM, "system"), "resolution", "tech-1"),
    "send-survey": lambda wo, c: wo.send_survey(c.ctx(Role.SYSTEM, "system")),
}

ALLOWED = {
    "assign": {S.BOOKED, S.ASSIGNED, S.CONFIRMED},
    "confirm": {S.ASSIGNED},
    "depart": {S.CONFIRMED},
    "notify-late": {S.CONFIRMED, S.EN_ROUTE},
    "arrive": {S.EN_ROUTE},
    "start": {S.ON_SITE},
    "change-scope": {S.IN_SERVICE},
    "complete": {S.IN_SERVICE},
    "accept": {S.COMPLETED},
    "reject": {S.COMPLETED},
    "resolve-remotely": {S.BOOKED, S.ASSIGNED, S.CONFIRMED, S.EN_ROUTE},
    "hold": {S.BOOKED, S.ASSIGNED, S.CONFIRMED, S.EN_ROUTE, S.ON_SITE, S.IN_SERVICE},
    "resume": {S.ON_HOLD},
    "feedback": {S.ACCEPTED, S.RESOLVED_REMOTELY},
    "cancel": {S.BOOKED, S.ASSIGNED, S.CONFIRMED, S.EN_ROUTE, S.ON_SITE, S.ON_HOLD},
    "log-callback": {S.ACCEPTED, S.RESOLVED_REMOTELY},
    "hand-over": set(S) - {S.ACCEPTED, S.CANCELLED, S.RESOLVED_REMOTELY},
    "remind": set(S) - {S.ACCEPTED, S.CANCELLED, S.RESOLVED_REMOTELY},
    "send-survey": {S.ACCEPTED, S.RESOLVED_REMOTELY},
}


def order_in(state: WorkOrderState, clock: Clock) -> WorkOrder:
    if state is S.ON_HOLD:
        wo = advance(book(clock), clock, S.ASSIGNED)
        wo.hold(clock.ctx(Role.DISPATCHER), "parts")
        return wo
    if state is S.CANCELLED:
        wo = book(clock)
        wo.cancel(clock.ctx(Role.CLIENT_APP), "changed mind")
        return wo
    if state is S.RESOLVED_REMOTELY:
        wo = book(clock)
        wo.resolve_remotely(clock.ctx(Role.DISPATCHER), "reset over the phone", "王芳")
        return wo
    return advance(book(clock), clock, state)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("state", list(S), ids=lambda s: s.value)
def test_each_command_is_allowed_only_in_its_states(
    clock: Clock, command: str, state: WorkOrderState
) -> None:
    wo = order_in(state, clock)
    version = wo.version
    if state in ALLOWED[command]:
        COMMANDS[command](wo, clock)
        assert wo.version == version + 1
    else:
        with pytest.raises(CommandNotAllowed) as refused:
            COMMANDS[command](wo, clock)
        assert state.value in str(refused.value)
        assert command in str(refused.value)
        assert wo.version == version


# -- invariants -----------------------------------------------------------------


def test_cannot_accept_before_completion(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.IN_SERVICE)
    with pytest.raises(CommandNotAllowed, match="cannot accept a work order that is in_service"):
        wo.accept(clock.ctx(Role.CLIENT_APP), "王芳")


def test_cannot_give_feedback_twice(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.ACCEPTED)
    wo.give_feedback(clock.ctx(Role.CLIENT_APP), GOOD)
    with pytest.raises(CommandNotAllowed, match="already received"):
        wo.give_feedback(clock.ctx(Role.CLIENT_APP), GOOD)


@pytest.mark.parametrize("csat", [0, 6, -1])
def test_csat_outside_one_to_five_is_refused(clock: Clock, csat: int) -> None:
    wo = advance(book(clock), clock, S.ACCEPTED)
    with pytest.raises(InvalidCommand, match="csat"):
        wo.give_feedback(clock.ctx(Role.CLIENT_APP), Feedback(csat, 4, 4, 4, 4, False, ""))


@pytest.mark.parametrize("field", ["attitude", "skill", "punctuality", "promise"])
def test_dimensions_outside_one_to_four_are_refused(clock: Clock, field: str) -> None:
    wo = advance(book(clock), clock, S.ACCEPTED)
    scores = {"attitude": 4, "skill": 4, "punctuality": 4, "promise": 4, field: 5}
    with pytest.raises(InvalidCommand, match=field):
        wo.give_feedback(clock.ctx(Role.CLIENT_APP), Feedback(5, praise=False, comment="", **scores))


def test_service_cannot_start_without_showing_identity(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.ON_SITE)
    with pytest.raises(InvalidCommand, match="identity_shown"):
        wo.start(clock.ctx(), False, "checked")


def test_rejection_needs_a_reason(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.COMPLETED)
    with pytest.raises(InvalidCommand, match="reasons"):
        wo.reject(clock.ctx(Role.CLIENT_APP), [])


def test_parts_need_a_positive_quantity(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.IN_SERVICE)
    with pytest.raises(InvalidCommand, match=r"parts_used\[0\].quantity"):
        wo.complete(clock.ctx(), "done", [Part("filter", 0, Decimal("9.90"))], CHECKED)


def test_arrival_measures_minutes_late_against_the_appointment(clock: Clock) -> None:
    start = T0 + timedelta(minutes=4)
    wo = advance(book(clock, Appointment(start, start + timedelta(hours=2))), clock, S.EN_ROUTE)
    wo.arrive(Context("tech-1", Role.TECHNICIAN, start + timedelta(minutes=7, seconds=1)))
    arrived = wo.collect_events()[-1]
    assert isinstance(arrived, WorkOrder.Arrived)
    assert (arrived.minutes_late, arrived.minutes_early, arrived.lateness_notified) == (8, 0, False)


def test_arrival_ten_minutes_early_is_recorded_as_early(clock: Clock) -> None:
    start = T0 + timedelta(minutes=30)
    wo = advance(book(clock, Appointment(start, start + timedelta(hours=2))), clock, S.EN_ROUTE)
    wo.arrive(Context("tech-1", Role.TECHNICIAN, start - timedelta(minutes=10)))
    arrived = wo.collect_events()[-1]
    assert (arrived.minutes_late, arrived.minutes_early) == (0, 10)


def test_arrival_after_a_lateness_notice_says_the_customer_was_warned(clock: Clock) -> None:
    start = T0 + timedelta(minutes=30)
    wo = advance(book(clock, Appointment(start, start + timedelta(hours=2))), clock, S.EN_ROUTE)
    wo.notify_late(clock.ctx(), start + timedelta(minutes=20), "traffic jam")
    wo.arrive(Context("tech-1", Role.TECHNICIAN, start + timedelta(minutes=12)))
    arrived = wo.collect_events()[-1]
    assert (arrived.minutes_late, arrived.lateness_notified) == (12, True)


def test_a_notice_after_the_start_is_kept_but_is_no_advance_notice_000_2_3_1(
    clock: Clock,
) -> None:
    # 000 二(三)1: 可能遲到,需提前與客戶溝通 (contract §11.2)
    start = T0 + timedelta(minutes=30)
    wo = advance(book(clock, Appointment(start, start + timedelta(hours=2))), clock, S.EN_ROUTE)
    late_notice = Context("tech-1", Role.TECHNICIAN, start + timedelta(minutes=40))
    wo.notify_late(late_notice, start + timedelta(minutes=45), "traffic jam")
    wo.arrive(Context("tech-1", Role.TECHNICIAN, start + timedelta(minutes=45)))
    notified, arrived = wo.collect_events()[-2:]
    assert isinstance(notified, WorkOrder.LatenessNotified)
    assert (arrived.minutes_late, arrived.lateness_notified) == (45, False)


def test_arrival_without_appointment_has_no_lateness(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.ON_SITE)
    arrived = wo.collect_events()[-1]
    assert (arrived.minutes_late, arrived.minutes_early) == (None, None)


def test_resume_returns_to_the_state_before_the_hold(clock: Clock) -> None:
    wo = advance(book(clock), clock, S.IN_SERVICE)
    wo.hold(clock.ctx(), "waiting for a compressor")
    assert wo.state is S.ON_HOLD
    wo.resume(clock.ctx())
    assert wo.state is S.IN_SERVICE


def test_escalation_only_goes_up(clock: Clock) -> None:
    wo = book(clock)
    wo.escalate(clock.ctx(Role.SUPERVISOR, "sup-1"), 2, "customer called twice")
    with pytest.raises(CommandNotAllowed, match="already at level 2"):
        wo.escalate(clock.ctx(Role.SUPERVISOR, "sup-1"), 1, "lower")
    wo.escalate(clock.ctx(Role.SUPERVISOR, "sup-1"), 3, "VIP")
    assert wo.escalation_level == 3


@pytest.mark.parametrize("level", [0, 4])
def test_escalation_level_is_one_to_three(clock: Clock, level: int) -> None:
    with pytest.raises(InvalidCommand, match="level"):
        book(clock).escalate(clock.ctx(Role.SUPERVISOR), level, "x")


def test_a_target_is_escalated_once(clock: Clock) -> None:
    wo = book(clock)
    wo.escalate(clock.ctx(Role.SYSTEM, "system"), 1, "response is red", target="response")
    with pytest.raises(CommandNotAllowed, match="already escalated"):
        wo.escalate(clock.ctx(Role.SYSTEM, "system"), 2, "response is red", target="response")
    wo.escalate(clock.ctx(Role.SYSTEM, "system"), 2, "arrival is red", target="arrival")
    assert wo.escalated_targets == ["response", "arrival"]
