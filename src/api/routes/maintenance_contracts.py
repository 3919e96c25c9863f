"""`/maintenance-contracts`: sign, renew, end, read; and the renewals due
(contract §11.5, 003 第十五條)."""

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fieldledger.api.deps import (
    CallerDep,
    IdempotencyDep,
    LedgerDep,
    NoIfMatchDep,
    ProjectionsDep,
    permits,
)
from fieldledger.api.problems import responses
from fieldledger.api.reading import MinPosition, json_response, reading
from fieldledger.api.routes.commands import (
    READ_ETAG,
    CommandAnswer,
    add_command_routes,
    answer,
    command_responses,
)
from fieldledger.api.routes.schemas import Answered, CustomerView
from fieldledger.api.routes.views import HistoryView, contact_view, history_view
from fieldledger.application.commands import MAINTENANCE_CONTRACT, SIGN, Sign
from fieldledger.application.fields import Instant, QueryDate, RecordId
from fieldledger.domain.customers import contact_access
from fieldledger.domain.errors import NotPermitted
from fieldledger.domain.maintenance_contracts import MaintenanceContract
from fieldledger.domain.periods import local_date
from fieldledger.domain.permissions import RENEWAL_READERS
from pydantic import BaseModel, Field

router = APIRouter(prefix="/maintenance-contracts", tags=["maintenance contracts"])


class ContractView(BaseModel):
    id: str
    version: int
    state: str = Field(description="active or ended")
    customer: CustomerView
    starts_on: date
    ends_on: date
    visits_per_year: int
    renewal_notice_on: date = Field(description="one month before ends_on (003 第十五條)")
    renewal_notice_recorded: bool = Field(description="RenewalNoticeDue recorded for ends_on")
    renewals: int
    signed_at: Answered
    ended_at: Answered | None
    in_force: bool = Field(description="active and covering today (or the as_of instant)")
    as_of: Answered | None


class RenewalDue(BaseModel):
    contract_id: str
    starts_on: date
    ends_on: date
    notice_on: date
    days_left: int = Field(description="days from `on` to ends_on; negative once lapsed")
    lapsed: bool = Field(description="ends_on passed, neither renewed nor ended")
    notice_recorded: bool
    notice_recorded_at: datetime | None
    visits_per_year: int
    renewals: int
    orders: int = Field(description="work orders booked under the contract")


class RenewalsDue(BaseModel):
    on: date
    items: list[RenewalDue]


@router.post(
    "",
    status_code=201,
    response_model=CommandAnswer,
    summary=SIGN.summary,
    description=f"{SIGN.summary}. Who: {SIGN.who}. Dates are local dates "
    "(FIELDLEDGER_TIMEZONE), both inclusive. If-Match is refused (422).",
    dependencies=[Depends(permits(SIGN))],
    responses=command_responses(201, 401, 403, 413, 415, 422),
    operation_id="maintenance_contracts_sign",
)
def sign(
    body: Sign,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    idempotency: IdempotencyDep,
    _if_match: NoIfMatchDep,
) -> CommandAnswer:
    result = ledger.sign_maintenance_contract(
        caller, occurred_at=body.occurred_at, idempotency=idempotency, **body.to_args()
    )
    response.headers["Location"] = f"/maintenance-contracts/{result.id}"
    return answer(result, response)


add_command_routes(router, MAINTENANCE_CONTRACT)


@router.get(
    "/renewals-due",
    response_model=RenewalsDue,
    summary="Active contracts whose renewal notice is due on or before a date",
    description="The renewal notice is due one month before a contract's end (003 第十五條); "
    "listed until the contract is renewed or ended, lapsed ones included. Dates are local "
    "(FIELDLEDGER_TIMEZONE). Who: " + ", ".join(sorted(r.value for r in RENEWAL_READERS)) + ".",
    responses=responses(401, 403, 422, 503),
)
def renewals_due(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    caller: CallerDep,
    on: Annotated[QueryDate | None, Query(description="the date (default: today, local)")] = None,
    min_position: MinPosition = None,
) -> RenewalsDue:
    if caller.role not in RENEWAL_READERS:
        raise NotPermitted(
            f"role {caller.role.value} may not read the renewals due; allowed: "
            + ", ".join(sorted(r.value for r in RENEWAL_READERS))
        )
    day = on or local_date(ledger.clock(), ledger.timezone)
    with reading(projections, "maintenance_contracts", as_of=None, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        items = view.renewals_due(tx, tables, day)
    return RenewalsDue(on=day, items=[RenewalDue.model_validate(i) for i in items])


@router.get(
    "/{id}",
    summary="A maintenance contract",
    description="The contract as it is now, or with `as_of` as it was at that instant. "
    "Every role may read. The `ETag` header is the version answered.",
    response_model=ContractView,
    responses={200: {"headers": {"ETag": READ_ETAG}},
               **responses(401, 404, 422)},
)  # fmt: skip
def get_contract(
    id: RecordId,
    response: Response,
    ledger: LedgerDep,
    caller: CallerDep,
    as_of: Annotated[
        Instant | None, Query(description="the state as it was at this instant")
    ] = None,
) -> ContractView:
    if as_of is None:
        contract = ledger.get(MaintenanceContract, id)
    else:
        contract = ledger.get_as_of(MaintenanceContract, id, as_of)
    response.headers["ETag"] = f'"{contract.version}"'
    # The last instant whose local date exists in any time zone, for as_of near 9999.
    latest = datetime(9999, 12, 30, tzinfo=UTC)
    today = local_date(min(as_of or ledger.clock(), latest), ledger.timezone)
    assert contract.signed_at is not None  # set by its first event, `Signed`
    return ContractView(
        id=str(contract.id),
        version=contract.version,
        state=contract.state_name,
        # Contacts are shown as the caller's role may see them (docs/privacy.md).
        customer=CustomerView.model_validate(
            contact_view(ledger, contract.customer, contact_access(caller.role, caller.actor))
        ),
        starts_on=contract.starts_on,
        ends_on=contract.ends_on,
        visits_per_year=contract.visits_per_year,
        renewal_notice_on=contract.renewal_notice_on,
        renewal_notice_recorded=contract.ends_on in contract.notices_for,
        renewals=contract.renewals,
        signed_at=contract.signed_at,
        ended_at=contract.ended_at,
        in_force=contract.state_name == "active"
        and contract.starts_on <= today <= contract.ends_on,
        as_of=as_of,
    )


@router.get("/{id}/history", response_model=HistoryView,
            summary="The audit trail of a maintenance contract, oldest first",
            responses=responses(401, 404, 422))  # fmt: skip
def contract_history(id: RecordId, ledger: LedgerDep, caller: CallerDep) -> Response:
    # Encoded once (`json_response`), as a work order's history is.
    entries = ledger.history(MaintenanceContract, id)
    return json_response(history_view(ledger, entries, contact_access(caller.role, caller.actor)))

