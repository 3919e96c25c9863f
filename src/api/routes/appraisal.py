"""`/appraisal`: a staff member's points for a month or quarter, every item with
its source event; and the ranking of all staff.

Every role may read. A technician may read only their own appraisal, and sees
only their own line (with its rank) of a ranking: the appraisal of others is
for supervisors and analysts.
"""

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep
from fieldledger.api.problems import responses
from fieldledger.api.reading import AsOf, MinPosition, reading
from fieldledger.application.fields import PeriodName, StaffId
from fieldledger.application.ledger import Caller, FieldLedger, NotFound
from fieldledger.domain.errors import NotPermitted
from fieldledger.domain.facts import Role
from fieldledger.domain.periods import Period, month_of, parse_period
from fieldledger.projections.appraisal import StaffUnknown
from pydantic import BaseModel, Field

router = APIRouter(prefix="/appraisal", tags=["reports"])

Step = Literal["warning", "demerit", "dismissal"]
PERIOD_HELP = "YYYY-MM or YYYY-Qn (a quarter: 100 + its months' deltas); default: this month"


class AppraisalItem(BaseModel):
    rule: Literal[
        "late_arrival",
        "company_at_fault",
        "praise",
        "ratings",
        "conduct",
        "discipline_step",
        "training",
    ]
    source: str = Field(
        description='the rulebook and section applied (e.g. "001 4.2.2-6"), or "policy" '
        "where the number is ours"
    )
    points: int | float
    aggregate_id: str = Field(description="the aggregate of the source event")
    version: int = Field(description="the source event's version in its aggregate")
    event_type: str
    occurred_at: datetime
    kind: str | None = Field(
        description="the conduct kind (conduct, discipline steps) or training kind"
    )
    month: str
    detail: str


class DisciplineStep(BaseModel):
    kind: str = Field(description="the conduct kind, or training:KIND for a training dismissal")
    discipline: Step
    month: str
    aggregate_id: str
    version: int
    event_type: str
    occurred_at: datetime
    source: str


class SourceEvent(BaseModel):
    what: str
    aggregate_id: str
    version: int
    event_type: str
    occurred_at: datetime


class ServiceFaults(BaseModel):
    count: int = Field(description="faults since the last retraining or reassignment")
    retraining_required: bool
    retraining_after: int
    source: str
    faults: list[SourceEvent]
    last_cleared: SourceEvent | None


class TrainingRecord(BaseModel):
    aggregate_id: str
    version: int
    kind: str
    held_on: date
    attended: bool
    disciplined: bool
    form_completed: bool
    test_passed: bool | None
    attempt: int | None
    deadline: date | None


class TrainingOverdue(BaseModel):
    requirement: str
    kind: str
    due_on: date
    aggregate_id: str
    version: int
    occurred_at: datetime


class TrainingStanding(BaseModel):
    joined_on: date | None
    records: list[TrainingRecord] = Field(description="training held in the period")
    overdue: list[TrainingOverdue] = Field(description="deadlines recorded overdue in the period")


class Lateness(BaseModel):
    work_order_id: str
    arrived_at: datetime
    minutes_late: int
    notified: bool
    reason: str | None = Field(description="the reason given in LatenessNotified")


class Indicators(BaseModel):
    on_time_arrival_pct: float | None = Field(
        description="arrivals at or before the appointment start, of arrivals with one"
    )
    late_arrivals: int
    first_time_fix_pct: float | None
    mean_csat: float | None
    complaints_against: int
    complaints_resolved: int
    arrivals: int
    lateness: list[Lateness]


class Appraisal(BaseModel):
    staff_id: str
    period: str
    points: int | float
    base_points: int | float
    items: list[AppraisalItem]
    discipline: dict[str, Step] = Field(description="per kind, the most severe step reached")
    discipline_steps: list[DisciplineStep] = Field(description="every step reached")
    retraining_required: bool
    service_faults: ServiceFaults
    training: TrainingStanding
    indicators: Indicators
    policy_version: str = Field(description="the policy in force for the period's last month")
    policy_versions: dict[str, str] = Field(description="the policy in force for each month")
    as_of: datetime | None = None


class RankingEntry(BaseModel):
    staff_id: str
    points: int | float
    rank: int


class Ranking(BaseModel):
    period: str
    ranking: list[RankingEntry]
    as_of: datetime | None = None


def _period(text: str | None, ledger: FieldLedger, timezone: str) -> Period:
    return parse_period(text if text is not None else month_of(ledger.clock(), timezone))


PeriodQuery = Annotated[PeriodName | None, Query(description=PERIOD_HELP, examples=["2026-10"])]


@router.get(
    "/{staff_id}",
    response_model=Appraisal,
    summary="A staff member's points, each item with its source event, discipline, indicators",
    description="Every role may read; a technician only their own.",
    responses=responses(401, 403, 404, 422, 503),
)
def staff_appraisal(
    staff_id: Annotated[StaffId, Path()],
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    period: PeriodQuery = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> Appraisal:
    _may_read(caller, staff_id)
    chosen = _period(period, ledger, projections.models["appraisal"].settings.timezone)
    with reading(projections, "appraisal", as_of=as_of, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        try:
            found = view.appraisal(tx, tables, staff_id, chosen)
        except StaffUnknown:
            when = "" if as_of is None else f" as of {as_of.isoformat()}"
            raise NotFound(f"no staff member {staff_id} is known to the appraisal{when}") from None
    return Appraisal.model_validate({**found, "as_of": as_of})


@router.get(
    "",
    response_model=Ranking,
    summary="All staff ranked by points for a month or a quarter; ties share a rank",
    description="Every role may read; a technician sees only their own line.",
    responses=responses(401, 422, 503),
)
def appraisal_ranking(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    period: PeriodQuery = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> Ranking:
    chosen = _period(period, ledger, projections.models["appraisal"].settings.timezone)
    with reading(projections, "appraisal", as_of=as_of, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        entries = view.ranking(tx, tables, chosen)
    if caller.role is Role.TECHNICIAN:
        entries = [e for e in entries if e["staff_id"] == caller.actor]
    return Ranking(
        period=chosen.name, ranking=[RankingEntry.model_validate(e) for e in entries], as_of=as_of
    )


def _may_read(caller: Caller, staff_id: str) -> None:
    if caller.role is Role.TECHNICIAN and caller.actor != staff_id:
        raise NotPermitted(f"a technician may read only their own appraisal, not {staff_id}'s")
