"""The rulebooks' appraisal rules, one test per rule, each naming its source
(contract §11.1, §11.2, §11.4, §11.7; rulebooks 000, 001, 003, 004). Pure:
the domain module `fieldledger.domain.appraisal` with the built-in policy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fieldledger.domain.appraisal import (
    ConductFact,
    TrainingFact,
    check_conduct,
    fault_standing,
    judge_conduct,
    late_arrival_points,
    notice_in_advance,
    nth_working_day,
    number_within_months,
    pass_rates,
    ratings_points,
    shift_lateness_points,
    training_deadlines,
    training_points,
)
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.policy import ConductPolicy, builtin_policy, parse_policy
from fieldledger.domain.sla import calendar_for

POLICY = builtin_policy()
CONDUCT = POLICY.conduct
D = Decimal


def check(kind: str, *, repeat: int = 1, **given: Any) -> Any:
    args: dict[str, Any] = {"points": None, "minutes": None, "discipline": None,
                            "extra_points": None, **given}  # fmt: skip
    for key in ("points", "extra_points"):
        if args[key] is not None:
            args[key] = D(str(args[key]))
    return check_conduct(CONDUCT, kind, repeat_of=lambda _kind: repeat, **args)


def month_of_records(*kinds: str, month: str = "2026-10", **choices: Any) -> list[Any]:
    facts = [ConductFact("tech-1", k, month, check(k, repeat=n + 1).points)
             for n, k in enumerate(kinds)]  # fmt: skip
    return judge_conduct(lambda _m: CONDUCT, facts)


# -- 001 4.2.2-3: shift lateness and absence ---------------------------------------


@pytest.mark.parametrize(("minutes", "points"), [(0, -1), (5, -1), (6, -5), (10, -5)])
def test_shift_lateness_bands_001_4_2_2_3(minutes: int, points: int) -> None:
    # 遲到5分鐘內扣1分,5~10分扣5分
    record = check("late_for_shift", minutes=minutes)
    assert (record.kind, record.points, record.minutes) == ("late_for_shift", points, minutes)


def test_shift_lateness_over_ten_minutes_is_an_absence_001_4_2_2_3() -> None:
    # 10分鐘後視缺勤
    assert shift_lateness_points(CONDUCT.kinds["late_for_shift"], 11) is None
    record = check("late_for_shift", minutes=11)
    assert (record.kind, record.points, record.minutes) == ("absence", -10, 11)


def test_absence_third_day_is_dismissal_001_4_2_2_3() -> None:
    # 缺勤三天給予自動離職處分: the 3rd absence day in a month, not a warning
    judged = month_of_records("absence", "absence", "absence")
    assert [j.discipline for j in judged] == [None, None, "dismissal"]
    assert [j.extra for j in judged] == [None, None, None]
    assert sum(j.fact.points for j in judged) == -30


@pytest.mark.parametrize("minutes", [-1, 24 * 60 + 1])
def test_minutes_negative_or_over_a_day_are_refused(minutes: int) -> None:
    with pytest.raises(InvalidCommand) as e:
        check("late_for_shift", minutes=minutes)
    assert e.value.field == "minutes"


def test_shift_lateness_needs_minutes_and_computes_its_points() -> None:
    with pytest.raises(InvalidCommand, match="minutes late"):
        check("late_for_shift")
    with pytest.raises(InvalidCommand) as e:
        check("late_for_shift", minutes=3, points=-1)
    assert e.value.field == "points"
    with pytest.raises(InvalidCommand) as e:
        check("uniform", minutes=3)
    assert e.value.field == "minutes"


# -- 001 4.2.2-1: quarrel ------------------------------------------------------------


@pytest.mark.parametrize("discipline", ["warning", "demerit", "dismissal"])
def test_quarrel_takes_the_supervisors_discipline_001_4_2_2_1(discipline: str) -> None:
    # 與業主爭吵者…處分,嚴重者自動離職
    record = check("quarrel", discipline=discipline)
    assert (record.points, record.discipline) == (0, discipline)
    judged = judge_conduct(lambda _m: CONDUCT,
                           [ConductFact("t", "quarrel", "2026-10", D(0), discipline)])  # type: ignore[arg-type]  # fmt: skip
    assert judged[0].discipline == discipline


def test_a_quarrel_must_say_its_discipline_and_others_may_not() -> None:
    with pytest.raises(InvalidCommand) as e:
        check("quarrel")
    assert e.value.field == "discipline"
    with pytest.raises(InvalidCommand) as e:
        check("chatting", discipline="warning")
    assert e.value.field == "discipline"


# -- 001 4.2.2-5: sleeping -------------------------------------------------------------


@pytest.mark.parametrize(("points", "allowed"),
                         [(-1, True), (-2, False), (-3, True), (-5, True), (-6, False)])  # fmt: skip
def test_sleeping_is_light_or_serious_001_4_2_2_5(points: int, allowed: bool) -> None:
    # 打瞌睡輕者扣1分,嚴重扣3~5分: -2 is neither
    if allowed:
        assert check("sleeping", points=points).points == points
    else:
        with pytest.raises(InvalidCommand) as e:
            check("sleeping", points=points)
        assert e.value.field == "points"
        assert "-1 or -5 to -3" in e.value.message


# -- 001 4.2.2-6: personal calls ---------------------------------------------------------


def test_personal_calls_warning_at_third_dismissal_at_fifth_no_fourth_step_001_4_2_2_6() -> None:
    # 一個月被查3次者,警告處分加扣10分,5次自動離職
    judged = month_of_records(*["personal_call"] * 5)
    assert [j.discipline for j in judged] == [None, None, "warning", None, "dismissal"]
    assert [j.extra for j in judged] == [None, None, -10, None, None]
    assert sum(j.fact.points for j in judged) + sum(j.extra or 0 for j in judged) == -35


# -- 001 4.2.2-7/8: chatting, reading ------------------------------------------------------


def test_four_chatting_records_cost_eight_to_twelve_001_4_2_2_7() -> None:
    # 聊天扣1分; 3次警告加扣1~3分,4次記過加扣3~5分,5次自動離職
    judged = month_of_records(*["chatting"] * 5)
    assert [j.discipline for j in judged] == [None, None, "warning", "demerit", "dismissal"]
    # default: the mildest extra points
    four = judged[:4]
    assert sum(j.fact.points for j in four) + sum(j.extra or 0 for j in four) == -8
    chosen = [ConductFact("t", "chatting", "2026-10", D(-1), None, extra)
              for extra in (None, None, D(-3), D(-5))]  # fmt: skip
    harshest = judge_conduct(lambda _m: CONDUCT, chosen)
    assert sum(j.fact.points for j in harshest) + sum(j.extra or 0 for j in harshest) == -12


@pytest.mark.parametrize(("repeat", "extra", "allowed"), [
    (3, -1, True), (3, -3, True), (3, -4, False), (4, -3, True), (4, -5, True), (4, -2, False),
    (2, -1, False), (5, -1, False),
])  # fmt: skip
def test_reading_extra_points_only_on_the_3rd_and_4th_within_range_001_4_2_2_8(
    repeat: int, extra: int, allowed: bool
) -> None:
    if allowed:
        assert check("reading", repeat=repeat, extra_points=extra).extra_points == extra
    else:
        with pytest.raises(InvalidCommand) as e:
            check("reading", repeat=repeat, extra_points=extra)
        assert e.value.field == "extra_points"


@pytest.mark.parametrize("kind", ["uniform", "grooming", "posture", "sleeping", "praise"])
def test_kinds_without_a_ladder_in_the_rulebook_get_none_001_4_2_1(kind: str) -> None:
    # 001 4.2.1 gives points only; ladders exist for calls, chatting, reading, absence
    facts = [ConductFact("t", kind, "2026-10", D(-1)) for _ in range(6)]
    assert [j.discipline for j in judge_conduct(lambda _m: CONDUCT, facts)] == [None] * 6


def test_the_ladder_counts_per_kind_per_month_per_staff_member() -> None:
    records = [("a", "chatting", "2026-10"), ("a", "reading", "2026-10"),
               ("a", "chatting", "2026-10"), ("b", "chatting", "2026-10"),
               ("a", "chatting", "2026-11"), ("a", "chatting", "2026-10")]  # fmt: skip
    assert number_within_months(records) == [1, 1, 2, 1, 1, 3]


# -- 001 檢查方法2: praise and good work ------------------------------------------------------


@pytest.mark.parametrize(("kind", "points", "allowed"), [
    ("praise", 5, True), ("praise", 10, True), ("praise", 4, False), ("praise", 11, False),
    ("good_work", 1, True), ("good_work", 5, True), ("good_work", 0, False),
    ("good_work", 6, False),
])  # fmt: skip
def test_praise_five_to_ten_good_work_one_to_five_001_check_method_2(
    kind: str, points: int, allowed: bool
) -> None:
    # 受業主表揚的給予5~10分的加分; 工作認真、表現好的給予一定的加分
    if allowed:
        assert check(kind, points=points).points == points
    else:
        with pytest.raises(InvalidCommand) as e:
            check(kind, points=points)
        assert e.value.field == "points"


def test_an_unknown_kind_lists_the_known_kinds() -> None:
    with pytest.raises(InvalidCommand) as e:
        check("smoking")
    assert e.value.field == "kind"
    for kind in ("absence", "chatting", "good_work", "late_for_shift", "quarrel"):
        assert kind in e.value.message


def test_the_first_policy_shape_is_still_read_with_dismissal_for_dismissal_recommended() -> None:
    old = parse_policy((Path(__file__).parent / "policy_before_section_11.toml").read_text())
    chatting = old.conduct.kinds["chatting"]
    assert [(s.at, s.discipline) for s in chatting.ladder] == [
        (3, "warning"), (4, "demerit"), (5, "dismissal")
    ]
    call = old.conduct.kinds["personal_call"].step_at(3)
    assert call is not None and call.extra is not None and call.extra.min == -10
    assert old.appraisal.ratings is None  # ratings did not count then
    assert isinstance(old.conduct, ConductPolicy)


# -- 000 二(三)1: lateness notice ------------------------------------------------------------

START = datetime(2026, 10, 14, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("notified", "counts"), [
    (START - timedelta(minutes=1), True), (START, False), (START + timedelta(minutes=40), False),
    (None, False),
])  # fmt: skip
def test_lateness_notice_counts_only_before_the_start_000_2_3_1(
    notified: datetime | None, counts: bool
) -> None:
    # 可能遲到,需提前與客戶溝通說明原因
    assert notice_in_advance(notified, START) is counts


def test_a_notice_40_minutes_after_the_start_leaves_45_minutes_late_charged_000_2_3_1() -> None:
    notified = notice_in_advance(START + timedelta(minutes=40), START)
    assert late_arrival_points(POLICY.appraisal, 45, notified) == -10


@pytest.mark.parametrize(("minutes", "points"), [(0, 0), (1, -1), (5, -1), (6, -5), (11, -10)])
def test_appointment_lateness_bands_are_the_policys(minutes: int, points: int) -> None:
    # contract §11.2: our numbers, not a rulebook's (source "policy")
    assert late_arrival_points(POLICY.appraisal, minutes, notified=False) == points
    assert POLICY.appraisal.sources.late_arrival == "policy"


# -- 003 第十七條: ratings ------------------------------------------------------------------


@pytest.mark.parametrize(("mean", "points"), [
    ("4", 2), ("3.5", 2), ("3.49", 0), ("2.5", 0), ("2.49", -2), ("1", -2),
])  # fmt: skip
def test_ratings_count_in_the_monthly_appraisal_003_17(mean: str, points: int) -> None:
    # 品評資料作為技術員每月績效考核之一部分
    assert ratings_points(POLICY.appraisal.ratings, D(mean)) == points
    assert ratings_points(POLICY.appraisal.ratings, None) == 0


# -- 004 4.1.3: service faults ----------------------------------------------------------------


def test_third_cumulative_fault_requires_retraining_until_cleared_004_4_1_3() -> None:
    # 累計3次不合格需調崗或培訓
    after = POLICY.service_faults.retraining_after
    assert fault_standing([True, True], after).retraining_required is False
    assert fault_standing([True, True, True], after).retraining_required is True
    cleared = fault_standing([True, True, True, False], after)
    assert (cleared.count, cleared.retraining_required) == (0, False)
    assert fault_standing([True, True, True, False, True, True], after).count == 2


# -- 001 第3篇 6.0: training ---------------------------------------------------------------------


def fact(**given: Any) -> TrainingFact:
    base: dict[str, Any] = {"training_kind": "monthly", "held_on": date(2026, 10, 20),
                            "attended": True, "disciplined": True, "form_completed": True,
                            "test_passed": None, "attempt": None, **given}  # fmt: skip
    return TrainingFact(**base)


def test_training_points_001_part3_6_0() -> None:
    # 無故缺席扣2分; 違反課堂紀律扣1分; 未填寫反饋表扣1分
    t = POLICY.training
    assert training_points(t, fact(attended=False)) == [("absent without excuse", -2)]
    assert [p for _, p in training_points(t, fact(disciplined=False, form_completed=False))] == [
        -1, -1
    ]
    assert training_points(t, fact(test_passed=True, attempt=2)) == []


@pytest.mark.parametrize(("attempt", "points"), [(1, -3), (2, -6), (3, -10), (4, -10)])
def test_failed_tests_cost_three_six_ten_001_part3_6_0(attempt: int, points: int) -> None:
    # 第一次不合格扣3分,第二次6分,第三次10分
    assert training_points(POLICY.training, fact(test_passed=False, attempt=attempt)) == [
        (f"{attempt}{'st' if attempt == 1 else 'nd' if attempt == 2 else 'rd' if attempt == 3 else 'th'} failed test", points)
    ]  # fmt: skip


def test_pass_rate_targets_by_attempt_001_part3_6_0() -> None:
    # 學員考評合格率 90% / 95% / 100%
    rates = pass_rates(POLICY.training, [("induction", 1, True)] * 9 + [("induction", 1, False)]
                       + [("induction", 2, True)])  # fmt: skip
    assert [(r.attempt, r.tests, r.passed, r.target_pct) for r in rates] == [
        (1, 10, 9, 90), (2, 1, 1, 95)
    ]
    assert POLICY.training.pass_rate_target(3) == 100


CALENDAR = calendar_for(POLICY, "Asia/Shanghai")


def test_working_days_skip_weekends_and_holidays() -> None:
    # National Day 2026 runs 1-7 October: the 1st working day from the 1st is the
    # 8th; Saturday 10 October is a make-up working day
    assert nth_working_day(CALENDAR, date(2026, 9, 30), 1) == date(2026, 9, 30)
    assert nth_working_day(CALENDAR, date(2026, 10, 1), 1) == date(2026, 10, 8)
    assert nth_working_day(CALENDAR, date(2026, 10, 1), 3) == date(2026, 10, 10)


def test_training_deadlines_from_joined_on_001_part3_2_and_4() -> None:
    # 新員工到崗後2個工作日內理論培訓; 第10個工作日理論考核; 下月前5個工作日考核
    joined = date(2026, 11, 2)  # a Monday
    due = training_deadlines(POLICY.training, CALENDAR, joined, date(2027, 1, 20))
    by_name = {d.requirement: d.due_on for d in due}
    assert by_name["induction_theory"] == date(2026, 11, 3)
    assert by_name["induction_test"] == date(2026, 11, 13)
    assert by_name["monthly_test 2026-12"] == date(2027, 1, 8)  # 1 Jan is a holiday
    assert "monthly_test 2026-11" not in by_name  # joined after the 1st: not a full month
    assert not any(name.startswith("fire_safety") for name in by_name)
    later = training_deadlines(POLICY.training, CALENDAR, joined, date(2027, 4, 2))
    assert {d.requirement: d.due_on for d in later}["fire_safety_test 2027-01"] == date(
        2027, 3, 31
    )
