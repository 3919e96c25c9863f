"""The SLA targets of one aggregate, computed from its own events at request time.

No projection lag: `GET /work-orders/{id}` and the sweep read the aggregate's
events, fold them into the SLA's `Subject` and compute its targets with the
policy the order was booked under (found by version) and that policy's
business calendar in the service's time zone.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.sla import SlaTarget, Subject, calendar_for, targets


def subject_of(
    ledger: FieldLedger, aggregate_id: UUID, as_of: datetime | None = None
) -> Subject | None:
    """What the SLA knows of an aggregate from its events (those occurred by `as_of`)."""
    subject: Subject | None = None
    for event in ledger.events.get(aggregate_id):
        if as_of is not None and event.occurred_at > as_of:  # type: ignore[attr-defined]
            break
        if subject is None:
            subject = Subject.start(event)
            if subject is None:
                return None  # not a work order or complaint
        else:
            subject.apply(event)
    return subject


def targets_of(ledger: FieldLedger, subject: Subject) -> list[SlaTarget]:
    policy = ledger.policy_by_version(subject.policy_version)
    calendar = calendar_for(policy, ledger.timezone, subject.policy_version)
    return targets(subject, policy, calendar)


def sla_targets(
    ledger: FieldLedger, aggregate_id: UUID, as_of: datetime | None = None
) -> list[SlaTarget]:
    subject = subject_of(ledger, aggregate_id, as_of)
    return [] if subject is None else targets_of(ledger, subject)
