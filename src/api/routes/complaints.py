"""`/complaints`: lodge, the commands of contract §5, and the queries."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fieldledger.api.deps import CallerDep, IdempotencyDep, LedgerDep, NoIfMatchDep, permits
from fieldledger.api.problems import responses
from fieldledger.api.reading import json_response
from fieldledger.api.routes.commands import (
    READ_ETAG,
    CommandAnswer,
    add_command_routes,
    answer,
    command_responses,
)
from fieldledger.api.routes.schemas import ComplaintView
from fieldledger.api.routes.views import HistoryView, complaint_view, history_view
from fieldledger.application.commands import COMPLAINT, LODGE, Lodge
from fieldledger.application.fields import (
    Instant,
    RecordId,
)
from fieldledger.domain.complaints import (
    Complaint,
)
from fieldledger.domain.customers import contact_access

router = APIRouter(prefix="/complaints", tags=["complaints"])



@router.post(
    "",
    status_code=201,
    response_model=CommandAnswer,
    summary=LODGE.summary,
    description=f"Lodge a complaint. Who: {LODGE.who}. `work_order_id`, when given, must "
    "name a work order (else 422). "
    "If-Match is refused (422): a create has no version to match.",
    dependencies=[Depends(permits(LODGE))],
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


add_command_routes(router, COMPLAINT)


@router.get(
    "/{id}",
    summary="A complaint: state, version, SLA targets",
    description="The complaint as it is now, or with `as_of` as it was at that instant: "
    "rebuilt from its events that occurred (`occurred_at`) at or before it. Before its "
    "first event it did not exist: 404. The `ETag` header is the version answered.",
    response_model=ComplaintView,
    responses={200: {"headers": {"ETag": READ_ETAG}},
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
) -> ComplaintView:
    if as_of is None:
        complaint = ledger.get(Complaint, id)
    else:
        complaint = ledger.get_as_of(Complaint, id, as_of)
    response.headers["ETag"] = f'"{complaint.version}"'
    return complaint_view(ledger, complaint, as_of, contact_access(caller.role, caller.actor))


@router.get("/{id}/history", response_model=HistoryView,
            summary="The audit trail of a complaint, oldest first",
            responses=responses(401, 404, 422))  # fmt: skip
def complaint_history(id: RecordId, ledger: LedgerDep, caller: CallerDep) -> Response:
    # Encoded once (`json_response`), as a work order's history is.
    entries = ledger.history(Complaint, id)
    return json_response(history_view(ledger, entries, contact_access(caller.role, caller.actor)))
