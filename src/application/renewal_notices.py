"""The sweep's renewal-notice step (003 第十五條): one month before a maintenance
contract ends, record `RenewalNoticeDue` once, as the system.

A read model finds the candidates (`RenewalNoticeSource`: the maintenance
contracts view, caught up first); each is checked against the contract's own
events and recorded with the version it was checked at, so a stale view never
records wrongly and two sweeps at once record once (the loser reloads and finds
the notice recorded). The notice is due from one month before the end through
the end, on the local date (FIELDLEDGER_TIMEZONE) of the instant swept at; it
occurs at that instant, or at the contract's latest event when that is later.

A step of its own beside the SLA escalation (`sla_sweep.sweep` calls it), so
that other steps can join the sweep without touching this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol
from uuid import UUID

from fieldledger.application.commands import RECORD_RENEWAL_NOTICE, RecordRenewalNotice
from fieldledger.application.ledger import SYSTEM, FieldLedger, NotFound, VersionMismatch
from fieldledger.domain.errors import CommandNotAllowed
from fieldledger.domain.maintenance_contracts import MaintenanceContract
from fieldledger.domain.periods import local_date

#: How often a candidate is re-checked when others keep changing its contract.
ATTEMPTS = 5


class RenewalNoticeSource(Protocol):
    """Where the step finds its candidates (the maintenance contracts view)."""

    def catch_up(self) -> None:
        """Bring the view up to the head of the store."""

    def notices_pending(self, on: date) -> list[UUID]:
        """Active contracts whose notice is due on `on` and not yet recorded."""


@dataclass(frozen=True)
class RenewalNotice:
    contract_id: UUID
    ends_on: date
    due_on: date
    version: int
    occurred_at: datetime
    position: int | None


def record_renewal_notices(
    ledger: FieldLedger, source: RenewalNoticeSource, at: datetime
) -> list[RenewalNotice]:
    """Record the renewal notices due at `at` (an aware instant), each once."""
    today = local_date(at, ledger.timezone)
    source.catch_up()
    recorded: list[RenewalNotice] = []
    for contract_id in source.notices_pending(today):
        notice = record_if_due(ledger, contract_id, at, today)
        if notice is not None:
            recorded.append(notice)
    return recorded


def record_if_due(
    ledger: FieldLedger, contract_id: UUID, at: datetime, today: date
) -> RenewalNotice | None:
    for _attempt in range(ATTEMPTS):
        try:
            contract = ledger.get(MaintenanceContract, contract_id)
        except NotFound:
            return None
        if not contract.renewal_notice_pending(today):
            return None  # renewed, ended or noticed since the view was read
        assert contract.last_occurred_at is not None
        occurred_at = max(at, contract.last_occurred_at)
        try:
            result = ledger.execute(
                RECORD_RENEWAL_NOTICE, SYSTEM, contract_id, RecordRenewalNotice(today=today),
                occurred_at=occurred_at, expected_version=contract.version,
            )  # fmt: skip
        except VersionMismatch:
            continue  # changed meanwhile (perhaps by another sweep): look again
        except CommandNotAllowed:
            return None
        return RenewalNotice(
            contract_id, contract.ends_on, contract.renewal_notice_on, result.version,
            occurred_at, result.position,
        )  # fmt: skip
    return None
