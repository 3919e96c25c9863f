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


class AppraisalPolicy(_Strict):
    base_points: Decimal = Decimal(100)
    praise: Decimal = Decimal(5)
    lateness: list[LatenessBand]
    fault: FaultPoints

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


DisciplineStep = Literal["warning", "demerit", "dismissal_recommended"]


class ConductPolicy(_Strict):
    kinds: dict[str, PointRange]
    ladder: dict[int, DisciplineStep]
    step_points: dict[str, dict[DisciplineStep, Decimal]] = {}

    @field_validator("ladder", mode="before")
    @classmethod
    def ladder_keys_are_counts(cls, value: Any) -> Any:
        if isinstance(value, dict):
            try:
                return {int(k): v for k, v in value.items()}
            except ValueError:
                raise ValueError("ladder keys are repeat counts (whole numbers)") from None
        return value

    @model_validator(mode="after")
    def step_points_name_known_kinds(self) -> ConductPolicy:
        for kind in self.step_points:
            if kind not in self.kinds:
                raise ValueError(f"step_points names unknown conduct kind {kind!r}")
        return self

    def step_for(self, repeat: int) -> DisciplineStep | None:
        return self.ladder.get(repeat)


class SatisfactionPolicy(_Strict):
    good_csat: Annotated[int, Field(ge=1, le=5)] = 4
    csat_target_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(85)
    first_time_fix_target_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(90)


class CallbackPolicy(_Strict):
    monthly_for_months: Annotated[int, Field(ge=0)] = 12
    then_every_months: Annotated[int, Field(ge=1)] = 3


class EscalationPolicy(_Strict):
    """Who coordinates an order gone red (004 二(二): 紅色預警: 立即派專人協調).

    `roster` lists staff ids per escalation level; the sweep's escalation to a
    level appoints the next of that level's list in turn (round robin). A level
    without a list appoints nobody (`coordinator_id` null)."""

    roster: dict[int, list[Annotated[str, Field(min_length=1, max_length=200)]]] = {}

    @field_validator("roster", mode="before")
    @classmethod
    def roster_keys_are_levels(cls, value: Any) -> Any:
        if isinstance(value, dict):
            try:
                levels = {int(k): v for k, v in value.items()}
            except ValueError:
                raise ValueError("roster keys are escalation levels 1 to 3") from None
            if any(not 1 <= level <= 3 for level in levels):
                raise ValueError("roster keys are escalation levels 1 to 3")
            return levels
        return value

    def coordinator(self, level: int, turn: int) -> str | None:
        """The coordinator of the `turn`-th appointment (from 0) at `level`."""
        staff = self.roster.get(level) or []
        return staff[turn % len(staff)] if staff else None


class ProcedurePolicy(_Strict):
    """Numbers of the service procedure (contract §11.4) that the rulebooks leave open."""

    #: A booking of the same customer and service type within this many days of an
    #: order's acceptance or remote resolution is linked to it as a repeat call
    #: (002: 不應讓客戶打第二次電話; 003: 不允許對同一問題重複進行修復).
    repeat_call_days: Annotated[int, Field(ge=1, le=366)] = 30
    #: A survey card sent this many days ago without feedback is overdue.
    survey_overdue_days: Annotated[int, Field(ge=1, le=366)] = 7
    #: 004: 問題一次性解決率 ≥ 90%; below it, the satisfaction summary flags the group.
    first_contact_resolution_target_pct: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(90)


class Policy(_Strict):
    name: str = "custom"
    calendar: CalendarPolicy = CalendarPolicy()
    sla: SlaPolicy
    appraisal: AppraisalPolicy
    conduct: ConductPolicy
    satisfaction: SatisfactionPolicy = SatisfactionPolicy()
    callbacks: CallbackPolicy = CallbackPolicy()
    escalation: EscalationPolicy = EscalationPolicy()
    procedure: ProcedurePolicy = ProcedurePolicy()

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
