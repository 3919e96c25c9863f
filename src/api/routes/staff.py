"""`/staff/{id}/conduct`: conduct recorded by a supervisor (contract §6)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from fieldledger.api.deps import (
    CallerDep,
    ExpectedVersionDep,
    IdempotencyDep,
    LedgerDep,
    permits,
)
from fieldledger.api.fields import Code, Note, Points, StaffId
from fieldledger.api.routes.commands import CommandAnswer, CommandBody, answer, command_responses
from fieldledger.domain.permissions import STAFF_COMMANDS
from pydantic import Field

router = APIRouter(prefix="/staff", tags=["staff"])


class Conduct(CommandBody):
    kind: Annotated[Code, Field(examples=["personal_call"])]
    #: Within the kind's range; may be left out for a kind with a single value.
    points: Points | None = None
    note: Note = ""


@router.post(
    "/{staff_id}/conduct",
    response_model=CommandAnswer,
    summary="Record conduct (points within the kind's range)",
    description="Record a staff member's conduct; the staff member's record is opened on "
    "its first entry. Who: "
    + ", ".join(sorted(r.value for r in STAFF_COMMANDS["conduct"]))
    + ". `kind` is one of the policy's conduct kinds; `points` (negative) must lie within "
    "the kind's range and may be left out for a kind with a single value. If-Match takes "
    'the ETag of the previous conduct answer ("0" before the first entry).',
    dependencies=[Depends(permits(STAFF_COMMANDS, "conduct"))],
    responses=command_responses(200, 401, 403, 409, 412, 413, 415, 422),
    operation_id="staff_conduct",
)
def record_conduct(
    staff_id: Annotated[StaffId, Path()],
    body: Conduct,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    expected_version: ExpectedVersionDep,
    idempotency: IdempotencyDep,
) -> CommandAnswer:
    result = ledger.record_conduct(
        caller, staff_id, kind=body.kind, points=body.points, note=body.note,
        occurred_at=body.occurred_at, expected_version=expected_version,
        idempotency=idempotency,
    )  # fmt: skip
    return answer(result, response)
