"""A staff member's record: conduct, spot checks, retraining, joining and
training, as supervisors record them; training deadlines and dismissals as the
sweep records them (contract §11.1, §11.7).

The staff member is addressed by the same id as everywhere else (the technician
id of work orders, the actor id of tokens); its aggregate id is derived from it.
Which repeat of a kind in a month brings a warning, and what it costs, is
decided by the rules of `appraisal.py` under the policy of the month: the
events keep the facts and the supervisor's choices, so that a month is
appraised under the policy in force for it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from fieldledger.domain.appraisal import (
    TrainingDue,
    TrainingFact,
    WorkingDays,
    check_conduct,
    final_failure_deadline,
    met,
    ordinal,
    training_deadlines,
)
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Context, LedgerAggregate, require_text
from fieldledger.domain.periods import month_of
from fieldledger.domain.policy import TRAINING_KINDS, ConductPolicy, Discipline, TrainingPolicy

STAFF_NAMESPACE = UUID("6d1f7f64-4c7e-4f7b-9d55-2f3a7c1e5b10")


def staff_aggregate_id(staff_id: str) -> UUID:
    return uuid5(STAFF_NAMESPACE, staff_id)


class StaffMember(LedgerAggregate):
    kind = "staff member"

    class Event(LedgerAggregate.Event):
        pass

    class Registered(Event, Aggregate.Created):
        staff_id: str

        def happen(self, s: StaffMember) -> None:
            s.staff_id = self.staff_id

    class ConductRecorded(Event):
        staff_id: str
        kind: str
        points: Decimal
        note: str
        # Contract §11.1; absent from records made before it (class defaults).
        #: Minutes late for a shift (the points were computed from them).
        minutes: int | None = None
        #: The discipline a supervisor chose (a quarrel with a customer).
        discipline: str | None = None
        #: Extra points chosen for a ladder's step; None: the policy's mildest.
        extra_points: Decimal | None = None

        def happen(self, s: StaffMember) -> None:
            s.conduct_records += 1
            s.conduct_log.append((self.kind, self.occurred_at))

    class QualityChecked(Event):
        """A spot check of the staff member's work (004 4.1.1); a failure is a
        service fault (004 4.1.3)."""

        staff_id: str
        passed: bool
        notes: str

    class Retrained(Event):
        """Retraining done: the service-fault count starts again."""

        staff_id: str
        note: str

    class Reassigned(Event):
        """Moved to another post (調崗): the service-fault count starts again."""

        staff_id: str
        note: str

    class Joined(Event):
        staff_id: str
        on: date

        def happen(self, s: StaffMember) -> None:
            s.joined_on = self.on

    class TrainingRecorded(Event):
        staff_id: str
        training_kind: str
        held_on: date
        attended: bool
        disciplined: bool
        form_completed: bool
        #: None when no test was held.
        test_passed: bool | None
        #: The test's attempt since the last pass of this kind (1 for the first).
        attempt: int | None
        #: Set on the failure after which an unpassed test means dismissal.
        deadline: date | None

        def happen(self, s: StaffMember) -> None:
            s.training.append(self.fact)
            if self.test_passed is True:
                s.failures[self.training_kind] = 0
                s.deadlines.pop(self.training_kind, None)
            elif self.test_passed is False:
                s.failures[self.training_kind] = s.failures.get(self.training_kind, 0) + 1
            if self.deadline is not None:
                s.deadlines[self.training_kind] = self.deadline

        @property
        def fact(self) -> TrainingFact:
            return TrainingFact(
                self.training_kind, self.held_on, self.attended, self.disciplined,
                self.form_completed, self.test_passed, self.attempt,
            )  # fmt: skip

    class TrainingOverdue(Event):
        """A training deadline passed unmet (recorded once by the sweep)."""

        staff_id: str
        requirement: str
        training_kind: str
        due_on: date

        def happen(self, s: StaffMember) -> None:
            s.overdue.add((self.requirement, self.due_on))

    class Dismissed(Event):
        """Dismissal: the test failed for the last time was not passed by its
        deadline (001 第3篇 6.0: 第三次不合格…辭退), recorded once by the sweep."""

        staff_id: str
        cause: str
        training_kind: str
        deadline: date

        def happen(self, s: StaffMember) -> None:
            s.dismissals.add((self.training_kind, self.deadline))

    def __init__(self) -> None:
        super().__init__()
        self.staff_id: str
        self.state = "active"
        self.conduct_records = 0
        self.conduct_log: list[tuple[str, datetime]] = []
        self.joined_on: date | None = None
        self.training: list[TrainingFact] = []
        self.failures: dict[str, int] = {}
        self.deadlines: dict[str, date] = {}
        self.overdue: set[tuple[str, date]] = set()
        self.dismissals: set[tuple[str, date]] = set()

    @classmethod
    def register(cls, ctx: Context, staff_id: str) -> StaffMember:
        staff_id = require_text("staff_id", staff_id, max_length=200)
        return cls._begin(cls.Registered, ctx, id=staff_aggregate_id(staff_id), staff_id=staff_id)

    # -- conduct (contract §11.1) ---------------------------------------------

    def record_conduct(
        self,
        ctx: Context,
        policy: ConductPolicy,
        kind: str,
        points: Decimal | None,
        note: str,
        *,
        minutes: int | None = None,
        discipline: Discipline | None = None,
        extra_points: Decimal | None = None,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        month = month_of(ctx.when, timezone)

        def repeat_of(kind: str) -> int:
            return 1 + sum(
                1 for k, at in self.conduct_log if k == kind and month_of(at, timezone) == month
            )

        record = check_conduct(
            policy, kind, points=points, minutes=minutes, discipline=discipline,
            extra_points=extra_points, repeat_of=repeat_of,
        )  # fmt: skip
        self._record(
            self.ConductRecorded, ctx, staff_id=self.staff_id, kind=record.kind,
            points=record.points, note=note.strip(), minutes=record.minutes,
            discipline=record.discipline, extra_points=record.extra_points,
        )  # fmt: skip

    # -- service faults (contract §11.1; 004 4.1) -------------------------------

    def check_quality(self, ctx: Context, passed: bool, notes: str) -> None:
        self._record(self.QualityChecked, ctx, staff_id=self.staff_id, passed=passed,
                     notes=notes.strip())  # fmt: skip

    def retrain(self, ctx: Context, note: str) -> None:
        self._record(self.Retrained, ctx, staff_id=self.staff_id, note=require_text("note", note))

    def reassign(self, ctx: Context, note: str) -> None:
        self._record(self.Reassigned, ctx, staff_id=self.staff_id,
                     note=require_text("note", note))  # fmt: skip

    # -- training (contract §11.7; 001 第3篇) ------------------------------------

    def join(self, ctx: Context, on: date) -> None:
        if self.joined_on is not None and self.joined_on != on:
            raise self.refuse("joined", f"joined on {self.joined_on.isoformat()} already")
        if self.joined_on == on:
            raise self.refuse("joined", f"joined on {on.isoformat()} is recorded already")
        self._record(self.Joined, ctx, staff_id=self.staff_id, on=on)

    def record_training(
        self,
        ctx: Context,
        policy: TrainingPolicy,
        training_kind: str,
        held_on: date,
        attended: bool,
        disciplined: bool = True,
        form_completed: bool = True,
        test_passed: bool | None = None,
        deadline: date | None = None,
    ) -> None:
        if training_kind not in TRAINING_KINDS:
            raise InvalidCommand("kind", f"unknown training kind {training_kind!r}; known: "
                                 + ", ".join(TRAINING_KINDS))  # fmt: skip
        if not attended and (test_passed is not None or not disciplined or not form_completed):
            raise InvalidCommand("attended", "an absent trainee took no test and broke no rule")
        attempt = None if test_passed is None else self.failures.get(training_kind, 0) + 1
        final = None
        if test_passed is False and attempt is not None:
            final = final_failure_deadline(policy, attempt, held_on, deadline)
        if deadline is not None:
            if final is None:
                raise InvalidCommand(
                    "deadline", f"only the {ordinal(policy.dismissal_after_failures)} failed "
                    f"test of a kind takes a deadline; this is "
                    + ("no failed test" if attempt is None or test_passed
                       else f"the {ordinal(attempt)}"),
                )  # fmt: skip
            if deadline <= held_on:
                raise InvalidCommand("deadline", "must lie after the day the test was held")
        self._record(
            self.TrainingRecorded, ctx, staff_id=self.staff_id, training_kind=training_kind,
            held_on=held_on, attended=attended, disciplined=disciplined,
            form_completed=form_completed, test_passed=test_passed, attempt=attempt,
            deadline=final,
        )  # fmt: skip

    def training_due(
        self, policy: TrainingPolicy, calendar: WorkingDays, today: date
    ) -> tuple[list[TrainingDue], list[tuple[str, date]]]:
        """What a sweep on `today` must record: deadlines passed unmet and not
        recorded yet, and dismissals for final deadlines passed unpassed."""
        overdue: list[TrainingDue] = []
        if self.joined_on is not None:
            overdue = [
                d for d in training_deadlines(policy, calendar, self.joined_on, today)
                if (d.requirement, d.due_on) not in self.overdue and not met(d, self.training)
            ]  # fmt: skip
        dismissals = [
            (kind, deadline) for kind, deadline in sorted(self.deadlines.items())
            if deadline < today and (kind, deadline) not in self.dismissals
        ]  # fmt: skip
        return overdue, dismissals

    def sweep_training(
        self, ctx: Context, policy: TrainingPolicy, calendar: WorkingDays, today: date
    ) -> int:
        """Record what `training_due` finds, each once; the number recorded."""
        overdue, dismissals = self.training_due(policy, calendar, today)
        for d in overdue:
            self._record(self.TrainingOverdue, ctx, staff_id=self.staff_id,
                         requirement=d.requirement, training_kind=d.training_kind,
                         due_on=d.due_on)  # fmt: skip
        for kind, deadline in dismissals:
            self._record(self.Dismissed, ctx, staff_id=self.staff_id, cause="training",
                         training_kind=kind, deadline=deadline)  # fmt: skip
        return len(overdue) + len(dismissals)
