"""`/complaints`: lodge, the commands of contract §5, and the queries."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fieldledger.api.deps import CallerDep, IdempotencyDep, LedgerDep, NoIfMatchDep, permits
from fieldledger.api.fields import Csat, Flag, Instant, Level, Name, Phone, RecordId, StaffId, Text
from fieldledger.api.problems import responses
from fieldledger.api.routes.commands import (
    READ_ETAG,
    CommandAnswer,
    CommandBody,
    add_command_route,
    answer,
    command_responses,
)
from fieldledger.api.routes.schemas import ComplaintView
from fieldledger.api.routes.views import HistoryView, complaint_view, history_view
from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.complaints import Complainant, Complaint, ComplaintChannel, Severity
from fieldledger.domain.customers import contact_access
from fieldledger.domain.permissions import COMPLAINT_COMMANDS
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(prefix="/complaints", tags=["complaints"])



class ComplainantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    phone: Phone


class Lodge(CommandBody):
    customer: ComplainantIn
    channel: ComplaintChannel
    category: Name
    severity: Severity
    description: Text
    work_order_id: UUID | None = None
    staff_ids: Annotated[list[StaffId], Field(max_length=50)] = []

    def to_args(self) -> dict[str, Any]:
        args = self.model_dump(exclude={"occurred_at", "customer"})
        args["customer"] = Complainant(**self.customer.model_dump())
        return args


class NoData(CommandBody):
    pass


class AssignOwner(CommandBody):
    department: Name
    owner_id: StaffId


class RecordFindings(CommandBody):
    root_cause: Text
    evidence: Annotated[list[Text], Field(max_length=100)] = []
    responsible_staff_id: StaffId | None = None
    #: Several responsible staff (an extension of the contract's single id).
    responsible_staff_ids: Annotated[list[StaffId], Field(max_length=50)] = []
    company_at_fault: Flag

    def to_args(self) -> dict[str, Any]:
        named = list(self.responsible_staff_ids)
        if self.responsible_staff_id is not None:
            named.insert(0, self.responsible_staff_id)
        return {
            "root_cause": self.root_cause,
            "evidence": list(self.evidence),
            "responsible_staff_ids": named,
            "company_at_fault": self.company_at_fault,
        }


class Plan(CommandBody):
    measures: Text
    owner_id: StaffId
    due: Instant


class UpdateProgress(CommandBody):
    note: Text


class Resolve(CommandBody):
    outcome: Text


class Confirm(CommandBody):
    satisfied: Flag
    csat: Csat


class Escalate(CommandBody):
    level: Level
    reason: Text


@router.post(
    "",
    status_code=201,
    response_model=CommandAnswer,
    summary="Lodge a complaint (a critical one is escalated to level 3 at once)",
    description="Lodge a complaint. Who: "
    + ", ".join(sorted(r.value for r in COMPLAINT_COMMANDS["lodge"]))
    + ". `work_order_id`, when given, must name a work order (else 422). "
    "If-Match is refused (422): a create has no version to match.",
    dependencies=[Depends(permits(COMPLAINT_COMMANDS, "lodge"))],
    responses=command_responses(201, 401, 403, 413, 415, 422),
    operation_id="complaints_lodge",
)
def lodge(
    body: Lodge,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    idempotency: IdempotencyDep,
    _if_match: NoIfMatchDep,
) -> CommandAnswer:
    result = ledger.lodge_complaint(
        caller, occurred_at=body.occurred_at, idempotency=idempotency, **body.to_args()
    )
    response.headers["Location"] = f"/complaints/{result.id}"
    return answer(result, response)


def _run(
    ledger: FieldLedger, caller: Any, id: UUID, command: str, args: Any,
    occurred_at: datetime | None, expected_version: int | None, idempotency: Any,
) -> Any:  # fmt: skip
    return ledger.complaint_command(
        caller, id, command, args, occurred_at=occurred_at,
        expected_version=expected_version, idempotency=idempotency,
    )  # fmt: skip


COMMAND_BODIES: dict[str, tuple[type[CommandBody], str]] = {
    "acknowledge": (NoData, "Acknowledge the complaint"),
    "assign": (AssignOwner, "Assign a department and owner"),
    "record-findings": (RecordFindings, "Record the investigation's findings"),
    "plan": (Plan, "Plan the resolution"),
    "update-progress": (UpdateProgress, "Note progress"),
    "resolve": (Resolve, "Resolve"),
    "confirm": (Confirm, "Customer confirms: closed when satisfied, else reopened"),
    "escalate": (Escalate, "Escalate"),
}

for _command, (_body, _summary) in COMMAND_BODIES.items():
    add_command_route(
        router,
        command=_command,
        body_model=_body,
        run=_run,
        summary=_summary,
        who=COMPLAINT_COMMANDS[_command],
        table=COMPLAINT_COMMANDS,
    )


@router.get(
    "/{id}",
    summary="A complaint: state, version, SLA targets",
    description="The complaint as it is now, or with `as_of` as it was at that instant: "
    "rebuilt from its events that occurred (`occurred_at`) at or before it. Before its "
    "first event it did not exist: 404. The `ETag` header is the version answered.",
    response_model=None,
    responses={200: {"model": ComplaintView, "headers": {"ETag": READ_ETAG}},
               **responses(401, 404, 422)},
)  # fmt: skip
def get_complaint(
    id: RecordId,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    as_of: Annotated[
        Instant | None, Query(description="the state as it was at this instant")
    ] = None,
) -> dict[str, Any]:
    if as_of is None:
        complaint = ledger.get(Complaint, id)
    else:
        complaint = ledger.get_as_of(Complaint, id, as_of)
    response.headers["ETag"] = f'"{complaint.version}"'
    return complaint_view(ledger, complaint, as_of, contact_access(caller.role, caller.actor))


@router.get("/{id}/history", response_model=HistoryView,
            summary="The audit trail of a complaint, oldest first",
            responses=responses(401, 404, 422))  # fmt: skip
def complaint_history(id: RecordId, ledger: LedgerDep, caller: CallerDep) -> HistoryView:
    entries = ledger.history(Complaint, id)
    return history_view(ledger, entries, contact_access(caller.role, caller.actor))
