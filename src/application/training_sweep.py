"""The training part of the sweep (contract §11.7): training deadlines passed
unmet become `TrainingOverdue`, and a final failed test unpassed by its deadline
becomes `Dismissed`, each recorded once, as the system.

A read model names the candidates (staff members who joined or have a final
deadline); each is then decided by its own aggregate (`StaffMember.training_due`),
saved with the version it was checked at, so a stale view records nothing wrong
and two sweeps at once record once: the loser reloads and finds nothing due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from fieldledger.application.ledger import SYSTEM, FieldLedger, VersionMismatch
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import MAX_CLOCK_SKEW, Context
from fieldledger.domain.periods import local_date
from fieldledger.domain.sla import calendar_for
from fieldledger.domain.staff import StaffMember, staff_aggregate_id

ATTEMPTS = 5


class TrainingWatch(Protocol):
    """Where the sweep finds its candidates (the appraisal read model)."""

    def catch_up(self) -> None: ...

    def staff_to_check(self) -> list[str]:
        """Staff ids with a joining day or a final training deadline, sorted."""


@dataclass
class TrainingSweepReport:
    at: datetime
    #: (staff id, event type, what: requirement or training kind)
    recorded: list[tuple[str, str, str]] = field(default_factory=list)


def sweep_training(
    ledger: FieldLedger, watch: TrainingWatch, at: datetime | None = None
) -> TrainingSweepReport:
    now = ledger.clock()
    at = now if at is None else at
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand("at", "must carry a time zone offset")
    at = at.astimezone(UTC)
    if at > now + MAX_CLOCK_SKEW:
        raise InvalidCommand("at", f"{at.isoformat()} lies in the future; a sweep looks back")
    watch.catch_up()
    report = TrainingSweepReport(at)
    today = local_date(at, ledger.timezone)
    policy = ledger.policy
    calendar = calendar_for(policy, ledger.timezone, ledger.policy_version)
    for staff_id in watch.staff_to_check():
        for _attempt in range(ATTEMPTS):
            staff = ledger.get(StaffMember, staff_aggregate_id(staff_id))
            overdue, dismissals = staff.training_due(policy.training, calendar, today)
            if not overdue and not dismissals:
                break
            occurred_at = max(at, staff.last_occurred_at or at)

            def act(s: StaffMember, ctx: Context) -> None:
                s.sweep_training(ctx, policy.training, calendar, today)

            try:
                ledger.staff_act(SYSTEM, staff_id, act, occurred_at=occurred_at,
                                 expected_version=staff.version)  # fmt: skip
            except VersionMismatch:
                continue
            report.recorded += [(staff_id, "TrainingOverdue", d.requirement) for d in overdue]
            report.recorded += [(staff_id, "Dismissed", kind) for kind, _ in dismissals]
            break
    return report
