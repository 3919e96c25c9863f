"""The SLA sweep (contract §6, §11.3, §11.4): escalate each red target once and
appoint its coordinator, remind the handler of each target turned yellow once,
send the survey card of each ended call once — as the system. Each is a step
of its own (`escalate_if_red`, `remind_if_yellow`, `send_survey_if_due`).

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

Coordinators (004 二(二): 立即派專人協調): an escalation to level L appoints the
next staff id of the order's policy's roster for L, taking turns by how many
coordinators were appointed at L before (the SLA view counts them; a sweep
counts its own on top). Two sweeps at once may give two orders the same turn.

Reminders (004 二(二): 主動提醒處理人): a target yellow at T, still open, not
reminded yet gets `ReminderIssued {target, owner_id}` — the technician (or the
complaint's owner), else the accountable first responder. A target that went
from blue to red between two sweeps is escalated, not reminded.

Survey cards (003 第十八條): an order ended (accepted, resolved remotely, or
cancelled after the technician was on site) on a local day before T's gets
`SurveySent` once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from fieldledger.application.commands import (
    COMPLAINT_REMIND,
    COMPLAINT_SWEEP_ESCALATE,
    WORK_ORDER_REMIND,
    WORK_ORDER_SEND_SURVEY,
    WORK_ORDER_SWEEP_ESCALATE,
    Command,
    NoData,
    Remind,
    SweepEscalation,
)
from fieldledger.application.ledger import (
    SYSTEM,
    FieldLedger,
    NotFound,
    VersionMismatch,
)
from fieldledger.application.renewal_notices import (
    RenewalNotice,
    RenewalNoticeSource,
    record_renewal_notices,
)
from fieldledger.application.sla import subject_of, targets_of
from fieldledger.application.training_sweep import TrainingWatch, sweep_training
from fieldledger.domain.errors import CommandNotAllowed, InvalidCommand
from fieldledger.domain.facts import MAX_CLOCK_SKEW, describe_interval
from fieldledger.domain.sla import Kind, SlaTarget, Subject
from fieldledger.domain.work_orders import WorkOrder

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

    def yellow_targets(self, at: datetime) -> list[RedTarget]:
        """Targets yellow at `at`, still open now, not reminded, in a stable order."""

    def appointments(self, level: int) -> int:
        """How many coordinators were appointed at `level` so far."""


class SurveySource(Protocol):
    """Where the sweep finds ended orders whose survey card is due (a read model)."""

    def catch_up(self) -> None:
        """Bring the view up to the head of the store."""

    def surveys_due(self, at: datetime) -> list[UUID]:
        """Orders ended on a local day before `at`'s, without a survey card sent."""


@dataclass(frozen=True)
class Escalation:
    aggregate_id: UUID
    kind: Kind
    target: str
    level: int
    version: int
    occurred_at: datetime
    position: int | None
    coordinator_id: str | None = None


@dataclass(frozen=True)
class Reminder:
    aggregate_id: UUID
    kind: Kind
    target: str
    owner_id: str | None
    version: int


@dataclass(frozen=True)
class SurveyCard:
    work_order_id: UUID
    version: int


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
    reminded: list[Reminder] = field(default_factory=list)
    surveys_sent: list[SurveyCard] = field(default_factory=list)
    #: Renewal notices of maintenance contracts recorded (renewal_notices.py).
    renewal_notices: list[RenewalNotice] = field(default_factory=list)


class Turns:
    """Round robin through the rosters: the next turn per level, this sweep's own
    appointments counted on top of those the SLA view knows."""

    def __init__(self, source: RedTargetSource) -> None:
        self.source = source
        self._next: dict[int, int] = {}

    def peek(self, level: int) -> int:
        if level not in self._next:
            self._next[level] = self.source.appointments(level)
        return self._next[level]

    def taken(self, level: int) -> None:
        self._next[level] = self.peek(level) + 1


def sweep(
    ledger: FieldLedger,
    source: RedTargetSource,
    at: datetime | None = None,
    surveys: SurveySource | None = None,
    *,
    renewals: RenewalNoticeSource | None = None,
) -> SweepReport:
    """One pass of the sweep at `at` (default: now): escalations, reminders,
    survey cards (when a source of them is given) and the renewal notices of
    maintenance contracts due then (when `renewals` is given)."""
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
    turns = Turns(source)
    for candidate in source.red_targets(at):
        outcome = escalate_if_red(ledger, candidate, at, turns)
        if isinstance(outcome, Escalation):
            report.escalated.append(outcome)
        else:
            report.skipped.append(outcome)
    for candidate in source.yellow_targets(at):
        reminded = remind_if_yellow(ledger, candidate, at)
        if isinstance(reminded, Reminder):
            report.reminded.append(reminded)
        else:
            report.skipped.append(reminded)
    if surveys is not None:
        surveys.catch_up()
        for order_id in surveys.surveys_due(at):
            sent = send_survey_if_due(ledger, order_id, at)
            if sent is not None:
                report.surveys_sent.append(sent)
    if renewals is not None:
        report.renewal_notices = record_renewal_notices(ledger, renewals, at)
    return report


#: The sweep's commands (fieldledger.application.commands), by the kind of record.
_ESCALATE: dict[Kind, Command[Any, SweepEscalation]] = {
    "work_order": WORK_ORDER_SWEEP_ESCALATE, "complaint": COMPLAINT_SWEEP_ESCALATE,
}  # fmt: skip
_REMIND: dict[Kind, Command[Any, Remind]] = {
    "work_order": WORK_ORDER_REMIND, "complaint": COMPLAINT_REMIND,
}  # fmt: skip


def _look(ledger: FieldLedger, candidate: RedTarget) -> tuple[Subject, SlaTarget] | str:
    """The candidate's record and target by the record's own events, or why not."""
    subject = subject_of(ledger, candidate.aggregate_id)
    if subject is None or subject.kind != candidate.kind:
        return "no such record"
    found = [t for t in targets_of(ledger, subject) if t.target == candidate.target]
    if not found:
        return "no such target"
    return subject, found[0]


def escalate_if_red(
    ledger: FieldLedger, candidate: RedTarget, at: datetime, turns: Turns | None = None
) -> Escalation | Skipped:
    """Escalate the candidate's order if, by its own events, the target is red at
    `at`, still open, and not escalated yet."""

    def skip(why: str) -> Skipped:
        return Skipped(candidate.aggregate_id, candidate.kind, candidate.target, why)

    for _attempt in range(ATTEMPTS):
        looked = _look(ledger, candidate)
        if isinstance(looked, str):
            return skip(looked)
        subject, target = looked
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
        roster = ledger.policy_by_version(subject.policy_version).escalation
        coordinator = None if turns is None else roster.coordinator(level, turns.peek(level))
        body = SweepEscalation.model_construct(
            level=level,
            reason=f"SLA target {target.target} is past due "
            f"(due {target.due_at.isoformat()}, not met by {at.isoformat()})",
            target=target.target,
            coordinator_id=coordinator,
        )
        try:
            result = ledger.execute(
                _ESCALATE[candidate.kind], SYSTEM, candidate.aggregate_id, body,
                occurred_at=occurred_at, expected_version=subject.version,
            )  # fmt: skip
        except VersionMismatch:
            continue  # changed meanwhile (perhaps by another sweep): look again
        except CommandNotAllowed as e:
            return skip(str(e))
        if coordinator is not None and turns is not None:
            turns.taken(level)
        return Escalation(
            candidate.aggregate_id, candidate.kind, candidate.target, level,
            result.version, occurred_at, result.position, coordinator,
        )  # fmt: skip
    return skip("kept changing during the sweep; the next sweep looks again")


def remind_if_yellow(
    ledger: FieldLedger, candidate: RedTarget, at: datetime
) -> Reminder | Skipped:
    """Remind the handler of a target yellow at `at` by its own events, once."""

    def skip(why: str) -> Skipped:
        return Skipped(candidate.aggregate_id, candidate.kind, candidate.target, why)

    for _attempt in range(ATTEMPTS):
        looked = _look(ledger, candidate)
        if isinstance(looked, str):
            return skip(looked)
        subject, target = looked
        if target.reminded:
            return skip("already reminded for this target")
        if target.met_at is not None or target.closed_at is not None:
            return skip("met or ended since")
        if target.status_at(at) != "yellow":
            return skip(f"not yellow at {at.isoformat()}")
        owner = subject.handler_id
        try:
            result = ledger.execute(
                _REMIND[candidate.kind], SYSTEM, candidate.aggregate_id,
                Remind.model_construct(target=target.target, owner_id=owner),
                occurred_at=max(at, subject.last_occurred_at), expected_version=subject.version,
            )  # fmt: skip
        except VersionMismatch:
            continue
        except CommandNotAllowed as e:
            return skip(str(e))
        return Reminder(candidate.aggregate_id, candidate.kind, target.target, owner,
                        result.version)  # fmt: skip
    return skip("kept changing during the sweep; the next sweep looks again")


def send_survey_if_due(ledger: FieldLedger, order_id: UUID, at: datetime) -> SurveyCard | None:
    """Record the survey card of an ended order once (003 第十八條)."""
    for _attempt in range(ATTEMPTS):
        try:
            order = ledger.get(WorkOrder, order_id)
        except NotFound:
            return None
        if not order.ended or order.survey_sent_at is not None:
            return None
        occurred_at = max(at, order.last_occurred_at or at)
        try:
            result = ledger.execute(
                WORK_ORDER_SEND_SURVEY, SYSTEM, order_id, NoData(), occurred_at=occurred_at,
                expected_version=order.version,
            )  # fmt: skip
        except VersionMismatch:
            continue
        except CommandNotAllowed:
            return None
        return SurveyCard(order_id, result.version)
    return None


class BackgroundSweeper:
    """Runs `sweep` every `interval` seconds in a thread (in `fieldledger serve`)."""

    def __init__(
        self,
        ledger: FieldLedger,
        source: RedTargetSource,
        interval: float,
        *,
        surveys: SurveySource | None = None,
        training: TrainingWatch | None = None,
        renewals: RenewalNoticeSource | None = None,
    ) -> None:
        self.ledger = ledger
        self.source = source
        self.surveys = surveys
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
                report = sweep(
                    self.ledger, self.source, surveys=self.surveys, renewals=self.renewals
                )
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
