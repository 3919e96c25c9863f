"""`/staff/{id}/conduct`: conduct recorded by a supervisor (contract §6)."""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Response
from fieldledger.api.deps import CallerDep, IdempotencyDep, LedgerDep
from fieldledger.api.problems import responses
from fieldledger.api.routes.commands import CommandAnswer, CommandBody, answer
from pydantic import Field

router = APIRouter(prefix="/staff", tags=["staff"])


class Conduct(CommandBody):
    kind: Annotated[str, Field(min_length=1, max_length=50, examples=["personal_call"])]
    #: Within the kind's range; may be left out for a kind with a single value.
    points: Annotated[Decimal, Field(max_digits=6, decimal_places=2)] | None = None
    note: Annotated[str, Field(max_length=4000)] = ""


@router.post(
    "/{staff_id}/conduct",
    response_model=CommandAnswer,
    summary="Record conduct (points within the kind's range)",
    description="Record a staff member's conduct. Who: supervisor.",
    responses=responses(401, 403, 409, 413, 422),
)
def record_conduct(
    staff_id: Annotated[str, Field(min_length=1, max_length=200)],
    body: Conduct,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    idempotency: IdempotencyDep,
) -> CommandAnswer:
    result = ledger.record_conduct(
        caller, staff_id, kind=body.kind, points=body.points, note=body.note,
        occurred_at=body.occurred_at, idempotency=idempotency,
    )  # fmt: skip
    return answer(result, response)
