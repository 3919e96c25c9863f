"""`/work-orders`: book, the commands of contract §4, and the queries."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fieldledger.api.deps import CallerDep, IdempotencyDep, LedgerDep, NoIfMatchDep, permits
from fieldledger.api.fields import (
    Csat,
    Flag,
    Instant,
    Level,
    Name,
    Note,
    Phone,
    Price,
    Quantity,
    RecordId,
    Score4,
    StaffId,
    Text,
)
from fieldledger.api.problems import responses
from fieldledger.api.routes.commands import (
    READ_ETAG,
    CommandAnswer,
    CommandBody,
    add_command_route,
    answer,
    command_responses,
)
from fieldledger.api.routes.schemas import WorkOrderView
from fieldledger.api.routes.views import HistoryView, history_view, work_order_view
from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.customers import contact_access
from fieldledger.domain.facts import Role
from fieldledger.domain.permissions import WORK_ORDER_COMMANDS
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    Customer,
    Feedback,
    Part,
    Priority,
    WorkOrder,
    Zone,
)
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(prefix="/work-orders", tags=["work orders"])



class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    phone: Phone
    #: Where the technician goes: required (contract §4 lists it, not as optional).
    address: Text


class AppointmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Instant
    end: Instant


class Book(CommandBody):
    customer: CustomerIn
    service_type: Name
    priority: Priority
    zone: Zone
    appointment: AppointmentIn | None = None
    channel: Channel
    billing: Billing
    #: What the customer needs done: required (contract §4 lists it, not as optional).
    description: Text
    #: The maintenance contract of a `billing: contract` order (must exist and cover the day).
    contract_id: UUID | None = None

    def to_args(self) -> dict[str, Any]:
        return {
            "customer": Customer(**self.customer.model_dump()),
            "service_type": self.service_type,
            "priority": self.priority,
            "zone": self.zone,
            "appointment": (
                Appointment(**self.appointment.model_dump()) if self.appointment else None
            ),
            "channel": self.channel,
            "billing": self.billing,
            "description": self.description,
            "contract_id": self.contract_id,
        }


class AssignTechnician(CommandBody):
    technician_id: StaffId


class NoData(CommandBody):
    pass


class NotifyLate(CommandBody):
    expected_arrival: Instant
    reason: Text


class Start(CommandBody):
    identity_shown: Flag
    risk_assessment: Text


class ChangeScope(CommandBody):
    description: Text
    new_eta: Instant | None = None


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    quantity: Quantity = 1
    unit_price: Price | None = None


class Complete(CommandBody):
    summary: Text
    parts_used: Annotated[list[PartIn], Field(max_length=200)] = []

    def to_args(self) -> dict[str, Any]:
        return {"summary": self.summary,
                "parts_used": [Part(**p.model_dump()) for p in self.parts_used]}  # fmt: skip


class Accept(CommandBody):
    signed_by: Name


class Reject(CommandBody):
    reasons: Annotated[list[Text], Field(min_length=1, max_length=50)]


class Summary(CommandBody):
    summary: Text


class Reason(CommandBody):
    reason: Text




class FeedbackIn(CommandBody):
    csat: Csat
    attitude: Score4
    skill: Score4
    punctuality: Score4
    promise: Score4
    praise: Flag = False
    comment: Note = ""

    def to_args(self) -> dict[str, Any]:
        return {"feedback": Feedback(**self.model_dump(exclude={"occurred_at"}))}


class Escalate(CommandBody):
    level: Level
    reason: Text


class LogCallback(CommandBody):
    outcome: Name
    note: Note = ""


@router.post(
    "",
    status_code=201,
    response_model=CommandAnswer,
    summary="Book a work order",
    description="Book a work order. Who: "
    + ", ".join(sorted(r.value for r in WORK_ORDER_COMMANDS["book"]))
    + ". A `billing: contract` order may name its maintenance contract (`contract_id`): "
    "it must exist, not have ended and cover the booking's day (else 422). "
    "If-Match is refused (422): a create has no version to match.",
    dependencies=[Depends(permits(WORK_ORDER_COMMANDS, "book"))],
    responses=command_responses(201, 401, 403, 413, 415, 422),
    operation_id="work_orders_book",
)
def book(
    body: Book,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    idempotency: IdempotencyDep,
    _if_match: NoIfMatchDep,
) -> CommandAnswer:
    result = ledger.book_work_order(
        caller, occurred_at=body.occurred_at, idempotency=idempotency, **body.to_args()
    )
    response.headers["Location"] = f"/work-orders/{result.id}"
    return answer(result, response)


def _run(
    ledger: FieldLedger, caller: Any, id: UUID, command: str, args: Any,
    occurred_at: datetime | None, expected_version: int | None, idempotency: Any,
) -> Any:  # fmt: skip
    return ledger.work_order_command(
        caller, id, command, args, occurred_at=occurred_at,
        expected_version=expected_version, idempotency=idempotency,
    )  # fmt: skip


COMMAND_BODIES: dict[str, tuple[type[CommandBody], str]] = {
    "assign": (AssignTechnician, "Assign a technician"),
    "confirm": (NoData, "Technician re-confirms time and place with the customer"),
    "depart": (NoData, "Technician departs for the site"),
    "notify-late": (NotifyLate, "Warn the customer of a late arrival"),
    "arrive": (NoData, "Technician arrives on site"),
    "start": (Start, "Start the service (ID shown, risks checked)"),
    "change-scope": (ChangeScope, "Change the scope of the work"),
    "complete": (Complete, "Complete the service"),
    "accept": (Accept, "Customer accepts the work (signed)"),
    "reject": (Reject, "Customer rejects the work: back to in service for rework"),
    "resolve-remotely": (Summary, "Resolve without a visit (hotline or remote fix)"),
    "hold": (Reason, "Put on hold (SLA clocks paused)"),
    "resume": (NoData, "Resume from hold"),
    "feedback": (FeedbackIn, "Customer feedback (survey)"),
    "escalate": (Escalate, "Escalate"),
    "cancel": (Reason, "Cancel"),
    "log-callback": (LogCallback, "Log a callback to the customer"),
}

for _command, (_body, _summary) in COMMAND_BODIES.items():
    add_command_route(
        router,
        command=_command,
        body_model=_body,
        run=_run,
        summary=_summary,
        who=WORK_ORDER_COMMANDS[_command],
        table=WORK_ORDER_COMMANDS,
    )


@router.get(
    "/{id}",
    summary="A work order: state, version, SLA targets",
    description="The work order as it is now, or with `as_of` as it was at that instant: "
    "rebuilt from its events that occurred (`occurred_at`) at or before it. Before its "
    "first event it did not exist: 404. The `ETag` header is the version answered.",
    response_model=None,
    responses={200: {"model": WorkOrderView, "headers": {"ETag": READ_ETAG}},
               **responses(401, 404, 422)},
)
def get_work_order(
    id: RecordId,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    as_of: Annotated[
        Instant | None, Query(description="the state as it was at this instant")
    ] = None,
) -> dict[str, Any]:
    if as_of is None:
        order = ledger.get(WorkOrder, id)
    else:
        order = ledger.get_as_of(WorkOrder, id, as_of)
    response.headers["ETag"] = f'"{order.version}"'
    # "Assigned to them" is about now, also for a view of the past.
    assigned = order.technician_id
    if as_of is not None and caller.role is Role.TECHNICIAN:
        assigned = ledger.get(WorkOrder, id).technician_id
    access = contact_access(caller.role, caller.actor, assigned)
    return work_order_view(ledger, order, as_of, access)


@router.get(
    "/{id}/history",
    response_model=HistoryView,
    summary="The audit trail of a work order, oldest first",
    responses=responses(401, 404, 422),
)
def work_order_history(id: RecordId, ledger: LedgerDep, caller: CallerDep) -> HistoryView:
    entries = ledger.history(WorkOrder, id)
    order = ledger.get(WorkOrder, id)
    access = contact_access(caller.role, caller.actor, order.technician_id)
    return history_view(ledger, entries, access)
