"""The company's written rules as data: the TOML of `FIELDLEDGER_POLICY`.

A policy is parsed and validated once (a bad file is a one-line error naming the
key) into frozen models the rest of the domain reads. Its `version` is its name
plus a digest of its canonical content, so two different files can never share a
version, and every SLA row can say which policy computed it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import date, time
from decimal import Decimal
from enum import Enum
from importlib import resources
from typing import Annotated, Any, Literal

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class PolicyError(ValueError):
    """The policy file is unreadable or breaks a rule; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Week(_Strict):
    mon: list[tuple[time, time]] = []
    tue: list[tuple[time, time]] = []
    wed: list[tuple[time, time]] = []
    thu: list[tuple[time, time]] = []
    fri: list[tuple[time, time]] = []
    sat: list[tuple[time, time]] = []
    sun: list[tuple[time, time]] = []

    @model_validator(mode="after")
    def windows_are_ordered(self) -> Week:
        for day in WEEKDAYS:
            windows = getattr(self, day)
            previous_end: time | None = None
            for start, end in windows:
                if not start < end:
                    raise ValueError(f"{day}: window {start}-{end} must end after it starts")
                if previous_end is not None and start < previous_end:
                    raise ValueError(f"{day}: windows must be in order and not overlap")
                previous_end = end
        return self

    def by_weekday(self) -> dict[int, list[tuple[time, time]]]:
        return {i: list(getattr(self, day)) for i, day in enumerate(WEEKDAYS)}


class Overrides(_Strict):
    working_days: list[date] = []
    days_off: list[date] = []


class CalendarPolicy(_Strict):
    country: str | None = "CN"
    subdivision: str | None = None
    week: Week = Week(
        mon=[(time(8, 30), time(17, 30))],
        tue=[(time(8, 30), time(17, 30))],
        wed=[(time(8, 30), time(17, 30))],
        thu=[(time(8, 30), time(17, 30))],
        fri=[(time(8, 30), time(17, 30))],
    )
    overrides: Overrides = Overrides()

    @field_validator("country", "subdivision", mode="before")
    @classmethod
    def empty_means_none(cls, value: Any) -> Any:
        return None if value == "" else value

    # Checked here so that a typo stops the service at start, not the SLA later.
    @field_validator("country")
    @classmethod
    def holidays_knows_the_country(cls, value: str | None) -> str | None:
        if value is not None and value not in holidays.list_supported_countries():
            raise ValueError(f"country {value!r} is not known to the holidays package")
        return value

    @field_validator("subdivision")
    @classmethod
    def the_country_has_the_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if value is not None and (
            country is None or value not in holidays.list_supported_countries()[country]
        ):
            raise ValueError(f"country {country} has no subdivision {value!r}")
        return value


class Clock(Enum):
    ROUND_THE_CLOCK = "24x7"
    BUSINESS = "business"


class Target(_Strict):
    clock: Clock
    hours: Annotated[Decimal, Field(gt=0)]
    suburban_hours: Annotated[Decimal, Field(gt=0)] | None = None
    use_appointment: bool = False


class WorkOrderTargets(_Strict):
    urgent: Target
    priority: Target
    routine: Target


class ComplaintTargets(_Strict):
    minor: Target
    major: Target
    critical: Target


class WorkOrderSla(_Strict):
    response: WorkOrderTargets
    arrival: WorkOrderTargets
    resolution: WorkOrderTargets


class ComplaintSla(_Strict):
    acknowledgement: ComplaintTargets
    resolution: ComplaintTargets
    closure: ComplaintTargets


class SlaPolicy(_Strict):
    yellow_at: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.8")
    work_order: WorkOrderSla
    complaint: ComplaintSla


class LatenessBand(_Strict):
    up_to_minutes: Annotated[int, Field(gt=0)] | None = None
    points: Decimal


class FaultPoints(_Strict):
    minor: Decimal
    major: Decimal
    critical: Decimal


class RatingsPolicy(_Strict):
    """Technician ratings count in the monthly appraisal (003 第十七條): the
    month's mean of the four 1-4 dimensions of feedback. The thresholds and
    points are ours: the rulebook fixes the principle, not the numbers."""

    good_from: Annotated[Decimal, Field(ge=1, le=4)] = Decimal("3.5")
    good_points: Decimal = Decimal(2)
    poor_below: Annotated[Decimal, Field(ge=1, le=4)] = Decimal("2.5")
    poor_points: Decimal = Decimal(-2)
    source: str = "003 第十七條"

    @model_validator(mode="after")
    def poor_below_good(self) -> RatingsPolicy:
        if self.poor_below > self.good_from:
            raise ValueError("poor_below must not be above good_from")
        return self


class AppraisalSources(_Strict):
    """Where each appraisal number comes from: a rulebook section, or "policy"."""

    late_arrival: str = "policy"
    company_at_fault: str = "001 4.2.2-2"
    praise: str = "001 檢查方法2"


class AppraisalPolicy(_Strict):
    base_points: Decimal = Decimal(100)
    praise: Decimal = Decimal(5)
    lateness: list[LatenessBand]
    fault: FaultPoints
    #: None in policies adopted before ratings counted (contract §11.4).
    ratings: RatingsPolicy | None = None
    sources: AppraisalSources = AppraisalSources()

    @field_validator("lateness")
    @classmethod
    def bands_ascend_and_end_open(cls, bands: list[LatenessBand]) -> list[LatenessBand]:
        if not bands or bands[-1].up_to_minutes is not None:
            raise ValueError("the last band must have no up_to_minutes")
        limits = [b.up_to_minutes for b in bands[:-1]]
        if any(limit is None for limit in limits) or limits != sorted(limits):  # type: ignore[type-var]
            raise ValueError("bands must ascend by up_to_minutes")
        return bands

    def lateness_points(self, minutes_late: int) -> Decimal:
        """Points for arriving `minutes_late` (> 0) minutes after the appointment start."""
        for band in self.lateness:
            if band.up_to_minutes is None or minutes_late <= band.up_to_minutes:
                return band.points
        raise AssertionError("the last band is open")  # pragma: no cover


class PointRange(_Strict):
    min: Decimal
    max: Decimal

    @model_validator(mode="after")
    def min_not_above_max(self) -> PointRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def holds(self, points: Decimal) -> bool:
        return self.min <= points <= self.max

    @property
    def mildest(self) -> Decimal:
        """The value nearest zero: the default where the supervisor does not choose."""
        if self.max < 0:
            return self.max
        if self.min > 0:
            return self.min
        return Decimal(0)

    def describe(self) -> str:
        return f"{self.min}" if self.min == self.max else f"{self.min} to {self.max}"


# -- conduct and discipline (contract §11.1; 001 §4.2, 004 §4.1) -------------

#: A step of discipline. Policies adopted before §11.1 said
#: `dismissal_recommended`; they are read as `dismissal` (the rulebook's
#: 自動離職處分, automatic separation).
Discipline = Literal["warning", "demerit", "dismissal"]
DISCIPLINES: tuple[Discipline, ...] = ("warning", "demerit", "dismissal")


class LadderStep(_Strict):
    """The Nth record of a kind in one calendar month brings a discipline, and
    perhaps further points chosen by the supervisor within `extra`."""

    at: Annotated[int, Field(ge=1)]
    discipline: Discipline
    extra: PointRange | None = None


class MinutesBand(_Strict):
    up_to_minutes: Annotated[int, Field(gt=0)]
    points: Decimal


class ConductKind(_Strict):
    #: The points a record may carry: within any one of these ranges.
    points: Annotated[list[PointRange], Field(min_length=1)]
    #: The rulebook and section the kind's numbers come from, or "policy".
    source: str = "policy"
    #: Steps by repeat within one calendar month; none where the rulebook gives none.
    ladder: list[LadderStep] = []
    #: Points computed from `minutes` (shift lateness); past the last band the
    #: record is of kind `beyond_bands` instead (over 10 minutes: an absence).
    minutes_bands: list[MinutesBand] = []
    beyond_bands: str | None = None
    #: The supervisor records the discipline directly (a quarrel with a customer).
    discipline_chosen: bool = False

    @field_validator("ladder")
    @classmethod
    def steps_ascend(cls, steps: list[LadderStep]) -> list[LadderStep]:
        counts = [s.at for s in steps]
        if counts != sorted(set(counts)):
            raise ValueError("ladder steps must ascend by `at`, each count once")
        return steps

    @field_validator("minutes_bands")
    @classmethod
    def bands_ascend(cls, bands: list[MinutesBand]) -> list[MinutesBand]:
        limits = [b.up_to_minutes for b in bands]
        if limits != sorted(set(limits)):
            raise ValueError("minutes bands must ascend by up_to_minutes")
        return bands

    def allows(self, points: Decimal) -> bool:
        return any(r.holds(points) for r in self.points)

    def describe(self) -> str:
        return " or ".join(r.describe() for r in self.points)

    @property
    def single_value(self) -> Decimal | None:
        """The one value a record may carry, if there is only one."""
        values = {v for r in self.points for v in (r.min, r.max)}
        return values.pop() if len(values) == 1 else None

    def step_at(self, repeat: int) -> LadderStep | None:
        return next((s for s in self.ladder if s.at == repeat), None)


class ConductPolicy(_Strict):
    kinds: dict[str, ConductKind]

    @model_validator(mode="before")
    @classmethod
    def read_the_first_shape(cls, value: Any) -> Any:
        """A policy adopted before contract §11.1 had one ladder for every kind
        (`ladder`, `step_points`) and `{min, max}` per kind: read as that ladder
        on every kind, as it was applied then."""
        if not isinstance(value, dict) or "ladder" not in value:
            return value
        ladder = {int(k): v for k, v in dict(value.get("ladder") or {}).items()}
        step_points = dict(value.get("step_points") or {})
        kinds: dict[str, Any] = {}
        for name, bounds in dict(value.get("kinds") or {}).items():
            extra = step_points.get(name, {})
            steps = []
            for at, step in sorted(ladder.items()):
                points = extra.get(step)
                steps.append({
                    "at": at,
                    "discipline": "dismissal" if step == "dismissal_recommended" else step,
                    "extra": None if points is None else {"min": points, "max": points},
                })  # fmt: skip
            kinds[name] = {"points": [bounds], "ladder": steps}
        return {"kinds": kinds}

    @model_validator(mode="after")
    def kinds_refer_to_known_kinds(self) -> ConductPolicy:
        for name, kind in self.kinds.items():
            if kind.beyond_bands is not None and kind.beyond_bands not in self.kinds:
                raise ValueError(f"{name}: beyond_bands names unknown kind {kind.beyond_bands!r}")
            if kind.minutes_bands and kind.beyond_bands is None:
                raise ValueError(f"{name}: minutes_bands need beyond_bands")
        return self


# -- service faults (contract §11.1; 004 4.1.3 服務過錯記錄制度) ---------------


class ServiceFaultPolicy(_Strict):
    #: The cumulative fault (failed spot checks, complaints at fault) that
    #: requires retraining or reassignment (累計3次不合格需調崗或培訓).
    retraining_after: Annotated[int, Field(ge=1)] = 3
    source: str = "004 4.1.3"


# -- training (contract §11.7; 001 第3篇) --------------------------------------

TrainingKind = Literal["induction", "monthly", "fire_safety"]
TRAINING_KINDS: tuple[TrainingKind, ...] = ("induction", "monthly", "fire_safety")


class TrainingPolicy(_Strict):
    source: str = "001 第3篇 6.0"
    #: Points in the month the training was held.
    unexcused_absence: Decimal = Decimal(-2)
    breach_of_discipline: Decimal = Decimal(-1)
    form_not_completed: Decimal = Decimal(-1)
    #: The 1st, 2nd, 3rd... failed test of a kind since its last pass; later
    #: failures take the last value.
    failed_test: Annotated[list[Decimal], Field(min_length=1)] = [
        Decimal(-3),
        Decimal(-6),
        Decimal(-10),
    ]
    #: The failure that sets a deadline: not passed by it, the sweep records a
    #: dismissal.
    dismissal_after_failures: Annotated[int, Field(ge=1)] = 3
    #: The deadline when the supervisor names none: days after the failed test.
    retest_within_days: Annotated[int, Field(ge=1)] = 30
    #: Pass-rate targets by attempt (1st, 2nd, 3rd...; later attempts the last).
    pass_rate_targets: Annotated[
        list[Annotated[Decimal, Field(ge=0, le=100)]], Field(min_length=1)
    ] = [Decimal(90), Decimal(95), Decimal(100)]
    #: Deadlines the sweep checks, in working days of the policy's calendar.
    induction_theory_within_working_days: Annotated[int, Field(ge=1)] = 2
    induction_test_on_working_day: Annotated[int, Field(ge=1)] = 10
    monthly_test_within_working_days: Annotated[int, Field(ge=1)] = 5
    fire_safety_every_months: Annotated[int, Field(ge=1, le=12)] = 3

    def failed_test_points(self, failure: int) -> Decimal:
        return self.failed_test[min(failure, len(self.failed_test)) - 1]

    def pass_rate_target(self, attempt: int) -> Decimal:
        return self.pass_rate_targets[min(attempt, len(self.pass_rate_targets)) - 1]


class SatisfactionPolicy(_Strict):
    good_csat: Annotated[int, Field(ge=1, le=5)] = 4
    csat_target_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(85)
    first_time_fix_target_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(90)


class CallbackPolicy(_Strict):
    monthly_for_months: Annotated[int, Field(ge=0)] = 12
    then_every_months: Annotated[int, Field(ge=1)] = 3


class Policy(_Strict):
    name: str = "custom"
    calendar: CalendarPolicy = CalendarPolicy()
    sla: SlaPolicy
    appraisal: AppraisalPolicy
    conduct: ConductPolicy
    service_faults: ServiceFaultPolicy = ServiceFaultPolicy()
    training: TrainingPolicy = TrainingPolicy()
    satisfaction: SatisfactionPolicy = SatisfactionPolicy()
    callbacks: CallbackPolicy = CallbackPolicy()

    @property
    def version(self) -> str:
        """Name and digest of the content; recomputed on each call (a copy made with
        `model_copy(update=...)` is another policy), so callers in hot paths keep it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return f"{self.name}@{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


def parse_policy(text: str) -> Policy:
    """Parse and validate a policy's TOML text; raise PolicyError naming the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"policy is not valid TOML: {e}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise PolicyError(f"policy key '{key}': {first['msg']}") from None


def policy_from_document(document: dict[str, Any]) -> Policy:
    """A policy from its plain-data form (`Policy.model_dump(mode="json")`), as
    recorded when it was adopted; raises PolicyError naming the key."""
    try:
        return Policy.model_validate(document)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise PolicyError(f"policy key '{key}': {first['msg']}") from None


def builtin_policy_text() -> str:
    return resources.files("fieldledger.domain").joinpath("default_policy.toml").read_text("utf-8")


_BUILTIN: Policy | None = None


def builtin_policy() -> Policy:
    """The built-in default policy of contract section 6."""
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = parse_policy(builtin_policy_text())
    return _BUILTIN
