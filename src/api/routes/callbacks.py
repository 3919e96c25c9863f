"""`/callbacks/due`: completed orders due (or overdue) a callback on a date."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep
from fieldledger.api.problems import responses
from fieldledger.api.reading import MinPosition, reading
from fieldledger.application.fields import QueryDate
from fieldledger.domain.periods import local_date
from pydantic import BaseModel, Field

router = APIRouter(prefix="/callbacks", tags=["reports"])


class CallbackDue(BaseModel):
    work_order_id: str
    due_on: date = Field(description="the local date the next callback is due")
    overdue: bool = Field(description="due before `on`")
    days_overdue: int
    completed_on: date = Field(description="local date of acceptance or remote resolution")
    outcome: str = Field(description="accepted or resolved_remotely")
    callbacks: int = Field(description="callbacks logged so far")
    last_callback_on: date | None
    last_outcome: str | None


class CallbacksDue(BaseModel):
    on: date
    items: list[CallbackDue]


@router.get(
    "/due",
    response_model=CallbacksDue,
    summary="Orders due a callback on or before a date (monthly in the first year, "
    "quarterly after)",
    description=(
        "The next callback is due a month after completion (acceptance or remote "
        "resolution), then a month after the last callback while that callback fell in "
        "the first year after completion, else three months after it. Listed: due on or "
        "before `on`; overdue: due before `on`. Dates are local (FIELDLEDGER_TIMEZONE). "
        "Every role may read."
    ),
    responses=responses(401, 422, 503),
)
def callbacks_due(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    on: Annotated[QueryDate | None, Query(description="the date (default: today, local)")] = None,
    min_position: MinPosition = None,
) -> CallbacksDue:
    timezone = projections.models["callbacks"].settings.timezone
    day = on or local_date(ledger.clock(), timezone)
    with reading(projections, "callbacks", as_of=None, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        items = view.due(tx, tables, day)
    return CallbacksDue(on=day, items=[CallbackDue.model_validate(i) for i in items])
