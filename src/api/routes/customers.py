"""`/customers`: a person's data as a whole (docs/privacy.md): find them by
phone, read a copy of everything held (PIPL art. 45), erase it (art. 47).
Supervisors only."""

from typing import Annotated, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Depends, Response
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep, permits
from fieldledger.api.problems import responses
from fieldledger.api.reading import reading
from fieldledger.api.routes.commands import CommandAnswer, answer, command_responses
from fieldledger.application.commands import CUSTOMER_DATA, CUSTOMER_ERASE, CUSTOMER_LOOKUP
from fieldledger.application.fields import Phone, RecordId, Text
from fieldledger.application.ledger import NotFound, history_entry, plain
from fieldledger.domain.customers import ContactAccess, CustomerRecord
from fieldledger.projections.customer_files import CustomerFiles
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(prefix="/customers", tags=["customers"])

SUPERVISORS = CUSTOMER_ERASE.who


class Lookup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Annotated[Phone, Field(examples=["13800000000"])]


class CustomerId(BaseModel):
    #: The pseudonymous id: the same for every record of this phone number.
    customer_id: UUID


class Erase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Why (e.g. "customer withdrew consent, ticket 4411"); never personal data.
    reason: Annotated[Text, Field(max_length=500)]


class Erasure(BaseModel):
    occurred_at: str
    recorded_at: str
    actor: str
    role: str
    reason: str
    keys_destroyed: int


class RecordEvent(BaseModel):
    type: str
    version: int
    actor: str
    role: str
    occurred_at: str
    recorded_at: str
    data: dict[str, Any]


class HeldRecord(BaseModel):
    kind: str
    id: UUID
    events: list[RecordEvent]


class CustomerData(BaseModel):
    customer_id: UUID
    #: True when the person's data keys are destroyed and nothing new was recorded since.
    erased: bool
    #: Each erasure: who, when, why.
    erasures: list[Erasure]
    #: The distinct contact details held (as given on each record), in clear.
    contacts: list[dict[str, Any]]
    #: Every record naming the person, with all its events, decrypted.
    records: list[HeldRecord]


@router.post(
    "/lookup",
    response_model=CustomerId,
    summary="The customer id of a phone number",
    description="The pseudonymous customer id derived from a phone number (a keyed hash: "
    "the phone is never stored in clear). The phone travels in the body, never in a URL "
    f"(URLs end up in access logs). Who: {SUPERVISORS}.",
    dependencies=[Depends(permits(CUSTOMER_LOOKUP))],
    responses=responses(401, 403, 422),
)
def lookup(body: Lookup, ledger: LedgerDep) -> CustomerId:
    return CustomerId(customer_id=ledger.personal_data.customer_id(body.phone))


@router.get(
    "/{id}/data",
    response_model=CustomerData,
    summary="Everything held about a customer, decrypted (access and copy)",
    description="The person's contact details and every work order, complaint or other "
    "record naming them, with all their events, decrypted (PIPL art. 45; GDPR art. 15). "
    f"After an erasure the personal fields read `[erased]`. Who: {SUPERVISORS}.",
    dependencies=[Depends(permits(CUSTOMER_DATA))],
    responses=responses(401, 403, 404, 422, 503),
)
def customer_data(
    id: RecordId, ledger: LedgerDep, projections: ProjectionsDep, caller: CallerDep
) -> CustomerData:
    # Everything held means everything recorded so far: the files catch up first.
    head = int(ledger.recorder.max_notification_id() or 0)
    with reading(projections, CustomerFiles.name, as_of=None, min_position=head) as (
        tx, t, _view,
    ):  # fmt: skip
        files = CustomerFiles.records_of(tx, t, str(id))
    erasures: list[Erasure] = []
    erased_record: Any
    try:
        erased_record = ledger.repository.get(id)
    except AggregateNotFoundError:
        erased_record = None
    if isinstance(erased_record, CustomerRecord):
        for event in ledger.events.get(id):
            entry = history_entry(event)
            erasures.append(Erasure(
                occurred_at=plain(entry.occurred_at), recorded_at=plain(entry.recorded_at),
                actor=entry.actor, role=entry.role, reason=entry.data["reason"],
                keys_destroyed=entry.data["keys_destroyed"],
            ))  # fmt: skip
    keys = ledger.personal_data.key_count(id)
    if not files and not erasures and keys == 0:
        raise NotFound(f"no personal data held for customer {id}")
    held = [
        (f, [history_entry(e) for e in ledger.events.get(UUID(f["aggregate_id"]))])
        for f in files
    ]
    # One disclosure for everything: one query for the person's keys.
    opened = ledger.personal_data.disclose(
        [[e.data for e in entries] for _f, entries in held], ContactAccess.FULL
    )
    records: list[HeldRecord] = []
    contacts: list[dict[str, Any]] = []
    for (f, entries), datas in zip(held, opened, strict=True):
        records.append(HeldRecord(kind=f["kind"], id=UUID(f["aggregate_id"]), events=[
            RecordEvent(type=e.type, version=e.version, actor=e.actor, role=e.role,
                        occurred_at=plain(e.occurred_at), recorded_at=plain(e.recorded_at),
                        data=data)
            for e, data in zip(entries, datas, strict=True)
        ]))  # fmt: skip
        for data in datas:
            for value in data.values():
                is_theirs = isinstance(value, dict) and value.get("customer_id") == str(id)
                if is_theirs and value not in contacts:
                    contacts.append(value)
    return CustomerData(
        customer_id=id,
        erased=bool(erasures) and keys == 0,
        erasures=erasures,
        contacts=contacts,
        records=records,
    )


@router.post(
    "/{id}/erase",
    response_model=CommandAnswer,
    summary="Erase a customer's personal data (crypto-shredding)",
    description="Destroys the customer's data keys and records an `Erased` event (who, "
    "when, why; no personal data) in one transaction. From then on the name, phone and "
    "address in every event read `[erased]` everywhere; the events themselves, their hash "
    "chain and every figure computed from them stay as they were. Erasing again with no "
    f"data recorded since writes nothing. Who: {SUPERVISORS}.",
    dependencies=[Depends(permits(CUSTOMER_ERASE))],
    responses=command_responses(200, 401, 403, 404, 409, 422),
    operation_id="customer_erase",
)
def erase(
    id: RecordId, body: Erase, response: Response, ledger: LedgerDep, caller: CallerDep
) -> CommandAnswer:
    return answer(ledger.erase_customer(caller, id, body.reason), response)
