"""The complaint's rules, command by command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from fieldledger.domain.complaints import (
    Complainant,
    Complaint,
    ComplaintChannel,
    ComplaintState,
    Severity,
)
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand
from fieldledger.domain.facts import Context, Role

C = ComplaintState
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def ctx(self, role: Role = Role.DISPATCHER, actor: str = "desk-1") -> Context:
        self.now += timedelta(minutes=1)
        return Context(actor, role, self.now)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lodge(clock: Clock, severity: Severity = Severity.MAJOR) -> Complaint:
    return Complaint.lodge(
        clock.ctx(Role.CLIENT_APP, "app"),
        id=uuid4(),
        customer=Complainant("李雷", "13900000000"),
        channel=ComplaintChannel.PHONE,
        category="attitude",
        severity=severity,
        description="技师态度差",
        policy_version="builtin@test",
        staff_ids=["tech-1", "tech-2"],
    )


def to_state(c: Complaint, clock: Clock, target: ComplaintState) -> Complaint:
    steps = [
        (C.ACKNOWLEDGED, lambda: c.acknowledge(clock.ctx())),
        (C.ASSIGNED, lambda: c.assign(clock.ctx(), "service quality", "sup-1")),
        (C.INVESTIGATED, lambda: c.record_findings(clock.ctx(), "rude", ["call log"], ["tech-1"], True)),
        (C.PLANNED, lambda: c.plan(clock.ctx(), "apology and training", "sup-1", clock.now + timedelta(days=3))),
        (C.RESOLVED, lambda: c.resolve(clock.ctx(), "apologised, refunded call-out fee")),
        (C.CLOSED, lambda: c.confirm(clock.ctx(Role.CLIENT_APP, "app"), True, 4)),
    ]
    for state, step in steps:
        if c.state is target:
            break
        step()
        assert c.state is state
    return c


def test_lodging_records_the_complaint_and_who_it_names(clock: Clock) -> None:
    c = lodge(clock)
    assert c.state is C.LODGED
    assert c.staff_ids == ["tech-1", "tech-2"]
    assert [type(e).__name__ for e in c.collect_events()] == ["Lodged"]


def test_a_critical_complaint_is_escalated_to_level_three_in_the_same_save(clock: Clock) -> None:
    c = lodge(clock, Severity.CRITICAL)
    events = c.collect_events()
    assert [type(e).__name__ for e in events] == ["Lodged", "Escalated"]
    assert events[1].level == 3
    assert c.escalation_level == 3


def test_full_lifecycle_reopened_once_then_closed(clock: Clock) -> None:
    c = to_state(lodge(clock), clock, C.RESOLVED)
    c.confirm(clock.ctx(Role.CLIENT_APP, "app"), False, 2)
    assert (c.state, c.reopens) == (C.REOPENED, 1)
    c.update_progress(clock.ctx(), "second visit booked")
    c.resolve(clock.ctx(), "replaced unit")
    c.confirm(clock.ctx(Role.CLIENT_APP, "app"), True, 5)
    assert (c.state, c.csat, c.resolutions) == (C.CLOSED, 5, 2)


def test_findings_name_the_responsible_staff_and_fault(clock: Clock) -> None:
    c = to_state(lodge(clock), clock, C.INVESTIGATED)
    assert c.responsible_staff_ids == ["tech-1"]
    assert c.company_at_fault is True


COMMANDS = {
    "acknowledge": lambda c, k: c.acknowledge(k.ctx()),
    "assign": lambda c, k: c.assign(k.ctx(), "dept", "sup-2"),
    "record-findings": lambda c, k: c.record_findings(k.ctx(), "cause", [], [], False),
    "plan": lambda c, k: c.plan(k.ctx(), "fix", "sup-1", k.now + timedelta(days=1)),
    "update-progress": lambda c, k: c.update_progress(k.ctx(), "called customer"),
    "resolve": lambda c, k: c.resolve(k.ctx(), "fixed"),
    "confirm": lambda c, k: c.confirm(k.ctx(Role.CLIENT_APP), True, 5),
}
ALLOWED = {
    "acknowledge": {C.LODGED},
    "assign": {C.ACKNOWLEDGED, C.ASSIGNED, C.INVESTIGATED, C.PLANNED, C.REOPENED},
    "record-findings": {C.ASSIGNED, C.INVESTIGATED, C.PLANNED, C.REOPENED},
    "plan": {C.INVESTIGATED, C.PLANNED, C.REOPENED},
    "update-progress": {C.ASSIGNED, C.INVESTIGATED, C.PLANNED, C.REOPENED},
    "resolve": {C.INVESTIGATED, C.PLANNED, C.REOPENED},
    "confirm": {C.RESOLVED},
}


def complaint_in(state: ComplaintState, clock: Clock) -> Complaint:
    if state is C.REOPENED:
        c = to_state(lodge(clock), clock, C.RESOLVED)
        c.confirm(clock.ctx(Role.CLIENT_APP), False, 1)
        return c
    return to_state(lodge(clock), clock, state)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("state", list(C), ids=lambda s: s.value)
def test_each_command_is_allowed_only_in_its_states(
    clock: Clock, command: str, state: ComplaintState
) -> None:
    c = complaint_in(state, clock)
    version = c.version
    if state in ALLOWED[command]:
        COMMANDS[command](c, clock)
        assert c.version == version + 1
    else:
        with pytest.raises(CommandNotAllowed) as refused:
            COMMANDS[command](c, clock)
        assert f"cannot {command} a complaint that is {state.value}" in str(refused.value)
        assert c.version == version


@pytest.mark.parametrize("csat", [0, 6])
def test_confirmation_csat_outside_one_to_five_is_refused(clock: Clock, csat: int) -> None:
    c = to_state(lodge(clock), clock, C.RESOLVED)
    with pytest.raises(InvalidCommand, match="csat"):
        c.confirm(clock.ctx(Role.CLIENT_APP), True, csat)


def test_a_closed_complaint_cannot_be_escalated(clock: Clock) -> None:
    c = to_state(lodge(clock), clock, C.CLOSED)
    with pytest.raises(CommandNotAllowed, match="cannot escalate a complaint that is closed"):
        c.escalate(clock.ctx(Role.SUPERVISOR), 1, "late")


def test_escalating_an_open_complaint_raises_its_level(clock: Clock) -> None:
    c = to_state(lodge(clock), clock, C.ASSIGNED)
    c.escalate(clock.ctx(Role.SUPERVISOR, "sup-1"), 2, "customer threatens to go to the press")
    assert c.escalation_level == 2
