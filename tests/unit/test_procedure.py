"""The service procedure of contract §11.4, rule by rule, each test naming its
rulebook source (000 on-site service, 002 customer-service management, 003
after-sales service, 004 service-quality improvement)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from fieldledger.domain.complaints import (
    Complainant,
    Complaint,
    ComplaintChannel,
    InformedVia,
    Severity,
)
from fieldledger.domain.complaints import ComplaintState as C
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.policy import (
    EscalationPolicy,
    PolicyError,
    builtin_policy,
    builtin_policy_text,
    parse_policy,
)
from fieldledger.domain.repeat_calls import customer_key, is_repeat_within
from fieldledger.domain.work_orders import (
    Billing,
    Channel,
    ChecklistItem,
    Customer,
    Part,
    Priority,
    WorkOrder,
    Zone,
)
from fieldledger.domain.work_orders import WorkOrderState as S

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def ctx(self, role: Role = Role.TECHNICIAN, actor: str = "tech-1") -> Context:
        self.now += timedelta(minutes=1)
        return Context(actor, role, self.now)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def book(clock: Clock, **extra: object) -> WorkOrder:
    return WorkOrder.book(
        clock.ctx(Role.DISPATCHER, "disp-1"), id=uuid4(),
        customer=Customer("王芳", "138 0000 0000", "上海"), service_type="boiler repair",
        priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
        billing=Billing.WARRANTY, description="不热", policy_version="builtin@test",
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def on_site(clock: Clock) -> WorkOrder:
    wo = book(clock)
    wo.assign(clock.ctx(Role.DISPATCHER, "disp-1"), "tech-1")
    wo.confirm(clock.ctx())
    wo.depart(clock.ctx())
    wo.arrive(clock.ctx())
    return wo


def in_service(clock: Clock) -> WorkOrder:
    wo = on_site(clock)
    wo.start(clock.ctx(), True, "gas off", True, True, True)
    return wo


# -- on site (004 二(一)2) -------------------------------------------------------


@pytest.mark.parametrize("line", ["customer_identity_verified", "site_safe", "tools_complete"])
def test_every_line_of_the_on_site_checklist_must_be_true_004_2_1_2(
    clock: Clock, line: str
) -> None:
    wo = on_site(clock)
    lines = {"customer_identity_verified": True, "site_safe": True, "tools_complete": True}
    lines[line] = False
    with pytest.raises(InvalidCommand) as refused:
        wo.start(clock.ctx(), True, "gas off", **lines)
    assert refused.value.field == line
    assert wo.state is S.ON_SITE


def test_the_on_site_checklist_is_recorded_with_the_start_004_2_1_2(clock: Clock) -> None:
    wo = in_service(clock)
    started = wo.collect_events()[-1]
    assert isinstance(started, WorkOrder.ServiceStarted)
    assert (started.identity_shown, started.customer_identity_verified, started.site_safe,
            started.tools_complete, started.risk_assessment) == (True, True, True, True, "gas off")


def test_completion_needs_the_item_checklist_every_item_done_004_2_1_2(clock: Clock) -> None:
    wo = in_service(clock)
    with pytest.raises(InvalidCommand, match="checklist"):
        wo.complete(clock.ctx(), "fixed", [], [])
    with pytest.raises(InvalidCommand) as refused:
        wo.complete(clock.ctx(), "fixed", [],
                    [ChecklistItem("pressure", True), ChecklistItem("leak test", False)])  # fmt: skip
    assert refused.value.field == "checklist[1].done"
    assert "leak test" in str(refused.value)
    wo.complete(clock.ctx(), "fixed", [], [ChecklistItem("pressure", True)])
    assert wo.state is S.COMPLETED


def test_a_change_of_scope_tells_the_new_completion_time_000_2_3_5(clock: Clock) -> None:
    wo = in_service(clock)
    with pytest.raises(InvalidCommand, match="new_eta"):
        wo.change_scope(clock.ctx(), "also the pump", None)
    with pytest.raises(InvalidCommand, match="new_eta"):
        wo.change_scope(clock.ctx(), "also the pump", clock.now - timedelta(hours=1))
    eta = clock.now + timedelta(hours=3)
    wo.change_scope(clock.ctx(), "also the pump", eta)
    changed = wo.collect_events()[-1]
    assert isinstance(changed, WorkOrder.ScopeChanged) and changed.new_eta == eta


def test_model_purchase_date_and_replaced_serial_numbers_are_kept_002_003_3(
    clock: Clock,
) -> None:
    wo = book(clock, model="WB-2000", purchase_date=date(2024, 5, 1))
    assert (wo.model, wo.purchase_date) == ("WB-2000", date(2024, 5, 1))
    with pytest.raises(InvalidCommand, match="purchase_date"):
        book(clock, purchase_date=date(2030, 1, 1))
    wo = in_service(clock)
    wo.complete(clock.ctx(), "pump replaced", [Part("pump", 1, None, [" P-778 "])],
                [ChecklistItem("runs", True)])  # fmt: skip
    completed = wo.collect_events()[-1]
    assert isinstance(completed, WorkOrder.ServiceCompleted)
    assert completed.parts_used[0].replaced_serial_numbers == ["P-778"]


# -- remote resolution (002 10.2.2) ----------------------------------------------


def test_remote_resolution_needs_the_customers_authorization_002_10_2_2(clock: Clock) -> None:
    wo = book(clock)
    with pytest.raises(InvalidCommand, match="authorized_by"):
        wo.resolve_remotely(clock.ctx(Role.DISPATCHER), "reset the boiler", "")
    wo.resolve_remotely(clock.ctx(Role.DISPATCHER), "reset the boiler", "王芳")
    done = wo.collect_events()[-1]
    assert isinstance(done, WorkOrder.ResolvedRemotely) and done.authorized_by == "王芳"
    assert wo.state is S.RESOLVED_REMOTELY


def test_hotline_then_remote_then_on_site_is_one_recorded_path_002_10_2_2(
    clock: Clock,
) -> None:
    wo = book(clock)  # booked by phone: the hotline
    wo.resolve_remotely(clock.ctx(Role.DISPATCHER), "tried a remote reset", "王芳", resolved=False)
    assert (wo.state, wo.remote_attempts) == (S.BOOKED, 1)
    wo.assign(clock.ctx(Role.DISPATCHER, "disp-1"), "tech-1")
    wo.confirm(clock.ctx())
    wo.depart(clock.ctx())
    wo.arrive(clock.ctx())
    assert [type(e).__name__ for e in wo.collect_events()] == [
        "Booked", "RemoteFixFailed", "Assigned", "Confirmed", "Departed", "Arrived"
    ]


# -- first responder (002 篇三 首問負責制) ------------------------------------------


def test_the_one_who_books_is_first_responder_until_a_hand_over_002_3(clock: Clock) -> None:
    wo = book(clock)
    assert (wo.first_responder_id, wo.accountable_id) == ("disp-1", "disp-1")
    with pytest.raises(InvalidCommand, match="already accountable"):
        wo.hand_over(clock.ctx(Role.DISPATCHER, "disp-1"), "disp-1", "to myself")
    with pytest.raises(InvalidCommand, match="note"):
        wo.hand_over(clock.ctx(Role.DISPATCHER, "disp-1"), "disp-2", " ")
    wo.hand_over(clock.ctx(Role.DISPATCHER, "disp-1"), "disp-2", "my shift ends")
    assert (wo.first_responder_id, wo.accountable_id) == ("disp-1", "disp-2")
    handed = wo.collect_events()[-1]
    assert isinstance(handed, WorkOrder.HandedOver)
    assert (handed.from_staff_id, handed.to_staff_id) == ("disp-1", "disp-2")


def test_a_complaint_has_its_first_responder_too_002_3(clock: Clock) -> None:
    c = lodge(clock)
    assert (c.first_responder_id, c.accountable_id) == ("desk-1", "desk-1")
    c.hand_over(clock.ctx(Role.DISPATCHER, "desk-1"), "sup-1", "needs a supervisor")
    assert c.accountable_id == "sup-1"


# -- repeat calls (002, 003) -----------------------------------------------------


def test_a_booking_naming_an_earlier_order_is_a_repeat_call_of_it_002_003(
    clock: Clock,
) -> None:
    earlier = uuid4()
    wo = book(clock, previous_work_order_id=earlier)
    assert (wo.previous_work_order_id, wo.repeat_of) == (earlier, earlier)


def test_the_same_customer_is_the_same_phone_whatever_its_formatting_002() -> None:
    def key(phone: str) -> str:
        return customer_key(Customer("王芳", phone))

    assert key("138 0000-0000") == key("13800000000")
    assert key("13800000000") != key("13900000000")
    assert "13800000000" not in key("13800000000")  # no phone numbers in views


def test_the_repeat_window_is_the_policys_thirty_days_002_003() -> None:
    procedure = builtin_policy().procedure
    assert procedure.repeat_call_days == 30
    resolved = T0
    assert is_repeat_within(resolved, resolved + timedelta(days=30), procedure)
    assert not is_repeat_within(resolved, resolved + timedelta(days=30, seconds=1), procedure)
    assert not is_repeat_within(resolved, resolved - timedelta(seconds=1), procedure)


# -- complaints (000 五(三)1, 003 第二十/二十二條) -----------------------------------


def lodge(clock: Clock, severity: Severity = Severity.MAJOR) -> Complaint:
    c = Complaint.lodge(
        clock.ctx(Role.DISPATCHER, "desk-1"), id=uuid4(),
        customer=Complainant("李雷", "13900000000"), channel=ComplaintChannel.PHONE,
        category="attitude", severity=severity, description="rude",
        policy_version="builtin@test",
    )  # fmt: skip
    c.acknowledge(clock.ctx(Role.DISPATCHER, "desk-1"))
    c.assign(clock.ctx(Role.DISPATCHER, "desk-1"), "quality", "sup-1")
    c.record_findings(clock.ctx(Role.SUPERVISOR, "sup-1"), "rushed", [], ["tech-1"], True)
    return c


def desk(clock: Clock) -> Context:
    return clock.ctx(Role.DISPATCHER, "desk-1")


def test_a_complaint_is_resolved_only_after_a_plan_000_5_3_1(clock: Clock) -> None:
    c = lodge(clock)
    with pytest.raises(CommandNotAllowed, match="plan the resolution first"):
        c.resolve(desk(clock), "apologised", InformedVia.PHONE)
    c.plan(desk(clock), "apology and coaching", "sup-1", clock.now + timedelta(days=2))
    c.resolve(desk(clock), "apologised", InformedVia.PHONE)
    assert c.state is C.RESOLVED


def test_resolving_says_how_the_customer_was_told_003_20(clock: Clock) -> None:
    c = lodge(clock)
    c.plan(desk(clock), "apology", "sup-1", clock.now + timedelta(days=2))
    with pytest.raises(InvalidCommand, match="customer_informed_via"):
        c.resolve(desk(clock), "apologised")
    c.resolve(desk(clock), "apologised", InformedVia.LETTER)
    assert c.informed_via is InformedVia.LETTER


@pytest.mark.parametrize("severity", [Severity.MAJOR, Severity.CRITICAL])
def test_a_major_or_critical_complaint_is_closed_only_after_a_visit_003_22(
    clock: Clock, severity: Severity
) -> None:
    c = lodge(clock, severity)
    c.plan(desk(clock), "apology", "sup-1", clock.now + timedelta(days=2))
    c.resolve(desk(clock), "apologised", InformedVia.PHONE)
    with pytest.raises(CommandNotAllowed, match="only after a visit"):
        c.confirm(clock.ctx(Role.CLIENT_APP, "app"), True, 4)
    c.confirm(clock.ctx(Role.CLIENT_APP, "app"), False, 2)  # reopening needs no visit
    c.visit(desk(clock), "sup-1", "apologised in person")
    c.plan(desk(clock), "refund", "sup-1", clock.now + timedelta(days=2))
    c.resolve(desk(clock), "refunded", InformedVia.VISIT)
    c.confirm(clock.ctx(Role.CLIENT_APP, "app"), True, 4)
    assert (c.state, c.visits) == (C.CLOSED, 1)


def test_a_minor_complaint_closes_without_a_visit_003_22(clock: Clock) -> None:
    c = lodge(clock, Severity.MINOR)
    c.plan(desk(clock), "apology", "sup-1", clock.now + timedelta(days=2))
    c.resolve(desk(clock), "apologised", InformedVia.PHONE)
    c.confirm(clock.ctx(Role.CLIENT_APP, "app"), True, 4)
    assert c.state is C.CLOSED


def test_a_closed_complaint_takes_no_visit_003_22(clock: Clock) -> None:
    c = lodge(clock, Severity.MINOR)
    c.plan(desk(clock), "apology", "sup-1", clock.now + timedelta(days=2))
    c.resolve(desk(clock), "apologised", InformedVia.PHONE)
    c.confirm(clock.ctx(Role.CLIENT_APP, "app"), True, 4)
    with pytest.raises(CommandNotAllowed, match="closed"):
        c.visit(desk(clock), "sup-1", "too late")


# -- the policy (004 二(二)) -----------------------------------------------------


def test_routine_resolution_is_24_hours_round_the_clock_004_2_2() -> None:
    routine = builtin_policy().sla.work_order.resolution.routine
    assert (routine.clock.value, routine.hours) == ("24x7", 24)


def test_the_roster_takes_turns_per_level_004_2_2() -> None:
    roster = EscalationPolicy(roster={1: ["a", "b"], 3: ["m"]})
    assert [roster.coordinator(1, turn) for turn in range(3)] == ["a", "b", "a"]
    assert roster.coordinator(2, 0) is None
    assert roster.coordinator(3, 5) == "m"


def test_a_roster_names_levels_one_to_three() -> None:
    with pytest.raises(PolicyError, match="escalation.roster"):
        parse_policy(builtin_policy_text().replace('1 = ["duty-dispatcher"]', '4 = ["x"]'))
