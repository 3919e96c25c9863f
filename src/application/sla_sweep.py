"""The SLA sweep (contract §6): escalate each red target once, as the system.

A read model finds the candidates fast (`RedTargetSource`: the SLA projection,
caught up first); each candidate is then checked against the aggregate's own
events and escalated through the ledger with the version it was checked at, so
a stale view never escalates wrongly and two sweeps at once escalate once: the
loser of the race gets a version conflict, reloads, and finds the target in the
aggregate's `escalated_targets` (which the aggregate itself also refuses).

Escalation: `Escalated(level = current + 1, at most 3, reason naming the target,
target = the target)`, actor `system`, role `system`. A sweep "at T" escalates
targets that were red at T and are still neither met nor ended now; the event
occurs at T, or at the aggregate's latest event when that is later (an event may
not occur before its predecessor).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from fieldledger.application.ledger import SYSTEM, FieldLedger, VersionMismatch
from fieldledger.application.renewal_notices import (
    RenewalNotice,
    RenewalNoticeSource,
    record_renewal_notices,
)
from fieldledger.application.sla import subject_of, targets_of
from fieldledger.application.training_sweep import TrainingWatch, sweep_training
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand
from fieldledger.domain.facts import MAX_CLOCK_SKEW, describe_interval
from fieldledger.domain.sla import Kind

log = logging.getLogger("fieldledger.sla")

#: How often a candidate is re-checked when others keep changing its aggregate.
ATTEMPTS = 5


@dataclass(frozen=True)
class RedTarget:
    aggregate_id: UUID
    kind: Kind
    target: str


class RedTargetSource(Protocol):
    """Where the sweep finds its candidates (the SLA read model)."""

    def catch_up(self) -> None:
        """Bring the view up to the head of the store."""

    def red_targets(self, at: datetime) -> list[RedTarget]:
        """Targets red at `at`, still open now, not escalated, in a stable order."""


@dataclass(frozen=True)
class Escalation:
    aggregate_id: UUID
    kind: Kind
    target: str
    level: int
    version: int
    occurred_at: datetime
    position: int | None


@dataclass(frozen=True)
class Skipped:
    aggregate_id: UUID
    kind: Kind
    target: str
    why: str


@dataclass
class SweepReport:
    at: datetime
    escalated: list[Escalation] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: Renewal notices of maintenance contracts recorded (renewal_notices.py).
    renewal_notices: list[RenewalNotice] = field(default_factory=list)


def sweep(
    ledger: FieldLedger,
    source: RedTargetSource,
    at: datetime | None = None,
    *,
    renewals: RenewalNoticeSource | None = None,
) -> SweepReport:
    """One pass of automatic escalation at `at` (default: now), and of the
    renewal notices due then when `renewals` is given."""
    now = ledger.clock()
    if at is None:
        at = now
    elif at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand("at", "must carry a time zone offset")
    at = at.astimezone(UTC)
    if at > now + MAX_CLOCK_SKEW:
        raise InvalidCommand("at", f"{at.isoformat()} lies in the future; a sweep looks back")
    bound = ledger.max_backdate
    if bound is not None and at < now - bound:
        raise InvalidCommand(
            "at", f"{at.isoformat()} lies more than {describe_interval(bound)} in the past: "
            "its escalations could not be recorded (FIELDLEDGER_MAX_BACKDATE)",
        )  # fmt: skip
    source.catch_up()
    report = SweepReport(at)
    for candidate in source.red_targets(at):
        outcome = escalate_if_red(ledger, candidate, at)
        if isinstance(outcome, Escalation):
            report.escalated.append(outcome)
        else:
            report.skipped.append(outcome)
    if renewals is not None:
        report.renewal_notices = record_renewal_notices(ledger, renewals, at)
    return report


def escalate_if_red(
    ledger: FieldLedger, candidate: RedTarget, at: datetime
) -> Escalation | Skipped:
    """Escalate the candidate's order if, by its own events, the target is red at
    `at`, still open, and not escalated yet."""

    def skip(why: str) -> Skipped:
        return Skipped(candidate.aggregate_id, candidate.kind, candidate.target, why)

    for _attempt in range(ATTEMPTS):
        subject = subject_of(ledger, candidate.aggregate_id)
        if subject is None or subject.kind != candidate.kind:
            return skip("no such record")
        found = [t for t in targets_of(ledger, subject) if t.target == candidate.target]
        if not found:
            return skip("no such target")
        target = found[0]
        if target.escalated:
            return skip("already escalated for this target")
        if target.met_at is not None:
            return skip("met since")
        if target.closed_at is not None:
            return skip(f"{target.closed_as} since")
        if target.status_at(at) != "red":
            return skip(f"not red at {at.isoformat()}")
        assert target.due_at is not None
        level = min(subject.escalation_level + 1, 3)
        occurred_at = max(at, subject.last_occurred_at)
        args = {
            "level": level,
            "reason": f"SLA target {target.target} is past due "
            f"(due {target.due_at.isoformat()}, not met by {at.isoformat()})",
            "target": target.target,
        }
        command = (
            ledger.work_order_command
            if candidate.kind == "work_order"
            else ledger.complaint_command
        )
        try:
            result = command(
                SYSTEM, candidate.aggregate_id, "escalate", args,
                occurred_at=occurred_at, expected_version=subject.version,
            )  # fmt: skip
        except VersionMismatch:
            continue  # changed meanwhile (perhaps by another sweep): look again
        except CommandNotAllowed as e:
            return skip(str(e))
        return Escalation(
            candidate.aggregate_id, candidate.kind, candidate.target, level,
            result.version, occurred_at, result.position,
        )  # fmt: skip
    return skip("kept changing during the sweep; the next sweep looks again")


class BackgroundSweeper:
    """Runs `sweep` every `interval` seconds in a thread (in `fieldledger serve`)."""

    def __init__(
        self,
        ledger: FieldLedger,
        source: RedTargetSource,
        interval: float,
        training: TrainingWatch | None = None,
        *,
        renewals: RenewalNoticeSource | None = None,
    ) -> None:
        self.ledger = ledger
        self.source = source
        #: The training deadlines' sweep (contract §11.7) runs in the same round.
        self.training = training
        self.renewals = renewals
        self.interval = interval
        self.last_error: str | None = None
        self.last_report: SweepReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sla-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = sweep(self.ledger, self.source, renewals=self.renewals)
                if self.training is not None:
                    sweep_training(self.ledger, self.training)
            except Exception as e:  # a database hiccup or a failed view: next round
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("SLA sweep failed: %s", self.last_error)
                continue
            self.last_error = None
            self.last_report = report
            for done in report.escalated:
                log.info(
                    "escalated %s %s to level %d for %s",
                    done.kind, done.aggregate_id, done.level, done.target,
                )  # fmt: skip
            for notice in report.renewal_notices:
                log.info(
                    "renewal notice due for maintenance contract %s (ends %s)",
                    notice.contract_id, notice.ends_on,
                )  # fmt: skip
