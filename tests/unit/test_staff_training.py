"""A staff member's training record (contract §11.7; 001 第3篇 6.0): failures count
per kind since the last pass, the 3rd sets the deadline, the sweep records each
deadline passed once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.sla import calendar_for
from fieldledger.domain.staff import StaffMember

POLICY = builtin_policy()
TRAINING = POLICY.training
CALENDAR = calendar_for(POLICY, "Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def ctx() -> Context:
    return Context("sup-1", Role.SUPERVISOR, NOW)


def staff() -> StaffMember:
    return StaffMember.register(ctx(), "tech-1")


def test_failures_count_per_kind_since_the_last_pass_001_part3_6_0() -> None:
    s = staff()
    for passed in (False, False, True, False):
        s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, 5), True, test_passed=passed)
    s.record_training(ctx(), TRAINING, "induction", date(2026, 10, 6), True, test_passed=False)
    events = s.collect_events()[1:]
    assert [(e.training_kind, e.attempt) for e in events] == [
        ("monthly", 1), ("monthly", 2), ("monthly", 3), ("monthly", 1), ("induction", 1)
    ]
    assert s.failures == {"monthly": 1, "induction": 1}


def test_the_third_failure_sets_a_deadline_and_only_it_001_part3_6_0() -> None:
    # 第三次不合格…辭退: dismissal if not passed by a set deadline
    s = staff()
    with pytest.raises(InvalidCommand) as e:
        s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, 5), True,
                          test_passed=False, deadline=date(2026, 11, 1))  # fmt: skip
    assert e.value.field == "deadline"
    for _ in range(2):
        s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, 5), True, test_passed=False)
    s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, 19), True, test_passed=False)
    third = s.collect_events()[-1]
    assert third.deadline == date(2026, 10, 19) + timedelta(days=TRAINING.retest_within_days)


def test_an_unpassed_deadline_is_a_dismissal_recorded_once() -> None:
    s = staff()
    for held in (5, 12):
        s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, held), True,
                          test_passed=False)  # fmt: skip
    s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, 19), True, test_passed=False,
                      deadline=date(2026, 10, 30))  # fmt: skip
    assert s.training_due(TRAINING, CALENDAR, date(2026, 10, 30)) == ([], [])
    assert s.sweep_training(ctx(), TRAINING, CALENDAR, date(2026, 10, 31)) == 1
    assert isinstance(s.collect_events()[-1], StaffMember.Dismissed)
    assert s.sweep_training(ctx(), TRAINING, CALENDAR, date(2026, 11, 30)) == 0


def test_a_pass_by_the_deadline_averts_the_dismissal() -> None:
    s = staff()
    for held in (5, 12, 19):
        s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, held), True,
                          test_passed=False)  # fmt: skip
    s.record_training(ctx(), TRAINING, "monthly", date(2026, 10, 26), True, test_passed=True)
    assert s.training_due(TRAINING, CALENDAR, date(2027, 1, 1))[1] == []


def test_an_absent_trainee_takes_no_test() -> None:
    with pytest.raises(InvalidCommand) as e:
        staff().record_training(ctx(), TRAINING, "monthly", date(2026, 10, 5), False,
                                test_passed=True)  # fmt: skip
    assert e.value.field == "attended"


def test_joining_is_recorded_once_and_overdue_deadlines_once() -> None:
    s = staff()
    s.join(ctx(), date(2026, 10, 8))
    with pytest.raises(CommandNotAllowed):
        s.join(ctx(), date(2026, 10, 9))
    recorded = s.sweep_training(ctx(), TRAINING, CALENDAR, date(2026, 11, 23))
    overdue = [e.requirement for e in s.collect_events() if isinstance(e, StaffMember.TrainingOverdue)]
    assert recorded == len(overdue) and {"induction_theory", "induction_test"} <= set(overdue)
    assert s.sweep_training(ctx(), TRAINING, CALENDAR, date(2026, 11, 23)) == 0
