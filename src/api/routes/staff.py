"""`/staff/{id}/...`: what a supervisor records about a staff member (contract
§11.1, §11.7): conduct, quality spot checks, retraining or reassignment,
joining, training. The staff member's record is opened by its first entry.

Each command is one entry of `fieldledger.application.commands.STAFF` (its
body, its roles, its call into `StaffMember`), routed by `_staff_route`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fieldledger.api.deps import (
    CallerDep,
    ExpectedVersionDep,
    IdempotencyDep,
    LedgerDep,
    permits,
)
from fieldledger.api.routes.commands import CommandAnswer, answer, command_responses
from fieldledger.application.commands import STAFF, Command
from fieldledger.application.fields import StaffId
from fieldledger.domain.staff import StaffMember

router = APIRouter(prefix="/staff", tags=["staff"])


def _staff_route(command: Command[StaffMember, Any]) -> None:
    body_model = command.body

    def endpoint(
        staff_id: Annotated[StaffId, Path()],
        body: body_model,  # type: ignore[valid-type]
        response: Response,
        ledger: LedgerDep,
        caller: CallerDep,
        expected_version: ExpectedVersionDep,
        idempotency: IdempotencyDep,
    ) -> CommandAnswer:
        result = ledger.execute_on_staff(
            command, caller, staff_id, body, expected_version=expected_version,
            idempotency=idempotency,
        )  # fmt: skip
        return answer(result, response)

    endpoint.__name__ = f"staff_{command.name.replace('-', '_')}"
    router.add_api_route(
        f"/{{staff_id}}/{command.name}",
        endpoint,
        methods=["POST"],
        response_model=CommandAnswer,
        summary=command.summary,
        description=f"{command.description} Who: {command.who}. If-Match takes the ETag of the "
        'previous answer about this staff member ("0" before the first entry).',
        dependencies=[Depends(permits(command))],
        responses=command_responses(200, 401, 403, 409, 412, 413, 415, 422),
        operation_id=f"staff_{command.name.replace('-', '_')}",
    )


for _command in STAFF.routed:
    _staff_route(_command)
