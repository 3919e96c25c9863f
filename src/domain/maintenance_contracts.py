"""The maintenance contract (003 第一條 合同服務, 第十五條 renewal notices).

A customer's contract for periodic maintenance: signed for `starts_on` to
`ends_on` (local dates, both inclusive) with `visits_per_year` maintenance
visits; `renew` moves its end later, `end` finishes it early (or records that it
lapsed). One month before `ends_on` the renewal notice is due (003 第十五條:
保養合同期滿前一個月…填具保養到期通知書寄予客戶並派員前往爭取續約): the sweep
records `RenewalNoticeDue` once per end date, so a renewed contract gets a new
notice before its new end.

The customer is the same value object as a work order's (`Customer`): personal
data lives in one type wherever it is recorded.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from uuid import UUID

from eventsourcing.domain import Aggregate
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Context, LedgerAggregate, require_between, require_text
from fieldledger.domain.periods import add_months, require_business_date
from fieldledger.domain.work_orders import Customer

#: How long before its end a contract's renewal notice is due (003 第十五條: 一個月).
NOTICE_MONTHS = 1
#: The most maintenance visits a year a contract may promise (one a day).
MAX_VISITS_PER_YEAR = 366


class ContractState(Enum):
    ACTIVE = "active"
    ENDED = "ended"


def renewal_notice_on(ends_on: date) -> date:
    """The day the renewal notice is due: one calendar month before the end
    (31 March → 28/29 February; 003 第十五條)."""
    return add_months(ends_on, -NOTICE_MONTHS)


class MaintenanceContract(LedgerAggregate):
    kind = "maintenance contract"

    class Event(LedgerAggregate.Event):
        pass

    class Signed(Event, Aggregate.Created):
        customer: Customer
        starts_on: date
        ends_on: date
        visits_per_year: int

        def happen(self, c: MaintenanceContract) -> None:
            c.customer = self.customer
            c.starts_on = self.starts_on
            c.ends_on = self.ends_on
            c.visits_per_year = self.visits_per_year
            c.signed_at = self.occurred_at

    class Renewed(Event):
        previous_ends_on: date
        ends_on: date

        def happen(self, c: MaintenanceContract) -> None:
            c.ends_on = self.ends_on
            c.renewals += 1

    class RenewalNoticeDue(Event):
        #: The end date the notice is about (a renewal brings a new one).
        ends_on: date
        #: The day the notice fell due (one month before `ends_on`).
        due_on: date

        def happen(self, c: MaintenanceContract) -> None:
            c.notices_for = [*c.notices_for, self.ends_on]

    class Ended(Event):
        reason: str

        def happen(self, c: MaintenanceContract) -> None:
            c.state = ContractState.ENDED
            c.ended_at = self.occurred_at

    def __init__(self) -> None:
        super().__init__()
        self.state = ContractState.ACTIVE
        self.customer: Customer
        self.starts_on: date
        self.ends_on: date
        self.visits_per_year: int
        self.signed_at: datetime | None = None
        self.renewals = 0
        #: The end dates a renewal notice was recorded for.
        self.notices_for: list[date] = []
        self.ended_at: datetime | None = None

    # -- commands -------------------------------------------------------------

    @classmethod
    def sign(
        cls,
        ctx: Context,
        *,
        id: UUID,
        customer: Customer,
        starts_on: date,
        ends_on: date,
        visits_per_year: int,
    ) -> MaintenanceContract:
        customer = Customer(
            name=require_text("customer.name", customer.name, max_length=200),
            phone=require_text("customer.phone", customer.phone, max_length=50),
            address=require_text("customer.address", customer.address, max_length=1000),
        )
        require_business_date("starts_on", starts_on)
        require_business_date("ends_on", ends_on)
        if ends_on <= starts_on:
            raise InvalidCommand("ends_on", f"{ends_on} must be after starts_on ({starts_on})")
        return cls._begin(
            cls.Signed,
            ctx,
            id=id,
            customer=customer,
            starts_on=starts_on,
            ends_on=ends_on,
            visits_per_year=require_between(
                "visits_per_year", visits_per_year, 1, MAX_VISITS_PER_YEAR
            ),
        )

    def renew(self, ctx: Context, ends_on: date) -> None:
        if self.state is ContractState.ENDED:
            raise self.refuse("renew", "an ended contract is signed anew, not renewed")
        require_business_date("ends_on", ends_on)
        if ends_on <= self.ends_on:
            raise InvalidCommand(
                "ends_on",
                f"a renewal must end after the current end ({self.ends_on}), not on {ends_on}",
            )
        self._record(self.Renewed, ctx, previous_ends_on=self.ends_on, ends_on=ends_on)

    def end(self, ctx: Context, reason: str = "") -> None:
        if self.state is ContractState.ENDED:
            raise self.refuse("end")
        self._record(self.Ended, ctx, reason=reason.strip())

    @property
    def renewal_notice_on(self) -> date:
        return renewal_notice_on(self.ends_on)

    def renewal_notice_pending(self, today: date) -> bool:
        """Whether the renewal notice for the current end is due on `today` and
        not yet recorded: from one month before the end through the end itself
        (a lapsed contract is past noticing; it stays on the renewals list)."""
        return (
            self.state is ContractState.ACTIVE
            and self.renewal_notice_on <= today <= self.ends_on
            and self.ends_on not in self.notices_for
        )

    def record_renewal_notice(self, ctx: Context, today: date) -> None:
        """The sweep's step: the notice for the current end is due (003 第十五條)."""
        if self.state is ContractState.ENDED:
            raise self.refuse("record-renewal-notice")
        if self.ends_on in self.notices_for:
            raise self.refuse(
                "record-renewal-notice", f"the notice for the end {self.ends_on} was recorded"
            )
        if not self.renewal_notice_on <= today <= self.ends_on:
            raise self.refuse(
                "record-renewal-notice",
                f"the notice is due from {self.renewal_notice_on} to {self.ends_on}, "
                f"not on {today}",
            )
        self._record(
            self.RenewalNoticeDue, ctx, ends_on=self.ends_on, due_on=self.renewal_notice_on
        )

    def covers(self, day: date) -> str | None:
        """Why a contract order booked on `day` may not name this contract; None if it may."""
        if self.state is ContractState.ENDED:
            return f"maintenance contract {self.id} has ended"
        if not self.starts_on <= day <= self.ends_on:
            return (
                f"maintenance contract {self.id} runs from {self.starts_on} to "
                f"{self.ends_on}, not on {day}"
            )
        return None
