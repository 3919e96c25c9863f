"""A staff member's record: conduct noted by supervisors.

The staff member is addressed by the same id as everywhere else (the technician
id of work orders, the actor id of tokens); its aggregate id is derived from it.
Which repeat of a kind in a month brings a warning is the appraisal's business
(a read model of these events with the policy), so that a changed policy can be
replayed over the same facts.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Context, LedgerAggregate, require_text
from fieldledger.domain.policy import ConductPolicy

STAFF_NAMESPACE = UUID("6d1f7f64-4c7e-4f7b-9d55-2f3a7c1e5b10")


def staff_aggregate_id(staff_id: str) -> UUID:
    return uuid5(STAFF_NAMESPACE, staff_id)


class StaffMember(LedgerAggregate):
    kind = "staff member"

    class Event(LedgerAggregate.Event):
        pass

    class Registered(Event, Aggregate.Created):
        staff_id: str

        def happen(self, s: StaffMember) -> None:
            s.staff_id = self.staff_id

    class ConductRecorded(Event):
        staff_id: str
        kind: str
        points: Decimal
        note: str

        def happen(self, s: StaffMember) -> None:
            s.conduct_records += 1

    def __init__(self) -> None:
        super().__init__()
        self.staff_id: str
        self.state = "active"
        self.conduct_records = 0

    @classmethod
    def register(cls, ctx: Context, staff_id: str) -> StaffMember:
        staff_id = require_text("staff_id", staff_id, max_length=200)
        return cls._begin(cls.Registered, ctx, id=staff_aggregate_id(staff_id), staff_id=staff_id)

    def record_conduct(
        self,
        ctx: Context,
        policy: ConductPolicy,
        kind: str,
        points: Decimal | None,
        note: str,
    ) -> None:
        allowed = policy.kinds.get(kind)
        if allowed is None:
            raise InvalidCommand("kind", f"unknown conduct kind {kind!r}; known: "
                                 + ", ".join(sorted(policy.kinds)))
        if points is None:
            if allowed.min != allowed.max:
                raise InvalidCommand(
                    "points", f"{kind} takes {allowed.min} to {allowed.max} points: say how many"
                )
            points = allowed.min
        if not allowed.min <= points <= allowed.max:
            raise InvalidCommand(
                "points", f"{kind} takes {allowed.min} to {allowed.max} points, not {points}"
            )
        self._record(
            self.ConductRecorded,
            ctx,
            staff_id=self.staff_id,
            kind=kind,
            points=points,
            note=note.strip(),
        )
