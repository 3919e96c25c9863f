"""`/satisfaction/summary`: CSAT, survey dimensions, first-time fixes, complaints."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep
from fieldledger.api.problems import responses
from fieldledger.api.reading import AsOf, MinPosition, instant_or_day, reading
from fieldledger.application.fields import DayOrInstant
from fieldledger.domain.errors import InvalidCommand
from pydantic import BaseModel, Field

router = APIRouter(prefix="/satisfaction", tags=["reports"])

Measure = Literal["csat_pct", "first_time_fix_pct", "first_contact_resolution_pct"]


class Dimensions(BaseModel):
    """Mean of each 1-4 survey dimension, two decimals; null without surveys."""

    attitude: float | None
    skill: float | None
    punctuality: float | None
    promise: float | None


class SatisfactionGroup(BaseModel):
    key: str | None = Field(description="technician id or service type; null: none")
    csat_pct: float | None = Field(description="share of surveys with csat >= good_csat")
    dimensions: Dimensions
    first_time_fix_pct: float | None = Field(
        description="share of accepted orders accepted with no rejection"
    )
    complaints: int
    surveys_expected: int = Field(
        description="survey cards sent: one for every ended call (003 第十八條), by the sweep "
        "the day after the order was accepted, resolved remotely or cancelled after a visit"
    )
    surveys_received: int
    surveys_overdue: int = Field(
        description="cards sent more than the policy's survey_overdue_days ago, unanswered"
    )
    first_contact_resolution_pct: float | None = Field(
        description="share of resolved orders (accepted or resolved remotely) with no "
        "rejection and no repeat call linked within the policy's repeat_call_days (004)"
    )
    resolved: int = Field(description="orders accepted or resolved remotely")
    first_contact_resolutions: int
    below_threshold: list[Measure] = Field(
        description="the measures under the policy's targets (a measure without data "
        "is never flagged)"
    )
    mean_csat: float | None
    praised: int
    accepted: int
    first_time_fixes: int
    complaints_closed: int = Field(description="complaints closed on a satisfied confirmation")


class Thresholds(BaseModel):
    good_csat: int
    csat_pct: float
    first_time_fix_pct: float
    first_contact_resolution_pct: float


class SatisfactionSummary(BaseModel):
    from_: datetime | None = Field(serialization_alias="from")
    to: datetime | None
    group_by: str
    as_of: datetime | None
    thresholds: Thresholds
    groups: list[SatisfactionGroup]


@router.get(
    "/summary",
    response_model=SatisfactionSummary,
    summary="CSAT, dimensions, first-time fixes and complaints per technician or service type",
    description=(
        "Orders count in the period of their completion (Accepted or ResolvedRemotely "
        "occurred_at), complaints in that of their lodging; `from` is inclusive, `to` "
        "exclusive; a date is a whole local day (FIELDLEDGER_TIMEZONE), so `to=2026-10-31` "
        "includes 31 October. Every role may read."
    ),
    responses=responses(401, 422, 503),
)
def satisfaction_summary(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    from_: Annotated[
        DayOrInstant | None, Query(alias="from", description="date or ISO instant (inclusive)")
    ] = None,
    to: Annotated[
        DayOrInstant | None, Query(description="date (inclusive) or ISO instant (exclusive)")
    ]
    = None,
    group_by: Literal["technician", "service_type"] = "technician",
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> SatisfactionSummary:
    model = projections.models["satisfaction"]
    timezone = model.settings.timezone
    start = instant_or_day(from_, "from", timezone, end=False)
    end = instant_or_day(to, "to", timezone, end=True)
    if start is not None and end is not None and end <= start:
        raise InvalidCommand("to", "must be after from")
    with reading(projections, "satisfaction", as_of=as_of, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        groups = view.summary(
            tx, tables, start=start, end=end, group_by=group_by, now=as_of or ledger.clock()
        )
    policy = model.settings.policy.satisfaction
    return SatisfactionSummary(
        from_=start, to=end, group_by=group_by, as_of=as_of,
        thresholds=Thresholds(
            good_csat=policy.good_csat, csat_pct=float(policy.csat_target_pct),
            first_time_fix_pct=float(policy.first_time_fix_target_pct),
            first_contact_resolution_pct=float(
                model.settings.policy.procedure.first_contact_resolution_target_pct
            ),
        ),
        groups=[SatisfactionGroup.model_validate(g) for g in groups],
    )  # fmt: skip
