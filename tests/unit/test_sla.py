"""SLA targets from events (fieldledger.domain.sla), worked by hand.

Default policy (contract §6), Asia/Shanghai (UTC+8), 08:30-17:30 Monday-Friday.
Day types from the State Council notice for 2026 (see test_business_calendar):

* 春节 Sun 2026-02-15 .. Mon 02-23 off; Sat 02-14 and Sat 02-28 worked.
* 中秋节 Fri 09-25 .. Sun 09-27 off.
* 国庆节 Thu 10-01 .. Wed 10-07 off; Sun 09-20 and Sat 10-10 worked.

All times below are local (Shanghai) unless they say otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from fieldledger.domain.business_calendar import BusinessCalendar
from fieldledger.domain.complaints import (
    Complainant,
    Complaint,
    ComplaintChannel,
    InformedVia,
    Severity,
)
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.policy import Policy, builtin_policy, builtin_policy_text, parse_policy
from fieldledger.domain.sla import (
    SlaTarget,
    Subject,
    _local_year,
    calendar_for,
    only_the_end_moved,
    target_facts,
    target_names,
    targets,
)
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    Customer,
    Priority,
    WorkOrder,
    Zone,
)

from tests.procedure import CHECKLIST

SH = ZoneInfo("Asia/Shanghai")
POLICY = builtin_policy()
US = timedelta(microseconds=1)


def sh(mo: int, d: int, hh: int = 0, mm: int = 0, y: int = 2026) -> datetime:
    return datetime(y, mo, d, hh, mm, tzinfo=SH)


def ctx(when: datetime, role: Role = Role.DISPATCHER, actor: str = "disp-1") -> Context:
    return Context(actor, role, when)


def book(
    when: datetime,
    priority: str = "routine",
    zone: str = "urban",
    appointment: tuple[datetime, datetime] | None = None,
    policy: Policy = POLICY,
) -> WorkOrder:
    return WorkOrder.book(
        ctx(when),
        id=uuid4(),
        customer=Customer("王芳", "13800000000"),
        service_type="repair",
        priority=Priority(priority),
        zone=Zone(zone),
        channel=Channel.PHONE,
        billing=Billing.PAID,
        description="",
        policy_version=policy.version,
        appointment=None if appointment is None else Appointment(*appointment),
    )


def lodge(when: datetime, severity: str = "major") -> Complaint:
    return Complaint.lodge(
        ctx(when),
        id=uuid4(),
        customer=Complainant("李雷", "13900000000"),
        channel=ComplaintChannel.PHONE,
        category="attitude",
        severity=Severity(severity),
        description="rude",
        policy_version=POLICY.version,
    )


def sla(aggregate: WorkOrder | Complaint, policy: Policy = POLICY) -> dict[str, SlaTarget]:
    events = list(aggregate.collect_events())
    subject = Subject.from_events(events)
    assert subject is not None
    return {t.target: t for t in targets(subject, policy, calendar_for(policy, "Asia/Shanghai"))}


def due(aggregate: WorkOrder | Complaint) -> dict[str, datetime | None]:
    return {name: t.due_at for name, t in sla(aggregate).items()}


def tech(when: datetime) -> Context:
    return ctx(when, Role.TECHNICIAN, "tech-1")


# -- due times around the holidays, by hand ----------------------------------------


def test_routine_order_booked_on_the_eve_of_national_day() -> None:
    # Wed 09-30 16:00: 1.5 working h left that day; 10-01..07 off; Thu 10-08 from 08:30.
    # response 4 h: 1.5 + 2.5 -> Thu 10-08 11:00
    # arrival 6 h (urban): 1.5 + 4.5 -> Thu 10-08 13:00
    # resolution 24 h round the clock (004 二(二) 24小時內解決, contract §11.3): Thu 10-01 16:00
    assert due(book(sh(9, 30, 16))) == {
        "response": sh(10, 8, 11),
        "arrival": sh(10, 8, 13),
        "resolution": sh(10, 1, 16),
    }


def test_priority_order_booked_on_a_saturday_starts_on_the_make_up_sunday() -> None:
    # Sat 09-19 10:00 is off; Sun 09-20 is a make-up working day from 08:30.
    # response 2 h -> Sun 09-20 10:30; arrival 7 h (suburban) -> Sun 15:30
    # resolution 16 h: 9 on Sun 09-20 + 7 on Mon 09-21 -> Mon 15:30
    assert due(book(sh(9, 19, 10), "priority", "suburban")) == {
        "response": sh(9, 20, 10, 30),
        "arrival": sh(9, 20, 15, 30),
        "resolution": sh(9, 21, 15, 30),
    }


def test_mid_autumn_friday_is_off() -> None:
    # Thu 09-24 17:00, priority: 0.5 h Thu; Fri 09-25..Sun 09-27 off; Mon 09-28 from 08:30.
    # response 2 h: 0.5 + 1.5 -> Mon 09-28 10:00
    assert due(book(sh(9, 24, 17), "priority"))["response"] == sh(9, 28, 10)


def test_order_booked_late_friday_before_the_make_up_saturday() -> None:
    # Fri 10-09 17:00, routine suburban: 0.5 h Fri, Sat 10-10 worked, Sun 10-11 off.
    # response 4 h: 0.5 + 3.5 -> Sat 10-10 12:00
    # arrival 7 h: 0.5 + 6.5 -> Sat 10-10 15:00
    # resolution 24 h round the clock (004 二(二), contract §11.3): Sat 10-10 17:00
    assert due(book(sh(10, 9, 17), zone="suburban")) == {
        "response": sh(10, 10, 12),
        "arrival": sh(10, 10, 15),
        "resolution": sh(10, 10, 17),
    }


def test_spring_festival() -> None:
    # Fri 02-13 15:00, priority urban: 2.5 h left on Fri; Sat 02-14 worked (make-up);
    # 02-15..02-23 off; Tue 02-24 from 08:30.
    # response 2 h -> Fri 02-13 17:00
    # arrival 6 h: 2.5 + 3.5 -> Sat 02-14 12:00
    # resolution 16 h: 2.5 + 9 (Sat) = 11.5, + 4.5 Tue 02-24 -> 13:00
    assert due(book(sh(2, 13, 15), "priority")) == {
        "response": sh(2, 13, 17),
        "arrival": sh(2, 14, 12),
        "resolution": sh(2, 24, 13),
    }


def test_urgent_orders_run_round_the_clock_through_the_holiday() -> None:
    # Thu 10-01 22:00 (a holiday night): 1 h, 4 h, 24 h of plain time.
    assert due(book(sh(10, 1, 22), "urgent")) == {
        "response": sh(10, 1, 23),
        "arrival": sh(10, 2, 2),
        "resolution": sh(10, 2, 22),
    }


def test_arrival_is_due_at_the_appointment_start() -> None:
    wo = book(sh(9, 28, 10), "priority", appointment=(sh(10, 8, 14), sh(10, 8, 16)))
    arrival = sla(wo)["arrival"]
    assert (arrival.clock, arrival.due_at) == ("appointment", sh(10, 8, 14))
    # Allowed: 09-28 10:00 -> 10-08 14:00 = 10 days 4 h; yellow at 80% = 8 days 3.2 h
    # after booking = 10-06 13:12.
    assert arrival.yellow_from == sh(10, 6, 13, 12)


def test_complaint_targets_around_national_day() -> None:
    # Wed 09-30 09:00, major. acknowledgement: 24 h plain -> Thu 10-01 09:00.
    # resolution 63 working h: 8.5 on 09-30; 10-01..07 off; 9 each on Thu 10-08, Fri 10-09,
    # Sat 10-10 (make-up), Mon 10-12, Tue 10-13, Wed 10-14 = 62.5; 0.5 on Thu 10-15 -> 09:00.
    # closure 135 h: 62.5 by 10-14; + 9 x 8 working days (10-15, 16, 19, 20, 21, 22, 23, 26)
    # = 134.5; 0.5 on Tue 10-27 -> 09:00.
    assert due(lodge(sh(9, 30, 9))) == {
        "acknowledgement": sh(10, 1, 9),
        "resolution": sh(10, 15, 9),
        "closure": sh(10, 27, 9),
    }


def test_critical_complaint_must_be_acknowledged_within_one_hour() -> None:
    c = lodge(sh(10, 2, 10), "critical")  # a holiday: the calendar clock runs anyway
    assert c.escalation_level == 3  # escalated at once, for no target
    acknowledgement = sla(c)["acknowledgement"]
    assert acknowledgement.due_at == sh(10, 2, 11)
    assert not acknowledgement.escalated


# -- status at an instant -----------------------------------------------------------


def test_status_goes_blue_then_yellow_at_80_percent_then_red_past_due() -> None:
    # Thu 10-08 09:00, priority: response 2 h -> 11:00; 80% = 1 h 36 min -> 10:36.
    response = sla(book(sh(10, 8, 9), "priority"))["response"]
    assert response.yellow_from == sh(10, 8, 10, 36)
    assert response.status_at(sh(10, 8, 9)) == "blue"
    assert response.status_at(sh(10, 8, 10, 36) - US) == "blue"
    assert response.status_at(sh(10, 8, 10, 36)) == "yellow"
    assert response.status_at(sh(10, 8, 11)) == "yellow"  # due, not yet past due
    assert response.status_at(sh(10, 8, 11) + US) == "red"
    assert response.breached is None  # still running


def test_yellow_and_red_follow_working_time_over_a_night() -> None:
    # Thu 10-08 16:00 routine: response 4 h = 1.5 Thu + 2.5 Fri -> Fri 10-09 11:00;
    # 80% = 3.2 h = 1.5 + 1.7 -> Fri 10:12. Thursday night only 1.5 of 4 h are used.
    response = sla(book(sh(10, 8, 16)))["response"]
    assert (response.yellow_from, response.due_at) == (sh(10, 9, 10, 12), sh(10, 9, 11))
    assert response.status_at(sh(10, 8, 23)) == "blue"
    assert response.status_at(sh(10, 9, 10, 30)) == "yellow"
    assert response.status_at(sh(10, 9, 12)) == "red"


def test_a_target_met_in_time_is_met_and_was_open_before() -> None:
    wo = book(sh(10, 8, 9), "priority")
    wo.assign(ctx(sh(10, 8, 10, 50)), "tech-1")
    response = sla(wo)["response"]
    assert response.met_at == sh(10, 8, 10, 50)
    assert response.status_at(sh(10, 8, 10, 40)) == "yellow"  # as it was then
    assert response.status_at(sh(10, 8, 10, 50)) == "met"
    assert response.breached is False


def test_a_target_met_late_is_met_but_breached() -> None:
    wo = book(sh(10, 8, 9), "priority")
    wo.assign(ctx(sh(10, 8, 12)), "tech-1")
    response = sla(wo)["response"]
    assert response.status_at(sh(10, 8, 11, 30)) == "red"
    assert response.status_at(sh(10, 8, 12)) == "met"
    assert response.breached is True


def test_the_first_assignment_meets_the_response() -> None:
    wo = book(sh(10, 8, 9), "priority")
    wo.assign(ctx(sh(10, 8, 9, 30)), "tech-1")
    wo.assign(ctx(sh(10, 8, 15)), "tech-2")
    assert sla(wo)["response"].met_at == sh(10, 8, 9, 30)


def accepted_priority_order() -> WorkOrder:
    """A priority order booked Wednesday 10-08 09:00 and taken through to its
    acceptance Friday 10-09 16:05 (arrived 10:30, completed 16:00)."""
    wo = book(sh(10, 8, 9), "priority")
    wo.assign(ctx(sh(10, 8, 9, 10)), "tech-1")
    wo.confirm(tech(sh(10, 8, 9, 20)))
    wo.depart(tech(sh(10, 8, 9, 30)))
    wo.arrive(tech(sh(10, 8, 10, 30)))
    wo.start(tech(sh(10, 8, 10, 40)), True, "ok", True, True, True)
    wo.complete(tech(sh(10, 9, 16)), "fixed", [], CHECKLIST)
    wo.accept(tech(sh(10, 9, 16, 5)), "王芳")
    return wo


def test_arrival_and_acceptance_meet_their_targets() -> None:
    wo = accepted_priority_order()
    got = sla(wo)
    assert got["arrival"].met_at == sh(10, 8, 10, 30)
    # resolution 16 h: 8.5 Thu (09:00-17:30) + 7.5 Fri -> Fri 10-09 16:00; accepted 16:05.
    assert got["resolution"].due_at == sh(10, 9, 16)
    assert got["resolution"].met_at == sh(10, 9, 16, 5)
    assert got["resolution"].breached is True
    assert {t.status_at(sh(10, 10)) for t in got.values()} == {"met"}


# -- pauses ---------------------------------------------------------------------------


def held_order() -> WorkOrder:
    # Mon 10-12 09:00, priority urban; assigned 09:30; on hold Mon 10:00 .. Tue 10-13 10:00.
    wo = book(sh(10, 12, 9), "priority")
    wo.assign(ctx(sh(10, 12, 9, 30)), "tech-1")
    wo.hold(ctx(sh(10, 12, 10)), "customer away")
    return wo


def test_a_hold_moves_the_due_times_out_by_the_paused_working_time() -> None:
    wo = held_order()
    wo.resume(ctx(sh(10, 13, 10)))
    got = sla(wo)
    # Paused working time: Mon 10:00-17:30 (7.5 h) + Tue 08:30-10:00 (1.5 h) = 9 h.
    # resolution 16 h: 1 h before the hold, then from Tue 10:00: 7.5 Tue, 7.5 Wed -> Wed 16:00
    # (without the hold: Tue 10-13 16:00, i.e. moved out by 9 working hours).
    assert got["resolution"].due_at == sh(10, 14, 16)
    assert got["resolution"].paused_seconds == 9 * 3600
    # arrival 6 h: 1 h before, 5 h from Tue 10:00 -> Tue 15:00 (without: Mon 15:00).
    assert got["arrival"].due_at == sh(10, 13, 15)
    # The response was met before the hold: untouched.
    assert (got["response"].due_at, got["response"].paused_seconds) == (sh(10, 12, 11), 0)
    assert got["resolution"].paused_since is None


def test_while_on_hold_the_due_time_is_unknown_and_the_status_stands_still() -> None:
    got = sla(held_order())
    arrival = got["arrival"]
    assert arrival.due_at is None and arrival.yellow_from is None
    assert arrival.paused_since == sh(10, 12, 10)
    assert arrival.paused_seconds == 0  # only ended holds count
    # 1 h of 6 used when the hold began: blue, for as long as the hold lasts.
    assert arrival.status_at(sh(10, 12, 9, 30)) == "blue"
    assert arrival.status_at(sh(12, 31, 23)) == "blue"


def test_a_target_red_before_the_hold_stays_red_during_it() -> None:
    # Thu 10-08 09:00 priority: response due 11:00; put on hold at 12:00, unassigned.
    wo = book(sh(10, 8, 9), "priority")
    wo.hold(ctx(sh(10, 8, 12)), "waiting for parts")
    response = sla(wo)["response"]
    assert response.due_at == sh(10, 8, 11)
    assert response.status_at(sh(10, 9, 9)) == "red"


def test_yellow_reached_before_the_hold_is_kept() -> None:
    # Thu 10-08 09:00 priority: response yellow from 10:36; hold at 10:45 with 15 min left.
    wo = book(sh(10, 8, 9), "priority")
    wo.hold(ctx(sh(10, 8, 10, 45)), "customer asked to wait")
    response = sla(wo)["response"]
    assert (response.yellow_from, response.due_at) == (sh(10, 8, 10, 36), None)
    assert response.status_at(sh(10, 20, 12)) == "yellow"


# -- ends without being met ---------------------------------------------------------


def test_cancelling_ends_open_targets() -> None:
    wo = book(sh(10, 8, 9), "priority")
    wo.assign(ctx(sh(10, 8, 9, 30)), "tech-1")
    wo.cancel(ctx(sh(10, 8, 10)), "customer fixed it")
    got = sla(wo)
    assert got["response"].status_at(sh(10, 8, 12)) == "met"
    for name in ("arrival", "resolution"):
        assert got[name].closed_as == "cancelled"
        assert got[name].status_at(sh(10, 8, 9, 45)) == "blue"  # before the cancel
        assert got[name].status_at(sh(10, 8, 10)) == "cancelled"
        assert got[name].breached is None  # not counted: it ended before its due time


def test_a_target_cancelled_after_its_due_time_was_breached() -> None:
    wo = book(sh(10, 8, 9), "priority")
    wo.cancel(ctx(sh(10, 8, 12)), "waited too long")  # response was due 11:00
    response = sla(wo)["response"]
    assert response.status_at(sh(10, 8, 11, 30)) == "red"
    assert response.status_at(sh(10, 8, 12)) == "cancelled"
    assert response.breached is True


def test_cancelling_while_on_hold_ends_the_hold_for_the_sla() -> None:
    wo = held_order()
    wo.cancel(ctx(sh(10, 13, 9)), "gave up")
    arrival = sla(wo)["arrival"]
    # The hold counts until the cancel: Mon 7.5 h + Tue 0.5 h = 8 h; 5 h were left.
    assert arrival.paused_seconds == 8 * 3600
    assert arrival.due_at == sh(10, 13, 14)
    assert arrival.breached is None


def test_remote_resolution_meets_resolution_and_waives_the_visit() -> None:
    wo = book(sh(10, 8, 9), "priority")
    wo.resolve_remotely(ctx(sh(10, 8, 9, 40)), "reset over the phone", "王芳")
    got = sla(wo)
    assert got["resolution"].met_at == sh(10, 8, 9, 40)
    assert got["resolution"].breached is False
    assert got["response"].status_at(sh(10, 9)) == "waived"
    assert got["arrival"].closed_as == "waived"


def test_complaint_targets_are_met_by_their_events() -> None:
    c = lodge(sh(10, 8, 9))
    c.acknowledge(ctx(sh(10, 8, 9, 30)))
    c.assign(ctx(sh(10, 8, 10)), "service quality", "sup-1")
    c.record_findings(ctx(sh(10, 9, 10)), "rude", ["call"], ["tech-1"], True)
    c.plan(ctx(sh(10, 9, 10, 30)), "apologise", "sup-1", sh(10, 10))
    c.resolve(ctx(sh(10, 9, 11)), "apologised", InformedVia.PHONE)
    c.confirm(ctx(sh(10, 9, 12)), False, 2)  # reopened: the resolution stays met
    c.plan(ctx(sh(10, 12, 10)), "refund", "sup-1", sh(10, 13))
    c.visit(ctx(sh(10, 12, 10, 30)), "sup-1", "")
    c.resolve(ctx(sh(10, 12, 11)), "refunded", InformedVia.VISIT)
    c.confirm(ctx(sh(10, 12, 12)), True, 4)
    got = sla(c)
    assert got["acknowledgement"].met_at == sh(10, 8, 9, 30)
    assert got["resolution"].met_at == sh(10, 9, 11)
    assert got["closure"].met_at == sh(10, 12, 12)
    assert all(t.breached is False for t in got.values())


# -- policy and calendar --------------------------------------------------------------


def test_rows_record_the_policy_they_were_computed_with() -> None:
    stricter = parse_policy(
        builtin_policy_text()
        .replace('name = "builtin"', 'name = "stricter"')
        .replace(
            'routine = { clock = "business", hours = 4 }',
            'routine = { clock = "business", hours = 3 }',
        )
    )
    wo = book(sh(10, 8, 9), policy=stricter)
    got = sla(wo, stricter)["response"]
    assert (got.due_at, got.policy_version) == (sh(10, 8, 12), stricter.version)


def test_a_target_running_into_a_year_without_make_up_data_says_so() -> None:
    # Thu 12-31 09:00 priority: resolution 16 working h = 8.5 + 7.5 in 2027 (01-01 off).
    # holidays has 2027's festivals but not its make-up working days yet.
    got = sla(book(sh(12, 31, 9), "priority"))
    assert got["resolution"].due_at is not None
    assert got["resolution"].due_at.year == 2027
    warning = got["resolution"].calendar_warning
    assert warning is not None and "2027" in warning and "CN" in warning
    assert got["response"].calendar_warning is None  # due on 12-30


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_warning_s_local_year_is_the_calendar_s_around_every_year_end(zone: str) -> None:
    # The year is read off the UTC instant except on 12-31 and 01-01 (UTC):
    # every hour from 12-29 to 01-03, in zones 14 h ahead of and 11 h behind UTC.
    calendar = BusinessCalendar(tz=zone)
    for year in (2026, 2027):
        first = datetime(year, 12, 29, tzinfo=UTC)
        for hours in range(24 * 6):
            for instant in (first + timedelta(hours=hours, minutes=30),
                            (first + timedelta(hours=hours)).astimezone(ZoneInfo(zone))):
                assert _local_year(calendar, instant) == calendar.local_date(instant).year
    assert _local_year(calendar, datetime(2026, 6, 1, tzinfo=UTC)) == 2026


def test_round_the_clock_targets_need_no_calendar_warning() -> None:
    assert sla(book(sh(12, 31, 22), "urgent"))["resolution"].calendar_warning is None


def test_subject_survives_its_plain_data_form() -> None:
    wo = held_order()
    wo.resume(ctx(sh(10, 13, 10)))
    wo.escalate(ctx(sh(10, 13, 11), Role.SYSTEM, "system"), 1, "late", "arrival")
    subject = Subject.from_events(wo.collect_events())
    assert subject is not None
    data: dict[str, Any] = subject.to_data()
    assert Subject.from_data(data) == subject
    assert subject.escalated_targets == ["arrival"] and subject.escalation_level == 1


# -- what a projection may skip: a target's facts --------------------------------------


def _fold_checking_facts(aggregate: WorkOrder | Complaint) -> list[tuple[str, str]]:
    """Fold the aggregate's events one by one; after each, every target whose
    facts did not change must equal its previous value but for the columns the
    subject holds directly (escalated, reminded), and one whose end alone moved
    (`only_the_end_moved`) but for those and its end. The (event, target) pairs
    whose facts changed, marked "(end)" when only the end moved."""
    events = list(aggregate.collect_events())
    subject = Subject.start(events[0])
    assert subject is not None
    calendar = calendar_for(POLICY, "Asia/Shanghai")
    names = target_names(subject.kind)
    previous = {t.target: t for t in targets(subject, POLICY, calendar)}
    changed: list[tuple[str, str]] = []
    for event in events[1:]:
        before = {name: target_facts(subject, name) for name in names}
        subject.apply(event)
        now = {t.target: t for t in targets(subject, POLICY, calendar)}
        for name in names:
            was, facts = previous[name], target_facts(subject, name)
            kept = replace(was, escalated=now[name].escalated, reminded=now[name].reminded)
            if facts == before[name]:
                assert kept == now[name], (type(event).__name__, name)
            elif only_the_end_moved(before[name], facts, was.due_at):
                ended = replace(
                    kept, met_at=facts.met_at, closed_at=facts.closed_at, closed_as=facts.closed_as
                )
                assert ended == now[name], (type(event).__name__, name)
                changed.append((type(event).__name__, f"{name} (end)"))
            else:
                changed.append((type(event).__name__, name))
        previous = now
    return changed


def test_a_target_whose_facts_stay_the_same_stays_the_same() -> None:
    wo = held_order()
    wo.remind(ctx(sh(10, 12, 10, 30), Role.SYSTEM, "system"), "arrival", "tech-1")
    wo.resume(ctx(sh(10, 13, 10)))
    wo.escalate(ctx(sh(10, 13, 11), Role.SYSTEM, "system"), 1, "late", "arrival")
    wo.hold(ctx(sh(10, 13, 12)), "parts")
    wo.cancel(ctx(sh(10, 14, 9)), "gave up")
    assert _fold_checking_facts(wo) == [
        ("Assigned", "response (end)"),
        # The holds stop the two targets still running, not the met response.
        ("PutOnHold", "arrival"), ("PutOnHold", "resolution"),
        ("Resumed", "arrival"), ("Resumed", "resolution"),
        ("PutOnHold", "arrival"), ("PutOnHold", "resolution"),
        # Cancelled on hold: the hold now ends there, so their times change.
        ("Cancelled", "arrival"), ("Cancelled", "resolution"),
    ]  # fmt: skip


def test_meeting_or_ending_a_target_moves_only_its_end() -> None:
    wo = accepted_priority_order()
    assert _fold_checking_facts(wo) == [
        ("Assigned", "response (end)"), ("Arrived", "arrival (end)"),
        ("Accepted", "resolution (end)"),
    ]  # fmt: skip
    remote = book(sh(10, 8, 9), "priority")
    remote.hold(ctx(sh(10, 8, 9, 10)), "customer away")
    remote.resume(ctx(sh(10, 8, 9, 40)))
    remote.resolve_remotely(ctx(sh(10, 8, 9, 50)), "reset over the phone", "王芳")
    assert _fold_checking_facts(remote)[-3:] == [
        ("ResolvedRemotely", "response (end)"), ("ResolvedRemotely", "arrival (end)"),
        ("ResolvedRemotely", "resolution (end)"),
    ]  # fmt: skip


def test_a_complaint_changes_one_target_per_meeting_event() -> None:
    c = lodge(sh(10, 8, 9))
    c.acknowledge(ctx(sh(10, 8, 9, 30)))
    c.assign(ctx(sh(10, 8, 10)), "service quality", "sup-1")
    c.record_findings(ctx(sh(10, 9, 10)), "rude", ["call"], ["tech-1"], True)
    c.plan(ctx(sh(10, 9, 10, 30)), "apologise", "sup-1", sh(10, 10))
    c.visit(ctx(sh(10, 9, 10, 40)), "sup-1", "")
    c.hand_over(ctx(sh(10, 9, 10, 50)), "sup-2", "back office")
    c.resolve(ctx(sh(10, 9, 11)), "apologised", InformedVia.VISIT)
    c.confirm(ctx(sh(10, 9, 12)), True, 4)
    assert _fold_checking_facts(c) == [
        ("Acknowledged", "acknowledgement (end)"), ("Resolved", "resolution (end)"),
        ("Closed", "closure (end)"),
    ]  # fmt: skip
