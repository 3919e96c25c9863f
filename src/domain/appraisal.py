"""The appraisal rules of the rulebooks, as pure functions of facts and a policy.

Each rule lives here once: the staff aggregate asks it when a supervisor records
something (is this 3rd chatting record allowed extra points?), the appraisal
read model asks it when a month is appraised (what does this month's 3rd
chatting cost?). No database, no clock: the unit tests name each rule's source
(contract §11.1, §11.2, §11.4, §11.7; rulebooks 000, 001, 003, 004).

Sources: 001 客服人員管理制度 §4.2 (conduct), 第3篇 (training); 000 上門服務
二(三)1 (lateness notice); 003 第十七條 (ratings); 004 4.1.3 (service faults).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.periods import add_months
from fieldledger.domain.policy import (
    TRAINING_KINDS,
    AppraisalPolicy,
    ConductKind,
    ConductPolicy,
    Discipline,
    LadderStep,
    RatingsPolicy,
    TrainingPolicy,
)

#: Minutes beyond which a shift lateness is absurd: a day.
MAX_MINUTES = 24 * 60

#: The order of the steps of discipline, mildest first.
SEVERITY: dict[Discipline, int] = {"warning": 1, "demerit": 2, "dismissal": 3}


# -- lateness ------------------------------------------------------------------


def notice_in_advance(notified_at: datetime | None, appointment_start: datetime | None) -> bool:
    """A lateness notice counts only if it occurred before the appointment start
    (000 二(三)1: 可能遲到,需提前與客戶溝通說明原因). Without an appointment
    there is nothing to be late for, and any notice is in advance."""
    if notified_at is None:
        return False
    return appointment_start is None or notified_at < appointment_start


def late_arrival_points(policy: AppraisalPolicy, minutes_late: int, notified: bool) -> Decimal:
    """Points for arriving `minutes_late` after the appointment start: nothing on
    time or after a notice in advance, else the policy's band (our numbers)."""
    if minutes_late <= 0 or notified:
        return Decimal(0)
    return policy.lateness_points(minutes_late)


def shift_lateness_points(kind: ConductKind, minutes: int) -> Decimal | None:
    """Points for coming `minutes` late to a shift: the first band holding them
    (001 4.2.2-3: 遲到5分鐘內扣1分,5~10分扣5分); None past the last band, where
    the lateness is an absence instead (10分鐘後視缺勤)."""
    for band in kind.minutes_bands:
        if minutes <= band.up_to_minutes:
            return band.points
    return None


# -- monthly numbering and ladders ----------------------------------------------


def number_within_months(records: Iterable[tuple[str, str, str]]) -> list[int]:
    """For records (staff id, kind, month) in the order they occurred, each one's
    number among its staff member's records of that kind in that month: the
    ladder counts per kind within one calendar month (001 4.2.2-6/7/8: 一個月被查3次)."""
    seen: dict[tuple[str, str, str], int] = {}
    numbers = []
    for key in records:
        seen[key] = seen.get(key, 0) + 1
        numbers.append(seen[key])
    return numbers


@dataclass(frozen=True)
class ConductRecord:
    """What a supervisor recorded, checked: the kind (an absence when a shift
    lateness went past its bands), the points, and the choices made."""

    kind: str
    points: Decimal
    minutes: int | None = None
    discipline: Discipline | None = None
    extra_points: Decimal | None = None


def check_conduct(
    policy: ConductPolicy,
    kind: str,
    *,
    points: Decimal | None,
    minutes: int | None,
    discipline: Discipline | None,
    extra_points: Decimal | None,
    repeat_of: RepeatCounter,
) -> ConductRecord:
    """The record a supervisor's conduct command makes, or InvalidCommand naming
    the field. `repeat_of(kind)` says which repeat of the kind this month the
    record would be (1 for the first)."""
    spec = policy.kinds.get(kind)
    if spec is None:
        raise InvalidCommand("kind", f"unknown conduct kind {kind!r}; known: "
                             + ", ".join(sorted(policy.kinds)))  # fmt: skip
    if minutes is not None and not 0 <= minutes <= MAX_MINUTES:
        raise InvalidCommand("minutes", f"must be from 0 to {MAX_MINUTES} (a day), not {minutes}")
    if spec.minutes_bands:
        if minutes is None:
            raise InvalidCommand("minutes", f"{kind} is recorded with the minutes late")
        if points is not None:
            raise InvalidCommand("points", f"{kind} points are computed from the minutes")
        banded = shift_lateness_points(spec, minutes)
        if banded is None:  # over the last band: an absence (001 4.2.2-3)
            assert spec.beyond_bands is not None
            kind, spec = spec.beyond_bands, policy.kinds[spec.beyond_bands]
        else:
            points = banded
    elif minutes is not None:
        raise InvalidCommand("minutes", f"only a kind counted in minutes takes them, not {kind}")
    if discipline is not None and not spec.discipline_chosen:
        raise InvalidCommand(
            "discipline", f"{kind} takes no discipline: its ladder gives it"
            if spec.ladder else f"{kind} takes no discipline"
        )  # fmt: skip
    if spec.discipline_chosen and discipline is None:
        raise InvalidCommand("discipline", f"{kind}: say which discipline (warning, demerit "
                             "or dismissal)")  # fmt: skip
    if points is None:
        points = spec.single_value
        if points is None:
            raise InvalidCommand("points", f"{kind} takes {spec.describe()} points: say how many")
    elif not spec.allows(points):
        raise InvalidCommand("points", f"{kind} takes {spec.describe()} points, not {points}")
    if extra_points is not None:
        repeat = repeat_of(kind)
        step = spec.step_at(repeat)
        if step is None or step.extra is None:
            with_extra = [s.at for s in spec.ladder if s.extra is not None]
            where = (
                "only the " + " or ".join(ordinal(n) for n in with_extra) + " record this month"
                if with_extra else "none of its records"
            )  # fmt: skip
            raise InvalidCommand(
                "extra_points", f"this is the {ordinal(repeat)} {kind} this month; "
                f"{kind} takes extra points on {where}",
            )  # fmt: skip
        if not step.extra.holds(extra_points):
            raise InvalidCommand(
                "extra_points", f"the {ordinal(repeat)} {kind} takes extra points "
                f"{step.extra.describe()}, not {extra_points}",
            )  # fmt: skip
    return ConductRecord(kind, points, minutes, discipline, extra_points)


class RepeatCounter(Protocol):
    def __call__(self, kind: str) -> int: ...


@dataclass(frozen=True)
class ConductFact:
    """A conduct record as the appraisal knows it."""

    staff_id: str
    kind: str
    month: str
    points: Decimal
    discipline: Discipline | None = None
    extra_points: Decimal | None = None


@dataclass(frozen=True)
class ConductJudgement:
    """What one conduct record brings in its month: its points, its number
    among the month's records of its kind, the ladder's step there (if any)
    with its extra points, and the discipline."""

    fact: ConductFact
    repeat: int
    source: str
    step: LadderStep | None = None
    extra: Decimal | None = None
    discipline: Discipline | None = None


def judge_conduct(policies: PolicyByMonth, facts: Sequence[ConductFact]) -> list[ConductJudgement]:
    """Judge conduct records given in the order they occurred, each under the
    conduct policy of its month. A kind unknown to that month's policy (a record
    kept under another one) brings its points and no step."""
    numbers = number_within_months((f.staff_id, f.kind, f.month) for f in facts)
    judged = []
    for fact, repeat in zip(facts, numbers, strict=True):
        spec = policies(fact.month).kinds.get(fact.kind)
        if spec is None:
            judged.append(ConductJudgement(fact, repeat, "policy", discipline=fact.discipline))
            continue
        step = spec.step_at(repeat)
        extra = None
        if step is not None and step.extra is not None:
            extra = fact.extra_points if fact.extra_points is not None else step.extra.mildest
        discipline = fact.discipline if spec.discipline_chosen else None
        if step is not None:
            discipline = step.discipline
        judged.append(ConductJudgement(fact, repeat, spec.source, step, extra, discipline))
    return judged


class PolicyByMonth(Protocol):
    def __call__(self, month: str) -> ConductPolicy: ...


# -- service faults --------------------------------------------------------------


@dataclass(frozen=True)
class FaultStanding:
    """Faults counted since the last retraining or reassignment."""

    count: int
    retraining_required: bool


def fault_standing(events: Iterable[bool], retraining_after: int) -> FaultStanding:
    """`events` in the order they occurred: True for a service fault (a failed
    spot check, a complaint at fault naming them), False for a retraining or a
    reassignment, which starts the count again. Faults accumulate across months
    (004 4.1.3: 累計3次不合格需調崗或培訓)."""
    count = 0
    for is_fault in events:
        count = count + 1 if is_fault else 0
    return FaultStanding(count, count >= retraining_after)


# -- ratings ----------------------------------------------------------------------


def ratings_points(policy: RatingsPolicy | None, mean: Decimal | None) -> Decimal:
    """The month's mean rating (four 1-4 dimensions of the month's feedback)
    counts in the appraisal (003 第十七條: 品評資料作為技術員每月績效考核之一部分)."""
    if policy is None or mean is None:
        return Decimal(0)
    if mean >= policy.good_from:
        return policy.good_points
    if mean < policy.poor_below:
        return policy.poor_points
    return Decimal(0)


# -- training ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingFact:
    training_kind: str
    held_on: date
    attended: bool
    disciplined: bool
    form_completed: bool
    test_passed: bool | None
    #: The test's attempt since the last pass of the kind (1 for the first).
    attempt: int | None


def training_points(policy: TrainingPolicy, fact: TrainingFact) -> list[tuple[str, Decimal]]:
    """The points a training record brings in the month held (001 第3篇 6.0
    培訓考核獎罰細則): unexcused absence, breach of class discipline, feedback
    form not completed, and a failed test by its number since the last pass."""
    if not fact.attended:
        return [("absent without excuse", policy.unexcused_absence)]
    found = []
    if not fact.disciplined:
        found.append(("breach of class discipline", policy.breach_of_discipline))
    if not fact.form_completed:
        found.append(("feedback form not completed", policy.form_not_completed))
    if fact.test_passed is False and fact.attempt is not None:
        found.append(
            (f"{ordinal(fact.attempt)} failed test", policy.failed_test_points(fact.attempt))
        )
    return found


def final_failure_deadline(
    policy: TrainingPolicy, attempt: int, held_on: date, given: date | None
) -> date | None:
    """The failure that sets the deadline (the 3rd) gets one: the supervisor's,
    or the policy's days after the test. Others get none."""
    if attempt != policy.dismissal_after_failures:
        return None
    return given if given is not None else held_on + timedelta(days=policy.retest_within_days)


class WorkingDays(Protocol):
    def is_working_day(self, d: date) -> bool: ...


def nth_working_day(calendar: WorkingDays, start: date, n: int) -> date:
    """The nth working day counting `start` itself when it is one."""
    day, found = start, 0
    while True:
        if calendar.is_working_day(day):
            found += 1
            if found == n:
                return day
        day += timedelta(days=1)


@dataclass(frozen=True)
class TrainingDue:
    """A training deadline: `requirement` by `due_on`, met by a record of
    `training_kind` held within [`from_on`, `due_on`] (with a test if `test`)."""

    requirement: str
    training_kind: str
    from_on: date
    due_on: date
    test: bool


def training_deadlines(
    policy: TrainingPolicy, calendar: WorkingDays, joined_on: date, today: date
) -> list[TrainingDue]:
    """Deadlines passed by `today` for a staff member who joined on `joined_on`
    (001 第3篇): induction theory within 2 working days, the induction test on
    the 10th; each full month's test within the first 5 working days of the next
    month; a fire-safety test each quarter (each full quarter after joining)."""
    due = [
        TrainingDue("induction_theory", "induction", joined_on,
                    nth_working_day(calendar, joined_on,
                                    policy.induction_theory_within_working_days), test=False),
        TrainingDue("induction_test", "induction", joined_on,
                    nth_working_day(calendar, joined_on, policy.induction_test_on_working_day),
                    test=True),
    ]  # fmt: skip
    month = joined_on.replace(day=1)
    if month < joined_on:  # the first full month
        month = add_months(month, 1)
    while True:
        next_month = add_months(month, 1)
        deadline = nth_working_day(calendar, next_month, policy.monthly_test_within_working_days)
        if deadline >= today:
            break
        due.append(TrainingDue(f"monthly_test {month:%Y-%m}", "monthly", next_month, deadline,
                               test=True))  # fmt: skip
        month = next_month
    every = policy.fire_safety_every_months
    start = joined_on.replace(day=1)
    while (start.month - 1) % every != 0 or start < joined_on:  # the first full quarter
        start = add_months(start, 1)
    while True:
        end = add_months(start, every) - timedelta(days=1)
        if end >= today:
            break
        due.append(TrainingDue(f"fire_safety_test {start:%Y-%m}", "fire_safety", start, end,
                               test=True))  # fmt: skip
        start = add_months(start, every)
    return [d for d in due if d.due_on < today]


def met(deadline: TrainingDue, records: Iterable[TrainingFact]) -> bool:
    return any(
        r.training_kind == deadline.training_kind
        and r.attended
        and deadline.from_on <= r.held_on <= deadline.due_on
        and (not deadline.test or r.test_passed is not None)
        for r in records
    )


@dataclass
class PassRate:
    training_kind: str
    attempt: int
    tests: int = 0
    passed: int = 0
    target_pct: Decimal = Decimal(0)


def pass_rates(policy: TrainingPolicy, tests: Iterable[tuple[str, int, bool]]) -> list[PassRate]:
    """Tests (kind, attempt, passed) → the pass rate per kind and attempt, with
    its target (001 第3篇 6.0: 學員考評合格率 90% / 95% / 100%)."""
    rates: dict[tuple[str, int], PassRate] = {}
    for kind, attempt, passed in tests:
        rate = rates.get((kind, attempt))
        if rate is None:
            rate = rates[(kind, attempt)] = PassRate(
                kind, attempt, target_pct=policy.pass_rate_target(attempt)
            )
        rate.tests += 1
        rate.passed += int(passed)
    order: dict[str, int] = {k: i for i, k in enumerate(TRAINING_KINDS)}
    return sorted(rates.values(), key=lambda r: (order.get(r.training_kind, 99), r.attempt))


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
