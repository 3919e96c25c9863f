"""`/work-orders`: book, the commands of contract §4, and the queries."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fieldledger.api.deps import CallerDep, IdempotencyDep, LedgerDep, NoIfMatchDep, permits
from fieldledger.api.problems import responses
from fieldledger.api.reading import json_response
from fieldledger.api.routes.commands import (
    READ_ETAG,
    CommandAnswer,
    CommandInputs,
    CommandRoute,
    FastCommand,
    add_command_routes,
    answer,
    command_responses,
    served_in_one_function,
)
from fieldledger.api.routes.schemas import WorkOrderView
from fieldledger.api.routes.views import HistoryView, history_view, work_order_view
from fieldledger.application.commands import BOOK, WORK_ORDER, Book
from fieldledger.application.fields import Instant, RecordId
from fieldledger.application.ledger import CommandResult, FieldLedger
from fieldledger.domain.customers import contact_access
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import WorkOrder

router = APIRouter(prefix="/work-orders", tags=["work orders"])


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


def _book(ledger: FieldLedger, inputs: CommandInputs) -> CommandResult:
    """`book`, as the route's one function calls it (commands.py)."""
    body = inputs.body
    assert isinstance(body, Book)
    return ledger.book_work_order(inputs.caller, occurred_at=body.occurred_at,
                                  idempotency=inputs.idempotency, **body.to_args())  # fmt: skip


# Served by one function, as the other commands (commands.py, `CommandRoute`):
# a booking is one command in nine of a work order's lifecycle.
served_in_one_function(book, FastCommand(BOOK.roles, Book, _book, creates="/work-orders"))
router.add_api_route(
    "",
    book,
    methods=["POST"],
    status_code=201,
    response_model=CommandAnswer,
    summary=BOOK.summary,
    description=f"{BOOK.summary}. Who: {BOOK.who}. A `billing: contract` order may name its "
    "maintenance contract (`contract_id`): "
    "it must exist, not have ended and cover the booking's day (else 422). "
    "If-Match is refused (422): a create has no version to match.",
    dependencies=[Depends(permits(BOOK))],
    responses=command_responses(201, 401, 403, 413, 415, 422),
    operation_id="work_orders_book",
    route_class_override=CommandRoute,
)

add_command_routes(router, WORK_ORDER)


@router.get(
    "/{id}",
    summary="A work order: state, version, SLA targets",
    description="The work order as it is now, or with `as_of` as it was at that instant: "
    "rebuilt from its events that occurred (`occurred_at`) at or before it. Before its "
    "first event it did not exist: 404. The `ETag` header is the version answered.",
    response_model=WorkOrderView,
    responses={200: {"headers": {"ETag": READ_ETAG}},
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
) -> WorkOrderView:
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
def work_order_history(id: RecordId, ledger: LedgerDep, caller: CallerDep) -> Response:
    # The order and its history from one read of its events; the answer is
    # encoded once, here (`json_response`), not validated and encoded again.
    order, entries = ledger.state_and_history(WorkOrder, id)
    access = contact_access(caller.role, caller.actor, order.technician_id)
    return json_response(history_view(ledger, entries, access))
