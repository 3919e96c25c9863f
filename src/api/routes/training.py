"""`/training/summary`: training test pass rates per kind and attempt (contract
§11.7; 001 第3篇 6.0: 學員考評合格率 90% / 95% / 100%). Every role may read."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep
from fieldledger.api.problems import responses
from fieldledger.api.reading import AsOf, MinPosition, reading
from fieldledger.application.fields import PeriodName
from fieldledger.domain.periods import month_of, parse_period
from pydantic import BaseModel, Field

router = APIRouter(prefix="/training", tags=["reports"])


class PassRate(BaseModel):
    kind: str
    attempt: int = Field(description="1: first test of the kind since the last pass, 2: ...")
    tests: int
    passed: int
    pass_rate_pct: float | None
    target_pct: int | float
    below_target: bool


class TrainingSummary(BaseModel):
    period: str
    groups: list[PassRate]
    source: str
    policy_version: str
    as_of: datetime | None = None


@router.get(
    "/summary",
    response_model=TrainingSummary,
    summary="Training test pass rates per kind and attempt, against their targets",
    description="Tests held in the period (YYYY-MM or YYYY-Qn; default: this month), "
    "grouped by training kind and attempt; targets 90% (1st), 95% (2nd), 100% (3rd) "
    "from the policy in force at the period's end.",
    responses=responses(401, 422, 503),
)
def training_summary(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    period: Annotated[
        PeriodName | None, Query(description="YYYY-MM or YYYY-Qn; default: this month",
                                 examples=["2026-10"])
    ] = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> TrainingSummary:
    timezone = projections.models["appraisal"].settings.timezone
    chosen = parse_period(period if period is not None else month_of(ledger.clock(), timezone))
    with reading(projections, "appraisal", as_of=as_of, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        found = view.training_summary(tx, tables, chosen)
    return TrainingSummary.model_validate({**found, "as_of": as_of})
