"""What the sweep does besides escalating (contract §11.3, §11.4), on SQLite and
PostgreSQL: coordinators appointed in turn from the roster (004 二(二)
立即派專人協調), the handler reminded once when a target turns yellow (004 二(二)
主動提醒處理人), a survey card for every ended call (003 第十八條); and what a
booking links: repeat calls (002, 003) and first-contact resolution (004)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from fieldledger.domain.policy import builtin_policy, builtin_policy_text, parse_policy
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections import sla

from tests.integration.field import read
from tests.integration.procedure_service import (
    DISPATCHER,
    ROSTER,
    Service,
    open_service,
    sh,
)


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    s = open_service(database_url, ROSTER)
    yield s
    s.ledger.close()


def test_red_escalations_appoint_coordinators_in_turn_004_2_2(service: Service) -> None:
    # Routine, Thu 10-08 09:00, nobody assigned: response due 13:00 (4 working h).
    orders = [service.book(sh(10, 8, 9)) for _ in range(3)]
    report = service.sweep(sh(10, 8, 13, 30))
    assert sorted(e.aggregate_id for e in report.escalated) == sorted(orders)
    assert [e.coordinator_id for e in report.escalated] == ["coord-a", "coord-b", "coord-a"]
    for done in report.escalated:
        (escalated,) = service.events(done.aggregate_id, "Escalated")
        assert escalated.data["coordinator_id"] == done.coordinator_id
        assert (escalated.actor, escalated.data["level"]) == ("system", 1)
        assert service.ledger.get(WorkOrder, done.aggregate_id).coordinator_id == done.coordinator_id
    # The board shows whom (read model caught up by the next sweep's source).
    service.projections.catch_up("sla")
    with service.projections.reading("sla") as (tx, t):
        board = sla.board(tx, t, sh(10, 8, 13, 35), ("red",))
    assert {(i.aggregate_id, i.coordinator_id) for i in board} == {
        (str(e.aggregate_id), e.coordinator_id) for e in report.escalated
    }
    # The turns go on across sweeps: the 4th appointment at level 1 is coord-b's.
    late = service.book(sh(10, 8, 9, 30))
    (fourth,) = service.sweep(sh(10, 8, 13, 45)).escalated
    assert (fourth.aggregate_id, fourth.coordinator_id) == (late, "coord-b")


def test_a_level_without_a_roster_appoints_nobody_004_2_2(database_url: str) -> None:
    s = open_service(database_url, builtin_policy().model_copy(
        update={"escalation": builtin_policy().escalation.model_copy(update={"roster": {}})}
    ))  # fmt: skip
    try:
        order = s.book(sh(10, 8, 9))
        (done,) = s.sweep(sh(10, 8, 13, 30)).escalated
        assert (done.aggregate_id, done.coordinator_id) == (order, None)
    finally:
        s.ledger.close()


def test_the_handler_is_reminded_once_when_a_target_turns_yellow_004_2_2(
    service: Service,
) -> None:
    unassigned = service.book(sh(10, 8, 9))
    assigned = service.book(sh(10, 8, 9))
    service.field.wo(DISPATCHER, assigned, "assign", sh(10, 8, 9, 10), technician_id="tech-1")
    # Response (4 working h) is yellow from 12:12; arrival (6 h) from 13:48.
    assert service.sweep(sh(10, 8, 12)).reminded == []
    report = service.sweep(sh(10, 8, 12, 30))
    assert [(r.aggregate_id, r.target, r.owner_id) for r in report.reminded] == [
        (unassigned, "response", "disp-1")  # nobody assigned: the first responder
    ]
    assert service.sweep(sh(10, 8, 12, 45)).reminded == []  # once
    (reminder,) = service.events(unassigned, "ReminderIssued")
    assert reminder.data == {"target": "response", "owner_id": "disp-1"}
    assert reminder.actor == "system"
    later = service.sweep(sh(10, 8, 14)).reminded
    assert sorted((r.aggregate_id, r.target, r.owner_id) for r in later) == sorted([
        (assigned, "arrival", "tech-1"), (unassigned, "arrival", "disp-1"),
    ])  # fmt: skip


def test_a_survey_card_goes_out_the_day_after_every_ended_call_003_18(
    service: Service,
) -> None:
    f = service.field
    accepted = service.book(sh(10, 8, 9))
    f.wo(DISPATCHER, accepted, "assign", sh(10, 8, 9), technician_id="tech-1")
    f.arrive(accepted, sh(10, 8, 11))
    f.finish(accepted, sh(10, 8, 14))
    remote = service.book(sh(10, 8, 9))
    f.resolve_remotely(remote, sh(10, 8, 10))
    visited = service.book(sh(10, 8, 9))
    f.wo(DISPATCHER, visited, "assign", sh(10, 8, 9), technician_id="tech-1")
    f.arrive(visited, sh(10, 8, 11))
    f.wo(DISPATCHER, visited, "cancel", sh(10, 8, 11, 30), reason="customer changed mind")
    never_visited = service.book(sh(10, 8, 9))
    f.wo(DISPATCHER, never_visited, "cancel", sh(10, 8, 9, 30), reason="booked twice")

    assert service.sweep(sh(10, 8, 23, 59)).surveys_sent == []  # the day after
    sent = service.sweep(sh(10, 9, 0, 5)).surveys_sent
    assert sorted(s.work_order_id for s in sent) == sorted([accepted, remote, visited])
    assert service.sweep(sh(10, 9, 9)).surveys_sent == []  # once
    assert len(service.events(accepted, "SurveySent")) == 1
    assert service.ledger.get(WorkOrder, never_visited).survey_sent_at is None

    # A card unanswered more than 7 days after it went out is overdue.
    f.feedback(accepted, sh(10, 10, 9))
    service.projections.catch_up("satisfaction")

    def summary(now: datetime) -> dict[str, Any]:
        (group,) = read(service.projections, "satisfaction", "summary", start=None, end=None,
                        group_by="service_type", now=now)  # fmt: skip
        return group  # type: ignore[no-any-return]

    assert (summary(sh(10, 16))["surveys_expected"], summary(sh(10, 16))["surveys_overdue"]) == (
        3, 0
    )
    late = summary(sh(10, 16, 0, 10))
    assert (late["surveys_expected"], late["surveys_received"], late["surveys_overdue"]) == (
        3, 1, 2
    )


def test_a_call_about_the_same_problem_is_linked_to_the_earlier_order_002_003(
    service: Service,
) -> None:
    f = service.field
    first = service.book(sh(10, 8, 9))
    f.resolve_remotely(first, sh(10, 8, 10))
    # Same phone (formatted otherwise), same service type, 29 days later: a repeat call.
    again = service.book(sh(11, 6, 9), phone="138-0000-0000")
    assert service.ledger.get(WorkOrder, again).repeat_of == first
    # Another service type, or another customer: not a repeat of it.
    assert service.ledger.get(WorkOrder, service.book(sh(11, 6, 9), service_type="install")
                              ).repeat_of is None  # fmt: skip
    assert service.ledger.get(WorkOrder, service.book(sh(11, 6, 9), phone="139")).repeat_of is None
    # A booking names the order it repeats itself; an unknown one is refused.
    named = service.book(sh(11, 6, 10), service_type="install", previous=first)
    named_order = service.ledger.get(WorkOrder, named)
    assert (named_order.previous_work_order_id, named_order.repeat_of) == (first, first)


def test_no_link_beyond_the_policys_thirty_days_002_003(service: Service) -> None:
    first = service.book(sh(10, 8, 9))
    service.field.resolve_remotely(first, sh(10, 8, 10))
    later = service.book(sh(11, 7, 10, 1))  # 30 days and a minute after the resolution
    assert service.ledger.get(WorkOrder, later).repeat_of is None


def test_first_contact_resolution_counts_remote_fixes_and_repeat_calls_004(
    service: Service,
) -> None:
    f = service.field
    fixed_on_site = service.book(sh(10, 8, 9), phone="1")
    f.wo(DISPATCHER, fixed_on_site, "assign", sh(10, 8, 9), technician_id="tech-1")
    f.arrive(fixed_on_site, sh(10, 8, 11))
    f.finish(fixed_on_site, sh(10, 8, 14))
    fixed_remotely = service.book(sh(10, 8, 9), phone="2")
    f.resolve_remotely(fixed_remotely, sh(10, 8, 10))
    called_again = service.book(sh(10, 8, 9), phone="3")
    f.resolve_remotely(called_again, sh(10, 8, 10))
    service.book(sh(10, 20, 9), phone="3")  # the customer calls again: not solved
    reworked = service.book(sh(10, 8, 9), phone="4")
    f.wo(DISPATCHER, reworked, "assign", sh(10, 8, 9), technician_id="tech-1")
    f.arrive(reworked, sh(10, 8, 11))
    f.finish(reworked, sh(10, 8, 14), rejections=1)
    service.projections.catch_up("satisfaction")
    (group,) = read(service.projections, "satisfaction", "summary", start=None, end=None,
                    group_by="service_type")  # fmt: skip
    # 2 of 4 resolved at the first contact (the remote fix counts): 50 %.
    assert (group["resolved"], group["first_contact_resolutions"]) == (4, 2)
    assert group["first_contact_resolution_pct"] == 50
    assert "first_contact_resolution_pct" in group["below_threshold"]


def test_orders_keep_the_policy_they_were_booked_under_004_2_2(database_url: str) -> None:
    # The policy of contract §6 counted routine resolution in working hours.
    section_6 = parse_policy(
        builtin_policy_text()
        .replace('name = "builtin"', 'name = "section-6"')
        .replace('routine = { clock = "24x7", hours = 24 }',
                 'routine = { clock = "business", hours = 24 }')
    )  # fmt: skip
    old = open_service(database_url, section_6)
    before = old.book(sh(11, 23, 9))  # Monday 09:00
    old.ledger.close()
    new = open_service(database_url, builtin_policy())
    try:
        after = new.book(sh(11, 23, 9))

        def resolution_due(order: UUID) -> datetime | None:
            from fieldledger.application.sla import sla_targets

            (target,) = [t for t in sla_targets(new.ledger, order) if t.target == "resolution"]
            return target.due_at

        assert resolution_due(before) == sh(11, 25, 15)  # Wednesday 15:00: working hours
        assert resolution_due(after) == sh(11, 24, 9)  # Tuesday 09:00: 24小時內解決
        new.projections.catch_up("sla")
        with new.projections.reading("sla") as (tx, t):
            stored = [r for r in sla.stored_targets(tx, t, before) if r["target"] == "resolution"]
        assert stored[0]["due_at"].startswith("2026-11-25T07:00")  # the read model agrees
    finally:
        new.ledger.close()
