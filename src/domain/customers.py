"""The customer as a person whose data we hold: erasure, and who may see what.

A customer is known by a pseudonymous id (derived from the phone number with a
keyed hash, in the application layer): their name, phone and address live
encrypted inside the events of the orders, complaints and contracts that name
them. `CustomerRecord` is the aggregate of what happens to the person's data
itself - today, its erasure on request (PIPL art. 47, GDPR art. 17).

`contact_access` is the matrix of docs/api.md ("Customers' contact details"):
who sees a customer's contact details in full, masked, or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import get_topic
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Context, LedgerAggregate, Role, require_text

#: What every personal field reads as once its customer's data key is destroyed.
ERASED = "[erased]"


class CustomerRecord(LedgerAggregate):
    """What happened to one customer's personal data; id = the customer id."""

    kind = "customer"

    class Event(LedgerAggregate.Event):
        pass

    class Erased(Event, Aggregate.Created):
        """The customer's data keys were destroyed: their personal data in every
        event is unreadable from now on. Carries no personal data.

        The first erasure opens the record, a later one (the customer came back
        and was erased again) adds to it: one event type either way."""

        reason: str
        #: How many data keys were destroyed (0 when it was erased before).
        keys_destroyed: int

        def happen(self, record: CustomerRecord) -> None:
            record.erasures += 1
            record.erased_at = self.occurred_at

        def mutate(self, aggregate: Any) -> Any:
            if aggregate is None:
                return super().mutate(None)
            return CanMutateAggregate.mutate(self, aggregate)

    def __init__(self) -> None:
        super().__init__()
        self.state = "erased"
        self.erasures = 0
        self.erased_at: datetime | None = None

    @classmethod
    def erase_first(
        cls, ctx: Context, customer_id: UUID, reason: str, keys_destroyed: int, phone: str = ""
    ) -> CustomerRecord:
        return cls._begin(
            cls.Erased, ctx, id=customer_id,
            reason=erasure_reason(reason, phone), keys_destroyed=keys_destroyed,
        )  # fmt: skip

    def erase(self, ctx: Context, reason: str, keys_destroyed: int, phone: str = "") -> None:
        self._record(
            self.Erased, ctx, originator_topic=get_topic(type(self)),
            reason=erasure_reason(reason, phone), keys_destroyed=keys_destroyed,
        )  # fmt: skip


def erasure_reason(reason: str, phone: str = "") -> str:
    """The why of an erasure: required, and never the personal data it erases."""
    text = require_text("reason", reason, max_length=500)
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) >= 5 and digits in "".join(ch for ch in text if ch.isdigit()):
        raise InvalidCommand(
            "reason", "must not contain the customer's phone number (the record keeps no "
            "personal data)"
        )  # fmt: skip
    return text


# -- who sees what -------------------------------------------------------------


class ContactAccess(Enum):
    #: Name, phone and address as held.
    FULL = "full"
    #: Name to its first character, phone as 138****0000, no address.
    MASKED = "masked"


def contact_access(role: Role, actor: str, technician_id: str | None = None) -> ContactAccess:
    """The matrix of docs/api.md. Those who serve the customer (client apps,
    dispatchers, supervisors) see the details; a technician only on the work
    orders assigned to them; analysts and the system, who count, never."""
    if role in (Role.CLIENT_APP, Role.DISPATCHER, Role.SUPERVISOR):
        return ContactAccess.FULL
    if role is Role.TECHNICIAN and technician_id is not None and technician_id == actor:
        return ContactAccess.FULL
    return ContactAccess.MASKED


def mask_phone(phone: str) -> str:
    """`13800000000` → `138****0000`: enough to tell two customers apart on a
    call list, not enough to call them."""
    if phone == ERASED:
        return phone
    if len(phone) >= 8:
        return phone[:3] + "****" + phone[-4:]
    return "*" * max(len(phone) - 2, 1) + phone[-2:] if len(phone) > 2 else "*" * len(phone)


def mask_name(name: str) -> str:
    """`张三` → `张*`, `Zhang San` → `Z*`: the first character only."""
    if name == ERASED or not name:
        return name
    return name[0] + "*"


def masked_contact(contact: dict[str, Any], access: ContactAccess) -> dict[str, Any]:
    """A contact (`name`, `phone`, `address`, ...) as `access` may see it: masked,
    it keeps the masked name and phone and drops the address."""
    if access is ContactAccess.FULL:
        return dict(contact)
    shown = dict(contact)
    if isinstance(shown.get("name"), str):
        shown["name"] = mask_name(shown["name"])
    if isinstance(shown.get("phone"), str):
        shown["phone"] = mask_phone(shown["phone"])
    if "address" in shown:
        shown["address"] = None
    return shown


# -- personal data as the events hold it ---------------------------------------


@dataclass(frozen=True)
class SealedPersonalData:
    """A customer's personal fields (a `Customer`, a `Complainant`, ...) as the
    events hold them: encrypted with the customer's data key. Events loaded from
    the store carry this in place of the clear value object; only the
    application's vault (application/personal_data.py) can open it, and only
    while the customer's data key exists."""

    #: Topic of the clear value object's class (e.g. `...work_orders:Customer`).
    sealed: str
    #: The pseudonymous customer id (a keyed hash of the phone number).
    customer_id: str
    #: Which of the customer's data keys sealed it.
    key_id: str
    #: base64 of the AES-GCM nonce and ciphertext.
    ciphertext: str


@dataclass(frozen=True)
class Signature:
    """The name a work was signed off with (the customer, or someone for them):
    personal data, sealed under the customer's key like their contact details,
    and erased with them. Shown as the name alone."""

    name: str
    #: Whose key seals it: the customer's id once their contact is sealed...
    customer_id: str | None = None
    #: ...else their phone (an order booked and accepted without a reload).
    phone: str | None = None

    #: What the API shows of it: this one field.
    shown_as: ClassVar[str] = "name"

    @staticmethod
    def of(name: str, customer: Any) -> Signature:
        """`name` signed on behalf of the order's `customer`."""
        sealed_for = customer_id_of(customer)
        if sealed_for is not None:
            return Signature(name, customer_id=str(sealed_for))
        return Signature(name, phone=str(customer.phone))


def customer_id_of(value: Any) -> UUID | None:
    """The customer id of a contact held by an event: known once it is sealed
    (repeat-call linking and contracts find a customer's other records by it)."""
    if isinstance(value, SealedPersonalData):
        return UUID(value.customer_id)
    return None
